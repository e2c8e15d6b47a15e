// lib/store/store.ts: the on-disk state of one queue, driven directly (the lock and
// the waiting are the Queue's). Real files; what is asserted is what is on
// disk and which files are open.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { QueueError } from '../lib/errors.js';
import { resolveOptions, type QueueOptions } from '../lib/options.js';
import { loadCursor } from '../lib/store/cursor.js';
import { HINT_EVERY_CHUNKS } from '../lib/store/prefix.js';
import type { QueueStore } from '../lib/store/store.js';
import { openStore as openStoreIn } from '../lib/store/open-store.js';
import { chunkFiles, tempQueueDir } from './helpers.js';

/** Opens a store on a fresh directory (each test closes it before the directory is removed). */
function openStore(t: TestContext, options: QueueOptions = {}): { store: QueueStore; dir: string } {
  const dir = tempQueueDir(t);
  fs.mkdirSync(dir, { recursive: true });
  return { store: openStoreIn(dir, resolveOptions(dir, options)), dir };
}

/** Chunk files this process has open (Linux: /proc/self/fd). */
function openChunkFiles(dir: string): string[] {
  const open: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (path.dirname(target) === dir && path.basename(target).startsWith('chunk-')) open.push(path.basename(target));
  }
  return open.sort();
}

/** The head hint stored in the cursor file. */
function cursorFileHeadHint(dir: string): number {
  return loadCursor(dir).file!.headHint;
}

describe('QueueStore', () => {
  test("an append spanning chunks under fsync: 'always' keeps every chunk it wrote open until a sync round has covered it", async (t) => {
    const { store, dir } = openStore(t, { chunkSize: 10, fsync: 'always' });
    store.append(Array.from({ length: 25 }, (_, i) => i));
    assert.deepEqual(chunkFiles(dir), ['chunk-0000000000000000', 'chunk-0000000000000001', 'chunk-0000000000000002']);
    assert.deepEqual(openChunkFiles(dir), chunkFiles(dir), 'the two full chunks wait for their fsync before they are closed');
    await store.durability.settle();
    assert.deepEqual(openChunkFiles(dir), ['chunk-0000000000000002']);
    await store.close();
  });

  test('the head hint is folded into the cursor file every HINT_EVERY_CHUNKS new chunks while the queue stays open', async (t) => {
    const { store, dir } = openStore(t, { chunkSize: 1 });
    assert.equal(cursorFileHeadHint(dir), 0);
    for (let i = 0; i < HINT_EVERY_CHUNKS - 1; i++) store.append([i]);
    assert.equal(cursorFileHeadHint(dir), 0, `no fold before ${HINT_EVERY_CHUNKS} chunks`);
    store.append([HINT_EVERY_CHUNKS - 1]);
    store.append([HINT_EVERY_CHUNKS]);
    assert.equal(cursorFileHeadHint(dir), HINT_EVERY_CHUNKS);
    for (let i = HINT_EVERY_CHUNKS + 1; i < 2 * HINT_EVERY_CHUNKS + 2; i++) store.append([i]);
    assert.equal(cursorFileHeadHint(dir), 2 * HINT_EVERY_CHUNKS);
    await store.close();
  });

  test('a batch with an item that cannot be encoded leaves no chunk and no byte behind, even after several chunks', async (t) => {
    const { store, dir } = openStore(t, { chunkSize: 10, serializer: 'json' });
    store.append([1, 2, 3]);
    const before = fs.readFileSync(path.join(dir, 'chunk-0000000000000000'));
    const items: unknown[] = Array.from({ length: 35 }, (_, i) => i);
    items.push(() => 'no');
    assert.throws(
      () => store.append(items),
      (error: unknown) => error instanceof QueueError && error.code === 'ERR_SERIALIZE',
    );
    assert.deepEqual(chunkFiles(dir), ['chunk-0000000000000000']);
    assert.deepEqual(fs.readFileSync(path.join(dir, 'chunk-0000000000000000')), before);
    assert.equal(store.headSeq, 3);
    store.append([4]);
    assert.deepEqual(store.take(10, 'acknowledge'), [1, 2, 3, 4]);
    await store.close();
  });

  test('acknowledging deletes exactly the chunks every item of which is acknowledged', async (t) => {
    const { store, dir } = openStore(t, { chunkSize: 10 });
    store.append(Array.from({ length: 30 }, (_, i) => i));
    assert.equal(store.take(25, 'hold').length, 25);
    for (let i = 0; i < 9; i++) store.acknowledgeOldest();
    assert.deepEqual(chunkFiles(dir), ['chunk-0000000000000000', 'chunk-0000000000000001', 'chunk-0000000000000002']);
    store.acknowledgeOldest();
    assert.deepEqual(chunkFiles(dir), ['chunk-0000000000000001', 'chunk-0000000000000002']);
    for (let i = 0; i < 10; i++) store.acknowledgeOldest();
    assert.deepEqual(chunkFiles(dir), ['chunk-0000000000000002']);
    assert.equal(store.ackSeq, 20);
    await store.close();
  });
});
