// A child process killed with SIGKILL in the middle of a stream of puts and
// taskDones: afterwards every put that had resolved is there (unless it was
// acknowledged), every acknowledged item is gone, and nothing else appears.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Queue } from '../lib/index.js';
import { crashItem, type CrashItem, type CrashReport } from './fixtures/crash-items.js';
import { exited, forkFixture, tempQueueDir } from './helpers.js';

/** Kill rounds per fsync mode: each restarts the worker on the same directory. */
const ROUNDS = 5;
/** The worker runs between these many ms before it is killed. */
const MIN_RUN_MS = 30;
const MAX_RUN_MS = 250;

interface RoundResult {
  putReported: number;
  ackedReported: number;
}

async function runAndKill(dir: string, fsync: string, firstId: number, runMs: number): Promise<RoundResult> {
  const child = forkFixture('crash-worker', [dir, fsync, String(firstId)]);
  const result = { putReported: -1, ackedReported: -1 };
  await new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    child.on('message', (message: CrashReport | { ready: true }) => {
      if ('ready' in message) return;
      // The run time counts from the first resolved put, so a loaded machine cannot kill the worker before it did anything.
      timer ??= setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, runMs);
      if ('put' in message) result.putReported = Math.max(result.putReported, message.put);
      else result.ackedReported = Math.max(result.ackedReported, message.acked);
    });
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`worker exited early: ${code ?? signal}`));
    });
  });
  const { signal } = await exited(child);
  assert.equal(signal, 'SIGKILL');
  return result;
}

describe('SIGKILL in the middle of puts and taskDones', () => {
  for (const fsync of ['never', 'always']) {
    test(`fsync ${fsync}: resolved puts survive, acknowledged items never return`, async (t) => {
      const dir = tempQueueDir(t);
      let firstId = 0;
      let seed = 7;
      let totalSeen = 0;
      for (let round = 0; round < ROUNDS; round++) {
        seed = (seed * 48271) % 2147483647;
        const runMs = MIN_RUN_MS + (seed % (MAX_RUN_MS - MIN_RUN_MS));
        const { putReported, ackedReported } = await runAndKill(dir, fsync, firstId, runMs);
        assert.ok(putReported >= firstId, 'the worker got some puts done before it was killed');

        const queue = await Queue.open<CrashItem>(dir);
        const left = queue.size === 0 ? [] : await queue.getMany(queue.size);
        totalSeen += left.length;
        for (const item of left) assert.deepEqual(item, crashItem(item.id), 'every item is exactly what was put');
        const ids = left.map((item) => item.id);
        for (let i = 1; i < ids.length; i++) assert.equal(ids[i], ids[i - 1] + 1, `FIFO without gaps or duplicates: ${ids.join(',')}`);
        if (ids.length > 0) {
          assert.ok(ids[0] > ackedReported, `acknowledged item ${ackedReported} came back (first left: ${ids[0]})`);
          assert.ok(ids[ids.length - 1] >= putReported, `resolved put ${putReported} was lost (last left: ${ids[ids.length - 1]})`);
        } else {
          // Nothing left: every resolved put must have been acknowledged (some put resolved: asserted above).
          assert.ok(ackedReported >= putReported, `resolved puts were lost: ${putReported} put, ${ackedReported} acknowledged, none left`);
        }
        // Put back what was left so the next round continues the same stream.
        await queue.close();
        const reopened = await Queue.open<CrashItem>(dir);
        assert.equal(reopened.size, left.length, 'items got without taskDone are handed out again');
        await reopened.close();
        firstId = Math.max(putReported, ids[ids.length - 1] ?? -1) + 1;
      }
      assert.ok(totalSeen > 0);
    });
  }
});
