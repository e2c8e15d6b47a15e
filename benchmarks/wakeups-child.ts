// The forked side of benchmarks/wakeups.ts: opens the queue directory and,
// as told over IPC, takes items (reporting each one's latency) or puts them.
// Latency is measured on the system-wide monotonic clock (process.hrtime, the
// same CLOCK_MONOTONIC in every process of the host): the putter stamps the
// item just before put(), the getter reads the clock when get() resolves.
// Usage: node wakeups-child.js <dir> <pollInterval> <notify|poll>

import { Queue } from '../lib/index.js';
import { nowUs, type Stamped } from './wakeups.js';

export type WakeupCommand =
  /** Loop: get, read the clock, taskDone, report { latencyUs }. */
  | { cmd: 'consume' }
  /** Stamp an item and put it. */
  | { cmd: 'put' }
  /** Close the queue and exit. */
  | { cmd: 'stop' };

export type WakeupReport = { ready: true } | { latencyUs: number } | { failed: string };

const [dir, pollArg, mode] = process.argv.slice(2);
const q = await Queue.open<Stamped>(dir, { pollInterval: Number(pollArg), watch: false });
if (mode === 'notify') q.useNotify(process);
const report = (message: WakeupReport): void => {
  if (process.connected) process.send?.(message);
};
const fail = (error: unknown): void => {
  if (!q.closed) report({ failed: String(error) });
};

async function consume(): Promise<void> {
  while (!q.closed) {
    const item = await q.get();
    const at = nowUs();
    await q.taskDone();
    report({ latencyUs: at - item.t0 });
  }
}

process.on('message', (message: WakeupCommand | { perq?: unknown }) => {
  if (!('cmd' in message)) return;
  if (message.cmd === 'consume') consume().catch(fail);
  else if (message.cmd === 'put') q.put({ t0: nowUs() }).catch(fail);
  else if (message.cmd === 'stop') void q.close().finally(() => process.exit(0));
});
report({ ready: true });
