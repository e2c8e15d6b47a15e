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

/** The ids a queue (a fresh open of `dir`, or one already open) hands out until it is empty; closes it. */
async function drainIds(dir: string, open?: Queue<{ id: number }>): Promise<number[]> {
  const q = open ?? (await Queue.open<{ id: number }>(dir));
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

/** Runs the ack-above-and-die fixture to its SIGKILL. */
async function ackAboveAndDie(dir: string, puts: number, acks: number, fsync: string, mode = ''): Promise<void> {
  const child = forkFixture('ack-above-and-die', [dir, String(puts), String(acks), fsync, mode]);
  const { code, signal } = await exited(child);
  assert.equal(signal, 'SIGKILL', `the fixture died by SIGKILL (exit ${code})`);
}

describe('items acknowledged above the prefix (a lower item still out) stay acknowledged', () => {
  for (const fsync of ['never', 'always']) {
    test(`5 × taskDone() above a held item, SIGKILL in the same turn, taken over by a process that had the queue open (fsync ${fsync}): only the held item and the rest come back`, async (t) => {
      // No open follows the kill to rebuild the state: the live process takes
      // the lock and must learn of the acknowledgements the dead one made
      // after its last publish (under the dirty mark, from the cursor log).
      const dir = tempQueueDir(t);
      const survivor = await Queue.open<{ id: number }>(dir, { fsync: fsync as 'never' | 'always' });
      await ackAboveAndDie(dir, 20, 5, fsync, 'each');
      const ids = await drainIds(dir, survivor);
      assert.deepEqual(
        [...ids].sort((a, b) => a - b),
        [0, ...range(6, 20)],
        `handed out: ${ids.join(',')}`,
      );
      assert.equal(new Set(ids).size, ids.length, 'no item twice');
    });
  }
  for (const fsync of ['never', 'always']) {
    for (const after of [
      'nothing',
      'state deleted',
      'state zeroed',
      'cursor folded, state deleted',
      'one taskDone() each, state deleted',
    ] as const) {
      const calls = after.startsWith('one taskDone') ? '5 × taskDone()' : 'taskDone(5)';
      const mode = after.startsWith('cursor folded') ? 'fold' : after.startsWith('one taskDone') ? 'each' : '';
      test(`${calls} above a held item, SIGKILL in the same turn, ${after} (fsync ${fsync}): only the held item and the rest come back`, async (t) => {
        const dir = tempQueueDir(t);
        await ackAboveAndDie(dir, 20, 5, fsync, mode);
        const file = path.join(dir, 'state');
        if (after.endsWith('state deleted')) fs.unlinkSync(file);
        if (after === 'state zeroed') fs.writeFileSync(file, Buffer.alloc(fs.statSync(file).size));
        const ids = await drainIds(dir);
        assert.deepEqual(
          [...ids].sort((a, b) => a - b),
          [0, ...range(6, 20)],
          `handed out: ${ids.join(',')}`,
        );
        assert.equal(new Set(ids).size, ids.length, 'no item twice');
      });
    }
  }
});
