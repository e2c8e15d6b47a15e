// Where a put lands must not depend on who opened the chunk: every append is a
// positioned write at the end perq recorded, never an O_APPEND write at the
// file's end. When the two differ (a cut-back that failed, a network file
// system's view of the size), records still land where the reader looks.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { Queue } from '../lib/index.js';
import { spareTuning } from '../lib/store/spares.js';
import { chunkFiles, tempQueueDir } from './helpers.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (value: Uint8Array): string => new TextDecoder().decode(value);

describe('appends land at the recorded end of the chunk', () => {
  const dearCreate = spareTuning.takeSparesAboveCreateUs;
  afterEach(() => {
    spareTuning.takeSparesAboveCreateUs = dearCreate;
  });

  for (const how of ['created by this process', 'taken from a spare', 'reopened'] as const) {
    test(`a chunk ${how}: bytes past the recorded end are overwritten, not read past`, async (t) => {
      const dir = tempQueueDir(t);
      let q = await Queue.open<Uint8Array>(dir, { serializer: 'raw', chunkSize: 2 });
      if (how === 'taken from a spare') {
        spareTuning.takeSparesAboveCreateUs = 0;
        await q.putMany([bytes('x'), bytes('y')]);
        await q.getMany(2);
        await q.taskDone(2); // chunk 0 becomes spare-0
        assert.ok(fs.existsSync(path.join(dir, 'spare-0')));
      }
      await q.put(bytes('A'));
      if (how === 'reopened') {
        await q.close();
        q = await Queue.open<Uint8Array>(dir, { serializer: 'raw' });
      }
      const newest = path.join(dir, chunkFiles(dir).at(-1)!);
      if (how === 'taken from a spare') assert.ok(!fs.existsSync(path.join(dir, 'spare-0')), 'the spare became the chunk');
      fs.appendFileSync(newest, Buffer.alloc(12));
      await q.put(bytes('B'));
      assert.equal(text(await q.get()), 'A');
      assert.equal(text(await q.get()), 'B');
      await q.close();
      const reopened = await Queue.open<Uint8Array>(dir, { serializer: 'raw' });
      assert.equal(reopened.size, 2, 'both items are handed out again after a restart');
      assert.deepEqual((await reopened.getMany(2)).map(text), ['A', 'B']);
      await reopened.close();
    });
  }
});
