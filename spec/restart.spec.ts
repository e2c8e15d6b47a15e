// Reopening the directory after every kind of operation gives back exactly the
// state a careful user expects: unacknowledged items are handed out again,
// acknowledged ones never are, and the order is kept.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Queue, type QueueOptions } from '../lib/index.js';
import { HINT_EVERY_CHUNKS } from '../lib/store/prefix.js';
import { SWEEP_BY_LISTING_CHUNKS } from '../lib/store/recovery.js';
import { chunkFiles, tempQueueDir } from './helpers.js';

const chunkName = (chunk: number): string => `chunk-${String(chunk).padStart(16, '0')}`;

async function reopen<T>(q: Queue<T>, options?: QueueOptions): Promise<Queue<T>> {
  await q.close();
  return Queue.open<T>(q.dir, options);
}

describe('restart after each operation', () => {
  test('put', async (t) => {
    let q = await Queue.open<string>(tempQueueDir(t), { chunkSize: 2 });
    await q.putMany(['a', 'b', 'c']);
    q = await reopen(q);
    assert.equal(q.size, 3);
    assert.deepEqual(await q.getMany(3), ['a', 'b', 'c']);
    await q.close();
  });

  test('get without taskDone hands the items out again', async (t) => {
    let q = await Queue.open<string>(tempQueueDir(t), { chunkSize: 2 });
    await q.putMany(['a', 'b', 'c']);
    await q.get();
    await q.get();
    q = await reopen(q);
    assert.equal(q.size, 3);
    assert.equal(await q.get(), 'a');
    await q.close();
  });

  test('taskDone persists exactly the acknowledged prefix', async (t) => {
    let q = await Queue.open<string>(tempQueueDir(t), { chunkSize: 2 });
    await q.putMany(['a', 'b', 'c', 'd', 'e']);
    await q.getMany(4);
    await q.taskDone();
    await q.taskDone();
    await q.taskDone();
    q = await reopen(q);
    assert.deepEqual(await q.getMany(10), ['d', 'e']);
    await q.close();
  });

  test('clear', async (t) => {
    let q = await Queue.open<string>(tempQueueDir(t), { chunkSize: 2 });
    await q.putMany(['a', 'b', 'c']);
    await q.clear();
    q = await reopen(q);
    assert.equal(q.size, 0);
    await q.put('z');
    q = await reopen(q);
    assert.deepEqual(await q.getMany(5), ['z']);
    await q.close();
  });

  test('autosave get', async (t) => {
    let q = await Queue.open<string>(tempQueueDir(t), { chunkSize: 2, autosave: true });
    await q.putMany(['a', 'b', 'c']);
    await q.get();
    q = await reopen(q, { autosave: true });
    assert.deepEqual(await q.getMany(5), ['b', 'c']);
    await q.close();
  });

  test('exactly at a chunk boundary, with the chunk deleted', async (t) => {
    const dir = tempQueueDir(t);
    let q = await Queue.open<number>(dir, { chunkSize: 3 });
    await q.putMany([0, 1, 2]);
    await q.getMany(3);
    for (let i = 0; i < 3; i++) await q.taskDone();
    assert.deepEqual(chunkFiles(dir), []);
    q = await reopen(q);
    assert.equal(q.size, 0);
    await q.putMany([3, 4, 5, 6]);
    q = await reopen(q);
    assert.deepEqual(await q.getMany(10), [3, 4, 5, 6]);
    await q.close();
  });

  test('acknowledged chunks a crash left behind are deleted at open, even with a gap below the oldest chunk', async (t) => {
    const dir = tempQueueDir(t);
    let q = await Queue.open<number>(dir, { chunkSize: 2 });
    await q.putMany([0, 1, 2, 3, 4, 5, 6, 7]);
    // A chunk whose items were acknowledged is deleted once the cursor entry
    // that frees it is durable; a process killed in between leaves it. Here:
    // a copy of chunk 1 put back after its items were acknowledged.
    const kept = fs.readFileSync(path.join(dir, 'chunk-0000000000000001'));
    await q.getMany(6);
    await q.taskDone(6);
    assert.deepEqual(chunkFiles(dir), ['chunk-0000000000000003']);
    fs.writeFileSync(path.join(dir, 'chunk-0000000000000001'), kept);
    q = await reopen(q);
    assert.deepEqual(
      chunkFiles(dir),
      ['chunk-0000000000000003'],
      'the chunk below the prefix is gone; chunk 2 between them was deleted before',
    );
    assert.deepEqual(await q.getMany(2), [6, 7]);
    await q.close();
  });

  test(`a queue of more than ${SWEEP_BY_LISTING_CHUNKS} chunks probes only right below the prefix at open; a later open of a small queue lists and deletes the rest`, async (t) => {
    const dir = tempQueueDir(t);
    let q = await Queue.open<number>(dir, { chunkSize: 1 });
    await q.putMany(Array.from({ length: HINT_EVERY_CHUNKS + 76 }, (_, i) => i));
    const copies = new Map([5, 698, 699].map((chunk) => [chunk, fs.readFileSync(path.join(dir, chunkName(chunk)))]));
    await q.getMany(700);
    await q.taskDone(700);
    await q.close();
    for (const [chunk, bytes] of copies) fs.writeFileSync(path.join(dir, chunkName(chunk)), bytes);
    // The head hint (folded at chunk HINT_EVERY_CHUNKS) is more than SWEEP_BY_LISTING_CHUNKS past the prefix (700).
    q = await Queue.open<number>(dir);
    assert.ok(
      !fs.existsSync(path.join(dir, chunkName(698))) && !fs.existsSync(path.join(dir, chunkName(699))),
      'the run right below the prefix is deleted',
    );
    assert.ok(fs.existsSync(path.join(dir, chunkName(5))), 'a chunk further down waits (no listing of a large queue)');
    assert.deepEqual(await q.getMany(2), [700, 701]);
    await q.taskDone(2);
    const rest = await q.getMany(HINT_EVERY_CHUNKS);
    await q.taskDone(rest.length);
    q = await reopen(q);
    assert.ok(!fs.existsSync(path.join(dir, chunkName(5))), 'the open of the drained queue lists and deletes it');
    assert.equal(q.size, 0);
    await q.close();
  });

  test('many more chunks than the head hint covers are found on open', async (t) => {
    const dir = tempQueueDir(t);
    let q = await Queue.open<number>(dir, { chunkSize: 1 });
    const items = Array.from({ length: 300 }, (_, i) => i);
    for (const item of items) await q.put(item);
    q = await reopen(q);
    assert.equal(q.size, 300);
    assert.deepEqual(await q.getMany(1000), items);
    await q.close();
  });
});

describe('randomised restarts against a model', () => {
  for (const options of [{ chunkSize: 3 }, { chunkSize: 4, autosave: true }, { chunkSize: 5, fsync: 'always' as const }]) {
    test(`matches an in-memory model across 40 reopens (${JSON.stringify(options)})`, async (t) => {
      const dir = tempQueueDir(t);
      let seed = 12345;
      const random = (n: number): number => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed % n;
      };
      // The model: items waiting in order, and items handed out but not acknowledged.
      let waiting: number[] = [];
      let handedOut: number[] = [];
      let next = 0;
      let q = await Queue.open<number>(dir, options);
      for (let round = 0; round < 40; round++) {
        for (let step = 0; step < 15; step++) {
          const op = random(6);
          if (op <= 1) {
            const batch = Array.from({ length: 1 + random(6) }, () => next++);
            await q.putMany(batch);
            waiting.push(...batch);
          } else if (op === 2 && waiting.length > 0) {
            const item = waiting.shift() as number;
            assert.equal(await q.get(), item);
            handedOut.push(item);
          } else if (op === 3 && handedOut.length > 0) {
            await q.taskDone();
            handedOut.shift();
          } else if (op === 4 && random(10) === 0) {
            await q.clear();
            waiting = [];
            handedOut = [];
          } else if (op === 5) {
            assert.equal(await q.peek(), waiting[0]);
          }
          assert.equal(q.size, waiting.length);
        }
        // After a restart, unacknowledged items come back first (with autosave, a get was final).
        if (!options.autosave) waiting = [...handedOut, ...waiting];
        handedOut = [];
        q = await reopen(q, options);
        assert.equal(q.size, waiting.length);
      }
      assert.deepEqual(waiting.length === 0 ? [] : await q.getMany(waiting.length), waiting);
      await q.close();
    });
  }
});
