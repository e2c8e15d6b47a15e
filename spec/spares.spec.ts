// lib/spares.ts and lib/spare-maker.ts: spare chunk files made ahead by a
// worker thread and taken as the next chunks. Through a real Queue on real
// files: when spares appear, that they become chunks holding the right items,
// that none appears after close, and that a spare left linked to a chunk in
// use (a crash between link and unlink) is never written through.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { chunkPath } from '../lib/chunk.js';
import { Queue } from '../lib/index.js';
import { SPARE_FILES, SPARES_DIR } from '../lib/spares.js';
import { chunkFiles, tempQueueDir } from './helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function sparesIn(dir: string): string[] {
  return SPARE_FILES.filter((spare) => fs.existsSync(path.join(dir, spare)));
}

/** Puts `items` one call each, waiting a little now and then so the maker can keep up. */
async function putOneByOne(q: Queue<number>, items: number[]): Promise<void> {
  for (const item of items) {
    await q.put(item);
    if (item % 3 === 0) await sleep(5);
  }
}

describe('spare chunk files', () => {
  test('a queue that fills only a few chunks asks for no spares', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir, { chunkSize: 2 });
    await q.putMany([1, 2, 3, 4, 5, 6]);
    await q.close();
    assert.equal(fs.existsSync(path.join(dir, SPARES_DIR)), false);
  });

  test('spares become chunks that hold the right items; each chunk has one name; none appears after close', async (t) => {
    const dir = tempQueueDir(t);
    const items = Array.from({ length: 60 }, (_, i) => i);
    const q = await Queue.open<number>(dir, { chunkSize: 2 });
    await putOneByOne(q, items);
    await q.close();
    const spares = sparesIn(dir);
    assert.ok(spares.length > 0, 'the maker made spares');
    for (const spare of spares) assert.equal(fs.statSync(path.join(dir, spare)).size, 0);
    for (const name of chunkFiles(dir)) assert.equal(fs.statSync(path.join(dir, name)).nlink, 1, `${name} has one name`);
    assert.equal(chunkFiles(dir).length, 30);
    await sleep(100);
    assert.deepEqual(sparesIn(dir), spares, 'nothing was made after close');

    const reopened = await Queue.open<number>(dir);
    try {
      assert.deepEqual(await reopened.getMany(100), items);
    } finally {
      await reopened.close();
    }
  });

  test('a spare left linked to a chunk in use is not taken: that chunk keeps its items', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir, { chunkSize: 2 });
    await putOneByOne(q, Array.from({ length: 20 }, (_, i) => i));
    await q.close();
    // As if a claim had crashed between its link and its unlink: every slot
    // holds a second name of the newest chunk, which is full and in use.
    const newest = chunkPath(dir, 9);
    const before = fs.readFileSync(newest);
    for (const spare of SPARE_FILES) {
      fs.mkdirSync(path.dirname(path.join(dir, spare)), { recursive: true });
      fs.rmSync(path.join(dir, spare), { force: true });
      fs.linkSync(newest, path.join(dir, spare));
    }

    const reopened = await Queue.open<number>(dir);
    await putOneByOne(reopened, Array.from({ length: 20 }, (_, i) => 20 + i));
    await reopened.close();
    assert.deepEqual(fs.readFileSync(newest), before, 'the chunk was not written through a spare name');
    for (const name of chunkFiles(dir)) assert.equal(fs.statSync(path.join(dir, name)).nlink, 1, `${name} has one name`);

    const last = await Queue.open<number>(dir);
    try {
      assert.deepEqual(await last.getMany(100), Array.from({ length: 40 }, (_, i) => i));
    } finally {
      await last.close();
    }
  });

  test('a chunk file that already exists where the next chunk goes is ERR_CORRUPT with spares ready too', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir, { chunkSize: 2 });
    try {
      await putOneByOne(q, Array.from({ length: 20 }, (_, i) => i));
      await sleep(50);
      assert.ok(sparesIn(dir).length > 0);
      fs.writeFileSync(chunkPath(dir, 10), 'not perq');
      await assert.rejects(q.put(20), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ERR_CORRUPT');
        assert.ok(error.message.includes(dir));
        return true;
      });
      assert.equal(fs.readFileSync(chunkPath(dir, 10), 'utf8'), 'not perq');
      assert.equal(q.size, 20);
    } finally {
      await q.close();
    }
  });
});
