// Bad input gets a QueueError with a code and the directory in its message,
// and leaves the queue directory byte for byte as it was.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Queue, QueueError, type GetManyOptions, type GetOptions, type PutOptions, type QueueOptions } from '../lib/index.js';
import { StateFile } from '../lib/store/state.js';
import { tempDir, tempQueueDir } from './helpers.js';

/** Every file in `dir` with its bytes, to compare before and after, once the queues of this process have published (their lock holds end when the event loop turns). */
async function snapshot(dir: string): Promise<Record<string, string>> {
  await new Promise((resolve) => setImmediate(resolve));
  const files: Record<string, string> = {};
  for (const name of fs.readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    if (name === 'state') files[name] = sharedState(dir);
    else if (fs.statSync(file).isFile()) files[name] = fs.readFileSync(file).toString('base64');
  }
  return files;
}

/** What the state file says about the queue, without its write counter and dirty mark (bookkeeping of every lock hold). */
function sharedState(dir: string): string {
  const file = new StateFile(dir);
  try {
    const state = file.read();
    if (state === null) return 'none';
    const { gen: _gen, dirty: _dirty, ...queue } = state;
    return JSON.stringify(queue);
  } finally {
    file.close();
  }
}

function isQueueError(code: string, dir: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof QueueError, `expected a QueueError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.ok(error.message.includes(dir), `message names the directory: ${error.message}`);
    return true;
  };
}

const cycle: Record<string, unknown> = {};
cycle.self = cycle;

const unencodable: Array<{ serializer: QueueOptions['serializer']; item: unknown; what: string }> = [
  { serializer: 'cbor', item: () => 1, what: 'a function under cbor' },
  { serializer: 'cbor', item: Symbol('s'), what: 'a symbol under cbor' },
  { serializer: 'cbor', item: { nested: { fn() {} } }, what: 'a nested function under cbor' },
  { serializer: 'cbor', item: cycle, what: 'a cycle under cbor' },
  { serializer: 'json', item: cycle, what: 'a cycle under json' },
  { serializer: 'json', item: () => 1, what: 'a function under json' },
  { serializer: 'json', item: undefined, what: 'undefined under json' },
  { serializer: 'json', item: 10n, what: 'a BigInt under json' },
  { serializer: 'msgpack', item: () => 1, what: 'a function under msgpack' },
  { serializer: 'msgpack', item: { fn() {} }, what: 'a nested function under msgpack' },
  { serializer: 'msgpack', item: Symbol('s'), what: 'a symbol under msgpack' },
  { serializer: 'cbor', item: 'half a pair \ud800', what: 'a string with a lone surrogate under cbor' },
  { serializer: 'msgpack', item: { nested: '\udc00' }, what: 'a nested lone surrogate under msgpack' },
  { serializer: 'raw', item: 'text', what: 'a string under raw' },
  { serializer: 'raw', item: [1, 2], what: 'an array under raw' },
  {
    serializer: {
      name: 'upper',
      encode: () => {
        throw new Error('nope');
      },
      decode: (b: Uint8Array) => b,
    },
    item: 'x',
    what: 'an item a custom serializer throws on',
  },
  {
    serializer: { name: 'bad-result', encode: () => 'not bytes' as unknown as Uint8Array, decode: (b: Uint8Array) => b },
    item: 'x',
    what: 'a custom serializer returning a string',
  },
];

describe('ERR_SERIALIZE leaves the queue exactly as it was', () => {
  for (const { serializer, item, what } of unencodable) {
    test(what, async (t) => {
      const dir = tempQueueDir(t);
      const q = await Queue.open(dir, { serializer, chunkSize: 2 });
      const good = serializer === 'raw' ? new Uint8Array([1]) : typeof serializer === 'object' ? undefined : 'good';
      if (good !== undefined) await q.put(good);
      const before = await snapshot(dir);
      const size = q.size;
      await assert.rejects(q.put(item), isQueueError('ERR_SERIALIZE', q.dir));
      if (good !== undefined) {
        await assert.rejects(q.putMany([good, good, item, good]), isQueueError('ERR_SERIALIZE', q.dir));
      }
      assert.throws(() => q.putSync(item), isQueueError('ERR_SERIALIZE', q.dir));
      assert.equal(q.size, size);
      assert.deepEqual(await snapshot(dir), before);
      if (good !== undefined) assert.deepEqual(await q.get(), good);
      await q.close();
    });
  }
});

describe('ERR_ITEM_TOO_LARGE', () => {
  test('an item over maxItemBytes is refused and nothing is written', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open(dir, { serializer: 'raw', maxItemBytes: 100, chunkSize: 3 });
    await q.put(new Uint8Array(100));
    const before = await snapshot(dir);
    await assert.rejects(q.put(new Uint8Array(101)), isQueueError('ERR_ITEM_TOO_LARGE', q.dir));
    // A batch that crosses chunk boundaries before the bad item is rolled back whole.
    const batch = [new Uint8Array(5), new Uint8Array(5), new Uint8Array(5), new Uint8Array(5), new Uint8Array(500)];
    await assert.rejects(q.putMany(batch), isQueueError('ERR_ITEM_TOO_LARGE', q.dir));
    assert.deepEqual(await snapshot(dir), before);
    assert.equal(q.size, 1);
    await q.close();
  });

  test('a string over maxItemBytes (cbor writes strings in place) is refused the same way', async (t) => {
    const dir = tempQueueDir(t);
    // 'x' * 98 encodes to 100 bytes: a 2-byte CBOR header and 98 bytes of UTF-8.
    const q = await Queue.open<string>(dir, { maxItemBytes: 100, chunkSize: 3 });
    await q.put('x'.repeat(98));
    const before = await snapshot(dir);
    await assert.rejects(q.put('x'.repeat(99)), isQueueError('ERR_ITEM_TOO_LARGE', q.dir));
    await assert.rejects(q.putMany(['a', 'b', 'c', 'd', '€'.repeat(40)]), isQueueError('ERR_ITEM_TOO_LARGE', q.dir));
    assert.deepEqual(await snapshot(dir), before);
    assert.deepEqual(await q.getMany(10), ['x'.repeat(98)]);
    await q.close();
  });
});

describe('reopening with different settings', () => {
  test('another chunkSize or serializer name is ERR_FORMAT; omitted ones are read from info', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open(dir, { chunkSize: 5, serializer: 'json' });
    await q.put({ a: 1 });
    await q.close();
    const before = await snapshot(dir);
    assert.throws(() => Queue.openSync(dir, { chunkSize: 6 }), isQueueError('ERR_FORMAT', path.resolve(dir)));
    assert.throws(() => Queue.openSync(dir, { serializer: 'cbor' }), isQueueError('ERR_FORMAT', path.resolve(dir)));
    assert.throws(
      () => Queue.openSync(dir, { serializer: { name: 'mine', encode: (v) => Buffer.from(String(v)), decode: (b) => b } }),
      isQueueError('ERR_FORMAT', path.resolve(dir)),
    );
    const again = await Queue.open(dir);
    assert.equal(again.chunkSize, 5);
    assert.equal(again.serializerName, 'json');
    assert.deepEqual(await again.get(), { a: 1 });
    await again.close();
    delete before.cursor; // closing refolds the cursor
    const after = await snapshot(dir);
    delete after.cursor;
    delete after['cursor.log'];
    delete before['cursor.log'];
    delete after['chunk-0000000000000000'];
    delete before['chunk-0000000000000000'];
    delete after.state; // the get moved the hand-out bookkeeping
    delete before.state;
    assert.deepEqual(after, before);
  });

  test('a queue made with a custom serializer needs it to be passed again', async (t) => {
    const dir = tempQueueDir(t);
    const upper = {
      name: 'upper',
      encode: (v: unknown) => Buffer.from(String(v).toUpperCase()),
      decode: (b: Uint8Array) => Buffer.from(b).toString(),
    };
    const q = await Queue.open(dir, { serializer: upper });
    await q.put('shout');
    await q.close();
    assert.throws(() => Queue.openSync(dir), isQueueError('ERR_FORMAT', path.resolve(dir)));
    const again = await Queue.open(dir, { serializer: upper });
    assert.equal(await again.get(), 'SHOUT');
    await again.close();
  });

  test('a directory that is not a queue is ERR_FORMAT and is left alone', (t) => {
    const dir = tempDir(t);
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    assert.throws(() => Queue.openSync(dir), isQueueError('ERR_FORMAT', dir));
    assert.deepEqual(fs.readdirSync(dir), ['notes.txt']);
    fs.writeFileSync(path.join(dir, 'info'), JSON.stringify({ something: 'else' }));
    assert.throws(() => Queue.openSync(dir), isQueueError('ERR_FORMAT', dir));
  });

  /** Every file below `dir` (relative path -> content, '<dir>' for directories). */
  function filesBelow(dir: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) {
      const file = path.join(dir, name);
      out[name] = fs.statSync(file).isDirectory() ? '<dir>' : fs.readFileSync(file, 'latin1');
    }
    return out;
  }

  for (const [what, files] of [
    ["someone else's file named state", { state: "my own state, not perq's" }],
    ['an empty file named state', { state: '' }],
    ["someone else's consumers/42", { 'consumers/42': 'a note of mine' }],
    ["someone else's file named cursor", { cursor: 'my cursor' }],
    ["someone else's file named cursor.log", { 'cursor.log': 'my log' }],
    ["someone else's info", { info: '{"name":"my project"}' }],
  ] as const) {
    test(`a directory holding only ${what} is refused and left exactly as it was (no lock file either)`, (t) => {
      const dir = tempDir(t);
      for (const [name, content] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
        fs.writeFileSync(path.join(dir, name), content);
      }
      const before = filesBelow(dir);
      assert.throws(
        () => Queue.openSync(dir),
        (error: unknown) => {
          assert.ok(error instanceof QueueError, String(error));
          assert.equal(error.code, 'ERR_FORMAT', error.message);
          assert.ok(error.message.includes(dir), error.message);
          return true;
        },
      );
      assert.deepEqual(filesBelow(dir), before);
    });
  }

  test('a foreign file in consumers/ of a real queue is never deleted', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open(dir);
    await q.put(1);
    await q.get();
    await q.close();
    fs.writeFileSync(path.join(dir, 'consumers', '42'), 'a note of mine');
    const again = await Queue.open(dir);
    await again.put(2);
    assert.equal(await again.get(), 1);
    await again.close();
    assert.equal(fs.readFileSync(path.join(dir, 'consumers', '42'), 'utf8'), 'a note of mine');
  });

  test('a newer format version is ERR_FORMAT', async (t) => {
    const dir = tempQueueDir(t);
    await (await Queue.open(dir)).close();
    const info = JSON.parse(fs.readFileSync(path.join(dir, 'info'), 'utf8')) as { version: number };
    fs.writeFileSync(path.join(dir, 'info'), JSON.stringify({ ...info, version: info.version + 1 }));
    assert.throws(() => Queue.openSync(dir), isQueueError('ERR_FORMAT', path.resolve(dir)));
  });

  test('a second open of an open queue shares it instead of failing', async (t) => {
    const dir = tempQueueDir(t);
    const first = await Queue.open(dir);
    const second = await Queue.open(dir);
    await first.put('from the first');
    assert.equal(await second.get(), 'from the first');
    await second.taskDone();
    assert.equal(first.size, 0);
    await Promise.all([first.close(), second.close()]);
  });
});

describe('invalid options and arguments', () => {
  const bad: Array<[string, Record<string, unknown>]> = [
    ['chunkSize', { chunkSize: 0 }],
    ['chunkSize', { chunkSize: 1.5 }],
    ['chunkSize', { chunkSize: '100' }],
    ['fsync', { fsync: 'sometimes' }],
    ['fsync', { fsync: -5 }],
    ['pollInterval', { pollInterval: 0 }],
    ['locking', { locking: 'flockish' }],
    ['maxItemBytes', { maxItemBytes: 0 }],
    ['serializer', { serializer: 'yaml' }],
    ['serializer', { serializer: { name: 'x' } }],
    ['serializer', { serializer: { name: 'cbor', encode: () => new Uint8Array(), decode: () => 1 } }],
    ['autosave', { autosave: 'yes' }],
    ['watch', { watch: 1 }],
    ['staleAfter', { staleAfter: 1000 }],
    ['maxSize', { maxSize: 'big' }],
    ['chunksize', { chunksize: 10 }],
  ];
  for (const [name, options] of bad) {
    test(`${JSON.stringify(options, (_k, v: unknown) => (typeof v === 'function' ? 'fn' : v))} is ERR_INVALID_OPTION naming ${name}`, (t) => {
      const dir = tempQueueDir(t);
      assert.throws(
        () => Queue.openSync(dir, options),
        (error: unknown) => {
          assert.ok(error instanceof QueueError);
          assert.equal(error.code, 'ERR_INVALID_OPTION');
          assert.ok(error.message.includes(name), error.message);
          return true;
        },
      );
      assert.equal(fs.existsSync(dir), false, 'nothing is created for a bad option');
    });
  }

  test('bad per-call options are ERR_INVALID_ARG', async (t) => {
    const q = await Queue.open(tempQueueDir(t));
    await assert.rejects(q.get({ timeout: -1 }), { code: 'ERR_INVALID_ARG' });
    await assert.rejects(q.get({ timeout: Number.NaN }), { code: 'ERR_INVALID_ARG' });
    await assert.rejects(q.put(1, { block: 'no' as unknown as boolean }), { code: 'ERR_INVALID_ARG' });
    await assert.rejects(q.putMany(5 as unknown as number[]), { code: 'ERR_INVALID_ARG' });
    await assert.rejects(q.get({ signal: {} as AbortSignal }), { code: 'ERR_INVALID_ARG' });
    for (const options of [null, 5, 'x', true]) {
      await assert.rejects(q.get(options as unknown as GetOptions), { code: 'ERR_INVALID_ARG' }, `get(${String(options)})`);
      await assert.rejects(
        q.getMany(2, options as unknown as GetManyOptions),
        { code: 'ERR_INVALID_ARG' },
        `getMany(2, ${String(options)})`,
      );
      await assert.rejects(q.put(1, options as unknown as PutOptions), { code: 'ERR_INVALID_ARG' }, `put(1, ${String(options)})`);
      await assert.rejects(
        q.putMany([1], options as unknown as PutOptions),
        { code: 'ERR_INVALID_ARG' },
        `putMany([1], ${String(options)})`,
      );
    }
    assert.equal(q.size, 0);
    await q.close();
  });

  test('an argument error shows the value refused: strings quoted, objects and functions by kind', async (t) => {
    const q = await Queue.open(tempQueueDir(t));
    const shown: Array<[Promise<unknown>, string]> = [
      [q.get({ timeout: '100' as unknown as number }), 'got "100"'],
      [q.get({ timeout: -1 }), 'got -1'],
      [q.put(1, { block: 'no' as unknown as boolean }), 'got "no"'],
      [q.put(1, { block: {} as unknown as boolean }), 'got an object'],
      [q.getMany('2' as unknown as number), 'got "2"'],
      [q.taskDone([1] as unknown as number), 'got an array'],
      [q.get(5 as unknown as GetOptions), 'got 5'],
      [q.get((() => 1) as unknown as GetOptions), 'got a function'],
    ];
    for (const [call, text] of shown) {
      await assert.rejects(call, (error: QueueError) => error.code === 'ERR_INVALID_ARG' && error.message.includes(text), text);
    }
    assert.throws(() => Queue.openSync(tempQueueDir(t, 'other'), { chunkSize: '100' as unknown as number }), /got "100"/);
    await q.close();
  });

  test('nothing a caller passes writes outside the queue directory', async (t) => {
    const parent = tempDir(t);
    const dir = path.join(parent, 'q');
    const sneaky = {
      name: '../../escape',
      encode: (v: unknown) => Buffer.from(String(v)),
      decode: (b: Uint8Array) => Buffer.from(b).toString(),
    };
    const q = await Queue.open(dir, { serializer: sneaky, chunkSize: 1 });
    await q.putMany(['../x', '/etc/passwd', '..']);
    assert.deepEqual(await q.getMany(3), ['../x', '/etc/passwd', '..']);
    await q.close();
    assert.deepEqual(fs.readdirSync(parent), ['q']);
  });
});
