// lib/errors.ts: one QueueError class with a code; Empty and Full for
// instanceof; every message names the directory, and the file and offset
// when there are some. Also checks errors thrown by a real queue.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Empty, Full, QueueError, ioError } from '../lib/errors.js';
import * as perq from '../lib/index.js';
import { HEADER_BYTES } from '../lib/store/record.js';
import { tempQueueDir } from './helpers.js';

const DIR = '/srv/queues/mail';

describe('QueueError', () => {
  test('is an Error with a code, the directory, and a message naming the directory', () => {
    const error = new QueueError('ERR_QUEUE_CLOSED', DIR, 'the queue is closed');
    assert.ok(error instanceof Error);
    assert.ok(error instanceof QueueError);
    assert.equal(error.name, 'QueueError');
    assert.equal(error.code, 'ERR_QUEUE_CLOSED');
    assert.equal(error.dir, DIR);
    assert.equal(error.file, undefined);
    assert.equal(error.offset, undefined);
    assert.equal(error.message, `perq queue ${DIR}: the queue is closed`);
    assert.ok(String(error).startsWith('QueueError: perq queue /srv/queues/mail'), String(error));
    assert.equal(typeof error.stack, 'string');
  });

  test('names the file when there is one', () => {
    const file = path.join(DIR, 'info');
    const error = new QueueError('ERR_FORMAT', DIR, 'not a queue', { file });
    assert.equal(error.file, file);
    assert.equal(error.offset, undefined);
    assert.ok(error.message.includes(DIR));
    assert.ok(error.message.includes(`file ${file}`), error.message);
    assert.ok(!error.message.includes('offset'), error.message);
  });

  test('names the file and the offset, including offset 0', () => {
    const file = path.join(DIR, 'chunk-0000000000000003');
    for (const offset of [0, 4096]) {
      const error = new QueueError('ERR_CORRUPT', DIR, 'damaged record', { file, offset });
      assert.equal(error.file, file);
      assert.equal(error.offset, offset);
      assert.ok(error.message.includes(`file ${file} at offset ${offset}`), error.message);
    }
  });

  test('keeps its cause', () => {
    const cause = new Error('disk on fire');
    assert.equal(new QueueError('ERR_IO', DIR, 'write failed', { cause }).cause, cause);
    assert.equal(new QueueError('ERR_IO', DIR, 'write failed').cause, undefined);
  });
});

describe('Empty and Full', () => {
  test('Empty is a QueueError with code ERR_EMPTY, naming the directory', () => {
    const error = new Empty(DIR);
    assert.ok(error instanceof Empty);
    assert.ok(error instanceof QueueError);
    assert.ok(error instanceof Error);
    assert.ok(!(error instanceof Full));
    assert.equal(error.name, 'Empty');
    assert.equal(error.code, 'ERR_EMPTY');
    assert.equal(error.dir, DIR);
    assert.ok(error.message.includes(DIR));
    assert.ok(new Empty(DIR, 'nothing within 5 ms').message.includes('nothing within 5 ms'));
  });

  test('Full is a QueueError with code ERR_FULL, naming the directory', () => {
    const error = new Full(DIR);
    assert.ok(error instanceof Full);
    assert.ok(error instanceof QueueError);
    assert.ok(!(error instanceof Empty));
    assert.equal(error.name, 'Full');
    assert.equal(error.code, 'ERR_FULL');
    assert.ok(error.message.includes(DIR));
  });

  test('the package exports the same classes', () => {
    assert.equal(perq.QueueError, QueueError);
    assert.equal(perq.Empty, Empty);
    assert.equal(perq.Full, Full);
  });
});

describe('ioError', () => {
  test('wraps a file system error as ERR_IO keeping its code, the file and the cause', () => {
    let cause: unknown;
    const missing = path.join(DIR, 'no-such-dir', 'file');
    try {
      fs.readFileSync(missing);
    } catch (error) {
      cause = error;
    }
    const error = ioError(DIR, 'reading the thing', cause, missing);
    assert.equal(error.code, 'ERR_IO');
    assert.equal(error.cause, cause);
    assert.equal(error.file, missing);
    assert.ok(error.message.includes('reading the thing failed: ENOENT'), error.message);
    assert.ok(error.message.includes(DIR) && error.message.includes(missing), error.message);
  });

  test('a cause without a code is reported as EIO', () => {
    const error = ioError(DIR, 'syncing', new Error('odd'));
    assert.ok(error.message.includes('syncing failed: EIO'), error.message);
    assert.equal(error.file, undefined);
    assert.ok(ioError(DIR, 'syncing', undefined).message.includes('EIO'));
  });
});

describe('errors from a real queue', () => {
  test('getNowait on an empty queue rejects Empty naming the directory; putNowait on a full one rejects Full', async (t) => {
    const dir = tempQueueDir(t);
    const q = await perq.Queue.open<number>(dir, { maxSize: 1 });
    try {
      await assert.rejects(q.getNowait(), (error: unknown) => {
        assert.ok(error instanceof Empty);
        assert.equal(error.code, 'ERR_EMPTY');
        assert.ok(error.message.includes(dir), error.message);
        return true;
      });
      await q.put(1);
      await assert.rejects(q.putNowait(2), (error: unknown) => {
        assert.ok(error instanceof Full);
        assert.equal(error.code, 'ERR_FULL');
        assert.ok(error.message.includes(dir), error.message);
        return true;
      });
    } finally {
      await q.close();
    }
  });

  test('a damaged record is ERR_CORRUPT naming the directory, the chunk file and the offset', async (t) => {
    const dir = tempQueueDir(t);
    const q = await perq.Queue.open<Uint8Array>(dir, { serializer: 'raw' });
    await q.putMany([new Uint8Array(8).fill(1), new Uint8Array(8).fill(2)]);
    await q.close();
    const file = path.join(dir, 'chunk-0000000000000000');
    const bytes = fs.readFileSync(file);
    // Record 1 starts after record 0's header and 8-byte payload.
    const second = HEADER_BYTES + 8;
    bytes[second + HEADER_BYTES + 3] ^= 0xff;
    fs.writeFileSync(file, bytes);
    const reopened = await perq.Queue.open<Uint8Array>(dir, { serializer: 'raw' });
    try {
      assert.deepEqual(await reopened.get(), new Uint8Array(8).fill(1));
      await assert.rejects(reopened.get(), (error: unknown) => {
        assert.ok(error instanceof QueueError);
        assert.equal(error.code, 'ERR_CORRUPT');
        assert.equal(error.file, file);
        assert.equal(error.offset, second);
        assert.ok(error.message.includes(dir) && error.message.includes(file) && error.message.includes(`offset ${second}`), error.message);
        return true;
      });
    } finally {
      await reopened.close();
    }
  });

  test('a call on a closed queue is ERR_QUEUE_CLOSED naming the directory', async (t) => {
    const dir = tempQueueDir(t);
    const q = await perq.Queue.open<number>(dir);
    await q.close();
    await assert.rejects(
      q.put(1),
      (error: unknown) => error instanceof QueueError && error.code === 'ERR_QUEUE_CLOSED' && error.message.includes(dir),
    );
  });
});
