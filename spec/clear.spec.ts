// clear() deletes the chunk files of every item, and the queue goes on at a
// chunk boundary past them: a chunk number is never used for a second file.
// Other processes keep descriptors on the newest chunk between their holds
// and tell it by its number; had clear let the next put make a new file under
// the number of the one it deleted, such a process would append to the old,
// deleted file, and the items it put would be lost (or land in whichever
// chunk that file became as a spare).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Queue } from '../lib/index.js';
import { chunkFiles, exited, forkFixture, tempQueueDir } from './helpers.js';

describe('clear and the newest chunk', () => {
  for (const create of ['new-files', 'spares'] as const) {
    test(`a clear while the newest chunk is empty (next chunk from ${create}): a process that opened before it puts where readers look`, async (t) => {
      const dir = tempQueueDir(t);
      const setup = await Queue.open<number>(dir, { chunkSize: 4 });
      await setup.putMany([0, 1, 2, 3]);
      await setup.close();
      // What a writer killed between creating the next chunk and writing to it
      // leaves (or a power cut that took the chunk's unsynced bytes): an empty
      // newest chunk, which open makes the head, at a chunk boundary.
      fs.writeFileSync(path.join(dir, 'chunk-0000000000000001'), '');

      const early = await Queue.open<number>(dir, { pollInterval: 10 });
      assert.equal(early.size, 4);
      // Another process clears and puts.
      const other = forkFixture('clear-and-put', [dir, '100', create]);
      assert.deepEqual(await exited(other), { code: 0, signal: null });
      await early.put(101);
      await early.put(102);
      const reader = await Queue.open<number>(dir);
      assert.equal(reader.size, 3);
      assert.deepEqual(await reader.getMany(3), [100, 101, 102]);
      await reader.close();
      await early.close();
      assert.ok(
        chunkFiles(dir).every((name) => name !== 'chunk-0000000000000001'),
        `chunk 1 was not made again: ${chunkFiles(dir).join(', ')}`,
      );
    });
  }
});
