// The worker forked by notify-parent: takes jobs, puts results, woken over
// the IPC channel (`useNotify(process)`) instead of polling.

import path from 'node:path';
import { Queue } from '../lib/index.js';

const [root = '/tmp/perq-notify'] = process.argv.slice(2);
const jobs = (await Queue.open<{ n: number; at: number }>(path.join(root, 'jobs'))).useNotify(process);
const results = (await Queue.open<{ n: number; square: number; at: number }>(path.join(root, 'results'))).useNotify(process);
// The parent is gone: stop too (anything taken and not acknowledged is handed back).
process.on('disconnect', async () => {
  await Promise.all([jobs.close(), results.close()]);
  process.exit(0);
});

/** A get ended by close (on Ctrl-C or when the parent goes): wait for the exit that follows. */
async function stopped(error: { code?: string }): Promise<never> {
  if (error?.code !== 'ERR_QUEUE_CLOSED') throw error;
  return new Promise<never>(() => undefined);
}

for (;;) {
  const job = await jobs.get().catch(stopped);
  await results.put({ n: job.n, square: job.n * job.n, at: job.at });
  await jobs.taskDone();
}
