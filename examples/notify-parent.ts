// Notify mode: a daemon and the worker it forks exchange work through two
// queue directories, and wake each other over the IPC channel of fork at once.
// The parent puts a job every 300 ms into `jobs`; the child (notify-child)
// takes it, computes, and puts the answer into `results`, which the parent reads.
//
//   node dist/examples/notify-parent.js /tmp/perq-notify
//
// Kill the child (its pid is printed) and the parent forks a new one, which
// picks up the jobs that waited meanwhile, and the one the dead child held
// unacknowledged. Kill the parent and start it again: the child exits with it,
// and everything not yet done is still in the directories.

import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from '../lib/index.js';

const [root = '/tmp/perq-notify'] = process.argv.slice(2);
const jobs = await Queue.open<{ n: number; at: number }>(path.join(root, 'jobs'));
const results = await Queue.open<{ n: number; square: number; at: number }>(path.join(root, 'results'));
const childScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'notify-child.js');

function startChild(): ChildProcess {
  const child = fork(childScript, [root]);
  // Both queues wake the other side; the channel only carries wake-up messages.
  jobs.useNotify(child);
  results.useNotify(child);
  console.log(`[parent] forked worker ${child.pid}`);
  child.on('exit', (code, signal) => {
    console.log(`[parent] worker ${child.pid} exited (${signal ?? code}); forking a new one`);
    setTimeout(startChild, 500);
  });
  return child;
}

startChild();
let n = 0;
const sending = setInterval(() => void jobs.put({ n: ++n, at: performance.timeOrigin + performance.now() }), 300);

process.on('SIGINT', () => {
  clearInterval(sending);
  void Promise.all([jobs.close(), results.close()]).then(() => process.exit(0));
});

// Each result is acknowledged when the loop asks for the next; the loop ends when the queue is closed.
for await (const result of results) {
  const ms = performance.timeOrigin + performance.now() - result.at;
  console.log(`[parent] ${result.n}² = ${result.square} (${ms.toFixed(2)} ms after the job was put)`);
}
