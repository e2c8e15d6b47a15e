// lib/options.ts: defaults, and every invalid option refused with
// ERR_INVALID_OPTION naming the option and the value, before anything
// touches the disk.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { QueueError } from '../lib/errors.js';
import { Queue } from '../lib/index.js';
import {
  DEFAULT_CHUNK_SIZE,
  DEFAULT_MAX_ITEM_BYTES,
  DEFAULT_POLL_INTERVAL,
  MAX_ITEM_BYTES_LIMIT,
  resolveOptions,
  type QueueOptions,
} from '../lib/options.js';
import { tempQueueDir } from './helpers.js';

const DIR = '/var/queues/orders';

function invalidOption(name: string, shown: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof QueueError, String(error));
    assert.equal(error.code, 'ERR_INVALID_OPTION');
    assert.equal(error.dir, DIR);
    assert.ok(error.message.includes(DIR), error.message);
    assert.ok(error.message.includes(name), `${error.message} does not name ${name}`);
    assert.ok(error.message.includes(shown), `${error.message} does not show ${shown}`);
    return true;
  };
}

/** Passes `value` as option `name`, bypassing the types as a JavaScript caller could. */
function withOption(name: string, value: unknown): QueueOptions {
  return { [name]: value };
}

describe('defaults', () => {
  test('match the documented defaults', () => {
    const resolved = resolveOptions(DIR, undefined);
    assert.equal(resolved.chunkSize, 100);
    assert.equal(DEFAULT_CHUNK_SIZE, 100);
    assert.equal(resolved.chunkSizeExplicit, false);
    assert.equal(resolved.maxSize, 0);
    assert.equal(resolved.serializer.name, 'cbor');
    assert.equal(resolved.serializerExplicit, false);
    assert.equal(resolved.autosave, false);
    assert.equal(resolved.fsync, 'never');
    assert.equal(resolved.pollInterval, 5000);
    assert.equal(DEFAULT_POLL_INTERVAL, 5000);
    assert.equal(resolved.locking, 'flock');
    assert.equal(resolved.maxItemBytes, 64 * 1024 * 1024);
    assert.equal(DEFAULT_MAX_ITEM_BYTES, 64 * 1024 * 1024);
  });

  test('an empty object and options set to undefined give the defaults too', () => {
    const fromEmpty = resolveOptions(DIR, {});
    const fromUndefined = resolveOptions(DIR, { chunkSize: undefined, serializer: undefined, fsync: undefined });
    for (const resolved of [fromEmpty, fromUndefined]) {
      assert.equal(resolved.chunkSize, 100);
      assert.equal(resolved.chunkSizeExplicit, false);
      assert.equal(resolved.serializerExplicit, false);
      assert.equal(resolved.fsync, 'never');
    }
  });
});

describe('valid options are kept', () => {
  test('every option set to a valid value', () => {
    const custom = { name: 'mine', encode: (v: unknown) => Buffer.from(String(v)), decode: (b: Uint8Array) => Buffer.from(b).toString() };
    const resolved = resolveOptions(DIR, {
      chunkSize: 7,
      maxSize: 50,
      serializer: custom,
      autosave: true,
      fsync: 'always',
      pollInterval: 25,
      locking: 'lockfile',
      maxItemBytes: 1024,
    });
    assert.equal(resolved.chunkSize, 7);
    assert.equal(resolved.chunkSizeExplicit, true);
    assert.equal(resolved.maxSize, 50);
    assert.equal(resolved.serializer.name, 'mine');
    assert.equal(resolved.serializerExplicit, true);
    assert.equal(resolved.autosave, true);
    assert.equal(resolved.fsync, 'always');
    assert.equal(resolved.pollInterval, 25);
    assert.equal(resolved.locking, 'lockfile');
    assert.equal(resolved.maxItemBytes, 1024);
  });

  test('fsync as a number of milliseconds, and each built-in serializer by name', () => {
    assert.equal(resolveOptions(DIR, { fsync: 100 }).fsync, 100);
    assert.equal(resolveOptions(DIR, { fsync: 0.5 }).fsync, 0.5);
    for (const name of ['cbor', 'json', 'msgpack', 'raw'] as const) {
      assert.equal(resolveOptions(DIR, { serializer: name }).serializer.name, name);
    }
  });

  test('maxSize of 0 or less means unbounded (0)', () => {
    assert.equal(resolveOptions(DIR, { maxSize: 0 }).maxSize, 0);
    assert.equal(resolveOptions(DIR, { maxSize: -10 }).maxSize, 0);
  });

  test('the largest allowed maxItemBytes and chunkSize of 1', () => {
    assert.equal(resolveOptions(DIR, { maxItemBytes: MAX_ITEM_BYTES_LIMIT }).maxItemBytes, MAX_ITEM_BYTES_LIMIT);
    assert.equal(resolveOptions(DIR, { chunkSize: 1 }).chunkSize, 1);
  });
});

describe('invalid options are ERR_INVALID_OPTION naming the option and the value', () => {
  const cases: Array<[string, unknown, string]> = [
    ['chunkSize', 0, '0'],
    ['chunkSize', -1, '-1'],
    ['chunkSize', 1.5, '1.5'],
    ['chunkSize', Number.NaN, 'NaN'],
    ['chunkSize', Infinity, 'Infinity'],
    ['chunkSize', '100', '"100"'],
    ['chunkSize', 2 ** 53, String(2 ** 53)],
    ['maxSize', 'ten', '"ten"'],
    ['maxSize', Number.NaN, 'NaN'],
    ['maxSize', true, 'true'],
    ['autosave', 'yes', '"yes"'],
    ['autosave', 1, '1'],
    ['fsync', 0, '0'],
    ['fsync', -5, '-5'],
    ['fsync', Number.NaN, 'NaN'],
    ['fsync', Infinity, 'Infinity'],
    ['fsync', 'sometimes', '"sometimes"'],
    ['fsync', true, 'true'],
    ['fsync', '100', '"100"'],
    ['pollInterval', 0, '0'],
    ['pollInterval', -1, '-1'],
    ['pollInterval', Number.NaN, 'NaN'],
    ['pollInterval', Infinity, 'Infinity'],
    ['pollInterval', '100', '"100"'],
    ['locking', 'nfs', '"nfs"'],
    ['locking', 'FLOCK', '"FLOCK"'],
    ['locking', false, 'false'],
    ['maxItemBytes', 0, '0'],
    ['maxItemBytes', -1, '-1'],
    ['maxItemBytes', 1.5, '1.5'],
    ['maxItemBytes', MAX_ITEM_BYTES_LIMIT + 1, String(MAX_ITEM_BYTES_LIMIT + 1)],
    ['maxItemBytes', '1mb', '"1mb"'],
    ['serializer', 'xml', '"xml"'],
    ['serializer', 42, '42'],
    ['serializer', { name: 'x' }, 'an object'],
    ['serializer', { name: 'json', encode: () => new Uint8Array(0), decode: () => null }, 'an object'],
    ['serializer', () => null, 'a function'],
  ];

  for (const [name, value, shown] of cases) {
    test(`${name}: ${shown}`, () => {
      assert.throws(() => resolveOptions(DIR, withOption(name, value)), invalidOption(name, shown));
    });
  }

  test('an unknown option is refused, naming it', () => {
    assert.throws(() => resolveOptions(DIR, withOption('chunksize', 10)), invalidOption('chunksize', '10'));
    assert.throws(() => resolveOptions(DIR, withOption('timeout', 'soon')), invalidOption('timeout', '"soon"'));
  });

  test('options that are not an object are refused', () => {
    for (const [options, shown] of [
      ['fast', '"fast"'],
      [42, '42'],
      [null, 'null'],
      [true, 'true'],
    ] as Array<[unknown, string]>) {
      assert.throws(() => resolveOptions(DIR, options as QueueOptions), invalidOption('options', shown));
    }
  });
});

describe('through Queue.open', () => {
  test('an option passed as null is either refused or treated as not passed, never as a conflicting explicit value', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir, { chunkSize: 7, serializer: 'json' });
    await q.put(1);
    await q.close();
    for (const name of ['chunkSize', 'serializer']) {
      let reopened: Queue<number> | undefined;
      try {
        reopened = await Queue.open<number>(dir, withOption(name, null));
      } catch (error) {
        assert.ok(error instanceof QueueError, String(error));
        assert.equal(error.code, 'ERR_INVALID_OPTION', `${name}: null gave ${error.message}`);
        continue;
      }
      try {
        assert.equal(reopened.chunkSize, 7);
        assert.equal(reopened.serializerName, 'json');
      } finally {
        await reopened.close();
      }
    }
  });

  test('an invalid option is refused before the directory is created', async (t) => {
    const dir = tempQueueDir(t);
    await assert.rejects(Queue.open(dir, { chunkSize: 0 }), (error: unknown) => {
      assert.ok(error instanceof QueueError);
      assert.equal(error.code, 'ERR_INVALID_OPTION');
      assert.ok(error.message.includes('chunkSize') && error.message.includes(dir), error.message);
      return true;
    });
    assert.equal(fs.existsSync(dir), false);
    assert.throws(
      () => Queue.openSync(dir, withOption('lockng', 'flock')),
      (error: unknown) => error instanceof QueueError && error.code === 'ERR_INVALID_OPTION',
    );
    assert.equal(fs.existsSync(dir), false);
  });

  test('an invalid option leaves an existing queue directory exactly as it was', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir);
    await q.put(1);
    await q.close();
    const contents = (): string[][] =>
      (fs.readdirSync(dir, { recursive: true }) as string[])
        .sort()
        .filter((name) => fs.statSync(`${dir}/${name}`).isFile())
        .map((name) => [name, fs.readFileSync(`${dir}/${name}`).toString('hex')]);
    const before = contents();
    await assert.rejects(
      Queue.open(dir, { fsync: 'sometimes' as unknown as 'always' }),
      (error: unknown) => error instanceof QueueError && error.code === 'ERR_INVALID_OPTION',
    );
    const after = contents();
    assert.deepEqual(after, before);
  });
});
