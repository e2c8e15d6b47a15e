// lib/store/spares.ts: acknowledged chunks kept, emptied, as spares and taken as
// the next chunks instead of creating files. Through a real Queue on real
// files: a drained chunk's inode comes back as a later chunk holding the right
// items; no more than SPARE_FILES.length spares are kept; spares with a gap in
// their names are found and the gap filled; a spare left linked to a chunk in
// use (a crash between link and unlink) is never written through; an
// existing file where the next chunk goes is still ERR_CORRUPT.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chunkPath } from '../lib/store/chunk.js';
import { Queue } from '../lib/index.js';
import { SPARE_FILES, spareTuning } from '../lib/store/spares.js';
import { chunkFiles, tempQueueDir } from './helpers.js';

function sparesIn(dir: string): string[] {
  return SPARE_FILES.filter((spare) => fs.existsSync(path.join(dir, spare)));
}

function assertOneNameEach(dir: string): void {
  for (const name of chunkFiles(dir)) assert.equal(fs.statSync(path.join(dir, name)).nlink, 1, `${name} has one name`);
}

/** Gets and acknowledges `count` items, one at a time. */
async function drain(q: Queue<number>, count: number): Promise<number[]> {
  const got: number[] = [];
  for (let i = 0; i < count; i++) {
    got.push(await q.get());
    await q.taskDone();
  }
  return got;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('spare chunk files', () => {
  // Spares are taken only where creating a file is dear; make it so here.
  const measured = spareTuning.takeSparesAboveCreateUs;
  before(() => (spareTuning.takeSparesAboveCreateUs = 0));
  after(() => (spareTuning.takeSparesAboveCreateUs = measured));

  test('a queue that is only filled keeps no spares', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir, { chunkSize: 2 });
    await q.putMany(range(0, 20));
    await q.close();
    assert.deepEqual(sparesIn(dir), []);
  });

  test('a drained chunk is kept, emptied, as a spare, and becomes a later chunk', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir, { chunkSize: 2 });
    try {
      await q.putMany([0, 1, 2, 3]);
      const { ino } = fs.statSync(chunkPath(dir, 0));
      assert.deepEqual(await drain(q, 2), [0, 1]);
      assert.equal(fs.existsSync(chunkPath(dir, 0)), false);
      const [spare] = sparesIn(dir);
      assert.ok(spare !== undefined, 'the chunk was kept as a spare');
      assert.equal(fs.statSync(path.join(dir, spare)).ino, ino);
      assert.equal(fs.statSync(path.join(dir, spare)).size, 0);
      await q.putMany([4, 5]);
      assert.equal(fs.statSync(chunkPath(dir, 2)).ino, ino, 'the next chunk is that inode');
      assert.deepEqual(sparesIn(dir), []);
      assert.deepEqual(await q.getMany(10), [2, 3, 4, 5]);
    } finally {
      await q.close();
    }
  });

  test('at most SPARE_FILES.length spares are kept; a queue filled and drained in turn keeps its items in order', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir, { chunkSize: 2 });
    try {
      // Two items a chunk: more drained chunks than there are spare names.
      const count = 2 * (SPARE_FILES.length + 10);
      await q.putMany(range(0, count));
      assert.deepEqual(await drain(q, count), range(0, count));
      assert.deepEqual(chunkFiles(dir), []);
      assert.deepEqual(sparesIn(dir), SPARE_FILES);
      for (const spare of SPARE_FILES) assert.equal(fs.statSync(path.join(dir, spare)).size, 0);
      for (let round = 1; round <= 5; round++) {
        await q.putMany(range(round * 100, round * 100 + 7));
        assert.deepEqual(await drain(q, 7), range(round * 100, round * 100 + 7));
        assertOneNameEach(dir);
        assert.ok(sparesIn(dir).length > 0, `round ${round}: drained chunks were kept as spares again`);
      }
    } finally {
      await q.close();
    }
    const reopened = await Queue.open<number>(dir);
    try {
      assert.equal(reopened.size, 0);
      await reopened.putMany([1, 2, 3]);
      assert.deepEqual(await reopened.getMany(10), [1, 2, 3]);
    } finally {
      await reopened.close();
    }
  });

  test('a spare left linked to a chunk in use is not taken: that chunk keeps its items', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir, { chunkSize: 2 });
    await q.putMany(range(0, 20));
    await q.close();
    // As if claims had crashed between their link and their unlink: the two
    // spare names there are are second names of the newest chunk, which is
    // full and in use.
    const newest = chunkPath(dir, 9);
    const before = fs.readFileSync(newest);
    for (const spare of SPARE_FILES.slice(0, 2)) fs.linkSync(newest, path.join(dir, spare));

    const reopened = await Queue.open<number>(dir);
    await reopened.putMany(range(20, 30));
    await reopened.close();
    assert.deepEqual(fs.readFileSync(newest), before, 'the chunk was not written through a spare name');
    assertOneNameEach(dir);
    assert.deepEqual(sparesIn(dir), [], 'the spare names were let go');

    const last = await Queue.open<number>(dir);
    try {
      assert.deepEqual(await last.getMany(100), range(0, 30));
    } finally {
      await last.close();
    }
  });

  test('spares with a gap in their names are taken, and recycling closes the gap', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir, { chunkSize: 2 });
    await q.close();
    // As a crash mid-claim or a deletion outside the lock can leave them.
    const present = [0, 1, 2, 5];
    for (const slot of present) fs.writeFileSync(path.join(dir, SPARE_FILES[slot]), '');
    const spareInodes = new Set(present.map((slot) => fs.statSync(path.join(dir, SPARE_FILES[slot])).ino));

    const reopened = await Queue.open<number>(dir);
    try {
      await reopened.putMany(range(0, 12));
      const fromSpares = range(0, 6).filter((chunk) => spareInodes.has(fs.statSync(chunkPath(dir, chunk)).ino));
      assert.deepEqual(fromSpares, [0, 1, 2], 'the three spares below the gap became the next chunks');
      assert.deepEqual(sparesIn(dir), [SPARE_FILES[5]], 'the spare above the gap was not found');
      assert.deepEqual(await drain(reopened, 12), range(0, 12));
      // Six drained chunks fill spare-0 .. spare-4 below the stranded spare-5, then spare-6 above it.
      assert.deepEqual(sparesIn(dir), SPARE_FILES.slice(0, 7));
      assertOneNameEach(dir);
      await reopened.putMany(range(12, 14));
      assert.deepEqual(sparesIn(dir), SPARE_FILES.slice(0, 6), 'the highest spare is taken first');
      assert.deepEqual(await reopened.getMany(10), [12, 13]);
    } finally {
      await reopened.close();
    }
  });

  test('a file that already exists where the next chunk goes is ERR_CORRUPT with spares there too', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir, { chunkSize: 2 });
    try {
      await q.putMany(range(0, 4));
      await drain(q, 4);
      assert.ok(sparesIn(dir).length > 0);
      fs.writeFileSync(chunkPath(dir, 2), 'not perq');
      await assert.rejects(q.put(4), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ERR_CORRUPT');
        assert.ok(error.message.includes(dir));
        return true;
      });
      assert.equal(fs.readFileSync(chunkPath(dir, 2), 'utf8'), 'not perq');
      assert.equal(q.size, 0);
    } finally {
      await q.close();
    }
  });
});

describe('spare chunk files where creating a file is cheap', () => {
  const measured = spareTuning.takeSparesAboveCreateUs;
  before(() => (spareTuning.takeSparesAboveCreateUs = Number.POSITIVE_INFINITY));
  after(() => (spareTuning.takeSparesAboveCreateUs = measured));

  test('a writer creates its chunks and leaves the spares alone', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir, { chunkSize: 2 });
    try {
      await q.putMany([0, 1, 2, 3]);
      assert.deepEqual(await drain(q, 2), [0, 1]);
      const [spare] = sparesIn(dir);
      assert.ok(spare !== undefined, 'drained chunks are still kept, for writers where creating is dear');
      const { ino } = fs.statSync(path.join(dir, spare));
      await q.putMany([4, 5]);
      assert.notEqual(fs.statSync(chunkPath(dir, 2)).ino, ino);
      assert.equal(fs.statSync(path.join(dir, spare)).ino, ino, 'the spare is still there');
      assert.deepEqual(await q.getMany(10), [2, 3, 4, 5]);
    } finally {
      await q.close();
    }
  });
});
