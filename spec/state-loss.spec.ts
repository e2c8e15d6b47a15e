// The `state` file is never fsync'd: a power cut can leave it empty, old or
// gone. Whatever it says, reopening must hand out exactly the items that were
// not acknowledged, each once, in order, and never an acknowledged one.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Queue } from '../lib/index.js';
import { exited, forkFixture, tempQueueDir } from './helpers.js';

/** Runs the fixture until it reports, then SIGKILLs it. */
async function putAckAndKill(dir: string, puts: number, acks: number): Promise<void> {
  const child = forkFixture('ack-prefix-and-wait', [dir, String(puts), String(acks)]);
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code, signal) => reject(new Error(`fixture exited early: ${code ?? signal}`)));
  });
  child.kill('SIGKILL');
  assert.equal((await exited(child)).signal, 'SIGKILL');
}

async function drainIds(dir: string): Promise<number[]> {
  const q = await Queue.open<{ id: number }>(dir);
  try {
    const ids: number[] = [];
    while (q.size > 0) ids.push(...(await q.getMany(1000)).map((item) => item.id));
    return ids;
  } finally {
    await q.close();
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

describe('a lost state file with the acknowledged prefix inside a chunk', () => {
  for (const loss of ['truncated to 0 bytes', 'deleted', 'zeroed'] as const) {
    test(`state ${loss} after a SIGKILL: items 51..199 come back, 0..50 never`, async (t) => {
      const dir = tempQueueDir(t);
      await putAckAndKill(dir, 200, 51);
      const file = path.join(dir, 'state');
      if (loss === 'deleted') fs.unlinkSync(file);
      else if (loss === 'zeroed') fs.writeFileSync(file, Buffer.alloc(fs.statSync(file).size));
      else fs.truncateSync(file, 0);
      assert.deepEqual(await drainIds(dir), range(51, 200));
    });
  }
});
