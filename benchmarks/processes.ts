// Many processes on one directory: 4 producer and 4 consumer processes
// (forked, benchmarks/processes-child.ts) share one queue for a fixed time,
// once under each locking mode. Producers loop on awaited puts, consumers on
// get + taskDone per item; the rate is what the consumers acknowledged per
// second (what went all the way through), with the producers' put rate
// beside it. Afterwards the directory is reopened and checked: every item put
// was acknowledged or is still queued.

import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, type LockingMode } from '../lib/index.js';
import {
  formatCount,
  formatRate,
  formatRateSeries,
  formatSeconds,
  measureInterleaved,
  median,
  printTable,
  progress,
  type BenchContext,
  type BenchGroup,
} from './harness.js';
import type { ProcessCommand, ProcessReport, ProcessRole } from './processes-child.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'processes-child.js');
const PRODUCERS = 4;
const CONSUMERS = 4;
const MODES: readonly LockingMode[] = ['flock', 'lockfile'];
const RUN_SECONDS = 3;
const QUICK_RUN_SECONDS = 1;
const REPEATS = 3;
const QUICK_REPEATS = 1;
/**
 * Siblings cannot notify each other (a channel joins a child to its parent
 * only), so a consumer that catches up finds new items by polling: often, so
 * that the rate measures the directory and not the wait.
 */
const POLL_MS = 10;
/** Items acknowledged per second by the 4 consumers together. */
const TARGET_RATE = 50_000;
const MS_PER_S = 1000;

interface RunResult {
  put: number;
  acked: number;
  seconds: number;
  /** Items still queued at the end (put, not yet acknowledged). */
  left: number;
}

function forkChild(
  role: ProcessRole,
  dir: string,
  mode: LockingMode,
  id: number,
): { child: ChildProcess; reports: Promise<ProcessReport>[] } {
  const child = fork(CHILD, [role, dir, mode, String(POLL_MS), String(id)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  // The child sends two reports: { ready }, then { done, total } (or { failed }).
  const reports: Promise<ProcessReport>[] = [];
  const resolvers: ((report: ProcessReport) => void)[] = [];
  for (let i = 0; i < 2; i++) reports.push(new Promise((resolve) => resolvers.push(resolve)));
  child.on('message', (message: ProcessReport) => resolvers.shift()?.(message));
  child.on('exit', (code, signal) => {
    for (const resolve of resolvers.splice(0)) resolve({ failed: `exited with ${signal ?? code}` });
  });
  return { child, reports };
}

async function report(promise: Promise<ProcessReport>): Promise<{ done: number; total: number }> {
  const message = await promise;
  if ('failed' in message) throw new Error(`processes child: ${message.failed}`);
  if (!('done' in message)) throw new Error(`benchmark bug: unexpected ${JSON.stringify(message)}`);
  return message;
}

async function runOnce(dir: string, mode: LockingMode, seconds: number): Promise<RunResult> {
  // Create the queue first, so the children do not race to create it.
  await (await Queue.open(dir, { locking: mode })).close();
  const roles: ProcessRole[] = [...Array<ProcessRole>(PRODUCERS).fill('producer'), ...Array<ProcessRole>(CONSUMERS).fill('consumer')];
  const children = roles.map((role, id) => ({ role, ...forkChild(role, dir, mode, id) }));
  try {
    for (const { reports } of children) {
      const ready = await reports[0];
      if (!('ready' in ready)) throw new Error(`processes child did not start: ${JSON.stringify(ready)}`);
    }
    const send = (command: ProcessCommand): void => children.forEach(({ child }) => child.send(command));
    const start = performance.now();
    send({ cmd: 'go' });
    await new Promise((resolve) => setTimeout(resolve, seconds * MS_PER_S));
    send({ cmd: 'stop' });
    const elapsed = (performance.now() - start) / MS_PER_S;
    const done = await Promise.all(children.map(({ reports }) => report(reports[1])));
    const sum = (role: ProcessRole, key: 'done' | 'total'): number =>
      done.reduce((n, d, i) => n + (children[i].role === role ? d[key] : 0), 0);
    const q = await Queue.open(dir, { locking: mode });
    const left = q.size;
    await q.close();
    if (sum('producer', 'total') !== sum('consumer', 'total') + left) {
      throw new Error(`items lost or doubled: ${sum('producer', 'total')} put, ${sum('consumer', 'total')} acknowledged, ${left} left`);
    }
    return { put: sum('producer', 'done') / elapsed, acked: sum('consumer', 'done') / elapsed, seconds: elapsed, left };
  } finally {
    for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

async function run(context: BenchContext): Promise<void> {
  const seconds = context.quick ? QUICK_RUN_SECONDS : RUN_SECONDS;
  const plan = { repeats: context.quick ? QUICK_REPEATS : REPEATS, warmups: 0 };
  progress(
    `processes: ${PRODUCERS} producers + ${CONSUMERS} consumers, locking ${MODES.join(' / ')} taking turns, ${plan.repeats} runs of ${formatSeconds(seconds)}`,
  );
  const results = new Map<LockingMode, RunResult[]>(MODES.map((mode) => [mode, []]));
  const series = await measureInterleaved(
    plan,
    MODES.map((mode) => async (dir: string) => {
      const result = await runOnce(dir, mode, seconds);
      results.get(mode)?.push(result);
      return result.acked;
    }),
  );
  const rows: string[][] = [];
  const verdicts: string[] = [];
  for (const [index, mode] of MODES.entries()) {
    const runs = results.get(mode) ?? [];
    const acked = series[index];
    rows.push([
      `'${mode}'`,
      formatRateSeries(acked),
      formatRate(median(runs.map((r) => r.put))),
      formatCount(median(runs.map((r) => r.left))),
    ]);
    verdicts.push(
      `Target: ${PRODUCERS}P/${CONSUMERS}C ≥ ${formatRate(TARGET_RATE)} items/s under locking '${mode}': ${formatRate(acked.median)}, ${acked.median >= TARGET_RATE ? 'met' : 'MISSED'}.`,
    );
  }
  printTable({
    title: `${PRODUCERS} producer and ${CONSUMERS} consumer processes on one directory`,
    columns: ['locking', 'acknowledged items/s, median (min–max)', 'put items/s, median', 'left queued at the end, median'],
    rows,
    notes: [
      `Median of ${plan.repeats} runs of ${formatSeconds(seconds)}, the modes taking turns, each in a fresh directory. ${PRODUCERS + CONSUMERS} forked processes:`,
      `producers loop on await put('p<n>-<i>'), consumers on await get() then await taskDone(); default options but pollInterval ${POLL_MS} ms`,
      '(siblings have no channel to notify each other). After each run every item put was acknowledged or is still queued (checked).',
      ...verdicts,
    ],
  });
}

export const processes: BenchGroup = {
  name: 'processes',
  title: `${PRODUCERS} producer and ${CONSUMERS} consumer processes on one directory, locking 'flock' and 'lockfile'`,
  run,
};
