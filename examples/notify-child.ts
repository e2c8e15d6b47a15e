// The worker forked by notify-parent: takes jobs, puts results, woken over
// the IPC channel (`useNotify(process)`) instead of polling.

import path from 'node:path';
import { Queue } from '../lib/index.js';

const [root = '/tmp/perq-notify'] = process.argv.slice(2);
const jobs = (await Queue.open<{ n: number; at: number }>(path.join(root, 'jobs'))).useNotify(process);
const results = (await Queue.open<{ n: number; square: number; at: number }>(path.join(root, 'results'))).useNotify(process);
// The parent is gone: stop too (anything taken and not acknowledged is handed back).
process.on('disconnect', () => void Promise.all([jobs.close(), results.close()]).then(() => process.exit(0)));

// Each job is acknowledged when the loop asks for the next; the loop ends when the queue is closed.
for await (const job of jobs) {
  await results.put({ n: job.n, square: job.n * job.n, at: job.at });
}
