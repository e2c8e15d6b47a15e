// One process of benchmarks/processes.ts: a producer (a loop of awaited puts)
// or a consumer (a loop of get + taskDone) on a shared queue directory, from
// { go } until { stop }; then it closes the queue (a consumer hands back what
// it got but did not acknowledge) and reports how many it did. The
// producers and consumers are siblings, so no channel joins them: a consumer
// that finds the queue empty polls.
// Usage: node processes-child.js <producer|consumer> <dir> <flock|lockfile> <pollInterval> <id>

import { Queue, QueueError, type LockingMode } from '../lib/index.js';

export type ProcessRole = 'producer' | 'consumer';
export type ProcessCommand = { cmd: 'go' } | { cmd: 'stop' };
export type ProcessReport =
  | { ready: true }
  /** `done`: puts (or acknowledged gets) that resolved before { stop }; `total`: also those in flight then. */
  | { done: number; total: number }
  | { failed: string };

const [role, dir, locking, pollArg, id] = process.argv.slice(2);
const q = await Queue.open<string>(dir, { locking: locking as LockingMode, pollInterval: Number(pollArg) });
const report = (message: ProcessReport): void => {
  process.send?.(message);
};
let stopping = false;
let done = 0;

async function produce(): Promise<void> {
  for (let i = 0; !stopping; i++) {
    await q.put(`p${id}-${i}`);
    done++;
  }
}

async function consume(): Promise<void> {
  while (!stopping) {
    await q.get();
    await q.taskDone();
    done++;
  }
}

let working: Promise<void> = Promise.resolve();
process.on('message', (message: ProcessCommand) => {
  if (message.cmd === 'go') {
    working = (role === 'producer' ? produce() : consume()).catch((error: unknown) => {
      // close() ends a get that waits for an item: that is how a consumer stops.
      if (!(stopping && error instanceof QueueError && error.code === 'ERR_QUEUE_CLOSED')) throw error;
    });
  } else if (message.cmd === 'stop') {
    stopping = true;
    const count = done;
    void q
      .close()
      .then(() => working)
      .then(
        () => report({ done: count, total: done }),
        (error: unknown) => report({ failed: String(error) }),
      )
      .finally(() => process.disconnect());
  }
});
report({ ready: true });
