// Directories written by an earlier format open and keep every item
// (spec/data/format-2/README.md says how they were made). Each test works on
// a copy: the fixtures themselves are never opened.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { Queue } from '../lib/index.js';
import { tempDir } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The fixtures sit in the source tree, beside this spec's source. */
const FIXTURES = path.join(here, '..', '..', 'spec', 'data', 'format-2');
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8')) as Record<string, unknown[]>;

/** An item as expected.json holds it (Buffers as their bytes). */
function comparable(item: unknown): unknown {
  return Buffer.isBuffer(item) ? { buffer: [...item] } : item;
}

async function drain(q: Queue): Promise<unknown[]> {
  const items: unknown[] = [];
  while (!q.empty()) items.push(comparable(await q.get({ block: false })));
  return items;
}

describe('a format-2 directory', () => {
  for (const name of Object.keys(expected)) {
    test(`${name}: opens and hands out every item it held, in order; acknowledged ones stay done`, async (t) => {
      const dir = path.join(tempDir(t), name);
      fs.cpSync(path.join(FIXTURES, name), dir, { recursive: true });
      const { serializer } = JSON.parse(fs.readFileSync(path.join(dir, 'info'), 'utf8')) as { serializer: string };
      const q = await Queue.open(dir, { serializer: serializer as 'json' });
      assert.equal(q.size, expected[name].length);
      assert.deepEqual(await drain(q), expected[name]);
      await q.taskDone(expected[name].length);
      // The queue goes on: a new item after the old ones, and nothing old comes back after a reopen.
      await q.put('new');
      await q.close();
      const again = await Queue.open(dir);
      assert.deepEqual(await drain(again), ['new']);
      await again.close();
    });
  }

  test('the fixtures are all there (a test per directory)', () => {
    const dirs = fs.readdirSync(FIXTURES).filter((entry) => fs.statSync(path.join(FIXTURES, entry)).isDirectory());
    assert.deepEqual(dirs.sort(), Object.keys(expected).sort());
  });
});
