// Wake-up latency between processes: how long after put() is called in one
// process a get() waiting in another resolves, with notify (useNotify over the
// IPC channel of fork, both directions) and with polling alone. The putter
// stamps each item with the host's monotonic clock (process.hrtime, one clock
// for every process of the host) and the getter reads it when get resolves,
// so no message round trip is counted. Between samples the getter is left
// asleep long enough that each sample is a real wake-up, not an item found
// waiting.

import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from '../lib/index.js';
import { formatCount, formatSeconds, printTable, progress, withTempDir, type BenchContext, type BenchGroup } from './harness.js';
import type { WakeupCommand, WakeupReport } from './wakeups-child.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'wakeups-child.js');
const ROUND_TRIPS = 1000;
const QUICK_ROUND_TRIPS = 200;
/** Round trips before the measured ones (JIT, page cache), thrown away. */
const WARMUP_ROUND_TRIPS = 50;
/** With notify, the queues poll this rarely (and never watch the directory): no sample can be a poll. */
const NOTIFY_POLL_MS = 60_000;
/** The poll interval of the polling measurement. */
const POLL_INTERVAL_MS = 100;
/** Polled samples take ~pollInterval/2 each: 100 of them is ~10 s. */
const POLL_SAMPLES = 100;
const QUICK_POLL_SAMPLES = 20;
/** Between samples: the getter has gone back to sleep, and both sides have let go of the lock (each keeps it until its loop turns). */
const GAP_MS = 2;
/** Targets: notify p50 and p99, and how far beyond pollInterval a polled p99 may be. */
const TARGET_NOTIFY_P50_MS = 1;
const TARGET_NOTIFY_P99_MS = 5;
const TARGET_POLL_SLACK_MS = 10;
const NS_PER_US = 1000n;
const US_PER_S = 1e6;
const US_PER_MS = 1000;
const P50 = 0.5;
const P99 = 0.99;

/** A time on the host's monotonic clock, in microseconds: comparable between processes. */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / NS_PER_US);
}

/** What goes through the queue: when put() was called. */
export interface Stamped {
  t0: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A forked wakeups-child and the latencies it reports. */
class Child {
  readonly process: ChildProcess;
  #reports: WakeupReport[] = [];
  #notify: (() => void) | undefined;
  #exit: string | undefined;

  constructor(dir: string, pollInterval: number, mode: 'notify' | 'poll') {
    this.process = fork(CHILD, [dir, String(pollInterval), mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.process.on('message', (message: WakeupReport | { perq?: unknown }) => {
      if (!('ready' in message || 'latencyUs' in message || 'failed' in message)) return;
      this.#reports.push(message);
      this.#notify?.();
    });
    this.process.on('exit', (code, signal) => {
      this.#exit = `exited with ${signal ?? code}`;
      this.#notify?.();
    });
  }

  send(command: WakeupCommand): void {
    this.process.send(command);
  }

  async next(): Promise<WakeupReport> {
    for (;;) {
      const report = this.#reports.shift();
      if (report !== undefined) {
        if ('failed' in report) throw new Error(`wakeups child: ${report.failed}`);
        return report;
      }
      if (this.#exit !== undefined) throw new Error(`wakeups child ${this.#exit}`);
      await new Promise<void>((resolve) => (this.#notify = resolve));
      this.#notify = undefined;
    }
  }

  async latency(): Promise<number> {
    const report = await this.next();
    if (!('latencyUs' in report)) throw new Error(`benchmark bug: expected a latency, got ${JSON.stringify(report)}`);
    return report.latencyUs;
  }

  async stop(): Promise<void> {
    if (this.#exit !== undefined) return;
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    this.send({ cmd: 'stop' });
    await exited;
  }
}

/** Puts here, the child's get wakes; `delay()` ms before each put. Latencies in µs. */
async function parentToChild(q: Queue<Stamped>, child: Child, samples: number, delay: () => number): Promise<number[]> {
  child.send({ cmd: 'consume' });
  const latencies: number[] = [];
  for (let i = 0; i < samples; i++) {
    await sleep(delay());
    await q.put({ t0: nowUs() });
    latencies.push(await child.latency());
  }
  return latencies;
}

/** The child puts, a get waiting here wakes. Latencies in µs. */
async function childToParent(q: Queue<Stamped>, child: Child, samples: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < samples; i++) {
    const getting = q.get();
    await sleep(GAP_MS);
    child.send({ cmd: 'put' });
    const item = await getting;
    latencies.push(nowUs() - item.t0);
    await q.taskDone();
  }
  return latencies;
}

interface Measured {
  notifyToChild: number[];
  notifyToParent: number[];
  poll: number[];
}

async function measureNotify(roundTrips: number): Promise<Pick<Measured, 'notifyToChild' | 'notifyToParent'>> {
  return withTempDir(async (dir) => {
    const q = await Queue.open<Stamped>(dir, { pollInterval: NOTIFY_POLL_MS, watch: false });
    const child = new Child(dir, NOTIFY_POLL_MS, 'notify');
    try {
      await child.next();
      q.useNotify(child.process);
      await childToParent(q, child, WARMUP_ROUND_TRIPS);
      const notifyToParent = await childToParent(q, child, roundTrips);
      await parentToChild(q, child, WARMUP_ROUND_TRIPS, () => GAP_MS);
      const notifyToChild = await parentToChild(q, child, roundTrips, () => GAP_MS);
      return { notifyToChild, notifyToParent };
    } finally {
      await child.stop();
      await q.close();
    }
  });
}

async function measurePoll(samples: number): Promise<number[]> {
  return withTempDir(async (dir) => {
    const q = await Queue.open<Stamped>(dir, { pollInterval: POLL_INTERVAL_MS, watch: false });
    const child = new Child(dir, POLL_INTERVAL_MS, 'poll');
    try {
      await child.next();
      // Puts at random moments of the child's poll cycle, so that the samples cover all of it.
      return await parentToChild(q, child, samples, () => GAP_MS + Math.random() * POLL_INTERVAL_MS);
    } finally {
      await child.stop();
      await q.close();
    }
  });
}

/** The value below which a `fraction` of `values` lies (nearest rank). */
function percentile(values: readonly number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))];
}

const us = (value: number): string => formatSeconds(value / US_PER_S);

async function run(context: BenchContext): Promise<void> {
  const roundTrips = context.quick ? QUICK_ROUND_TRIPS : ROUND_TRIPS;
  const pollSamples = context.quick ? QUICK_POLL_SAMPLES : POLL_SAMPLES;
  progress(`wakeups: notify over IPC, ${roundTrips} round trips each way`);
  const notify = await measureNotify(roundTrips);
  progress(`wakeups: polling every ${POLL_INTERVAL_MS} ms, ${pollSamples} samples`);
  const poll = await measurePoll(pollSamples);

  const rows: string[][] = [];
  const verdicts: string[] = [];
  const notifyRow = (label: string, latencies: number[]): void => {
    const p50 = percentile(latencies, P50);
    const p99 = percentile(latencies, P99);
    const met = p50 < TARGET_NOTIFY_P50_MS * US_PER_MS && p99 < TARGET_NOTIFY_P99_MS * US_PER_MS;
    rows.push([
      `notify, ${label}`,
      formatCount(latencies.length),
      us(p50),
      us(p99),
      us(Math.max(...latencies)),
      `p50 < ${TARGET_NOTIFY_P50_MS} ms, p99 < ${TARGET_NOTIFY_P99_MS} ms`,
    ]);
    verdicts.push(
      `Target: notify ${label} p50 < ${TARGET_NOTIFY_P50_MS} ms and p99 < ${TARGET_NOTIFY_P99_MS} ms: ${us(p50)} / ${us(p99)}, ${met ? 'met' : 'MISSED'}.`,
    );
  };
  notifyRow('parent → child', notify.notifyToChild);
  notifyRow('child → parent', notify.notifyToParent);
  const pollBound = POLL_INTERVAL_MS + TARGET_POLL_SLACK_MS;
  const pollP99 = percentile(poll, P99);
  rows.push([
    `poll every ${POLL_INTERVAL_MS} ms, parent → child`,
    formatCount(poll.length),
    us(percentile(poll, P50)),
    us(pollP99),
    us(Math.max(...poll)),
    `p99 ≤ ${pollBound} ms`,
  ]);
  verdicts.push(
    `Target: polled p99 ≤ pollInterval + ${TARGET_POLL_SLACK_MS} ms (${pollBound} ms): ${us(pollP99)}, ${pollP99 <= pollBound * US_PER_MS ? 'met' : 'MISSED'}.`,
  );

  printTable({
    title: 'Wake-up latency between processes: put() in one, a waiting get() resolving in the other',
    columns: ['wake-up', 'samples', 'p50', 'p99', 'max', 'target'],
    rows,
    notes: [
      `One forked child on the parent's queue directory; latency from the put() call to the get() resolving in the other process, on the host's`,
      `monotonic clock (process.hrtime), after ${WARMUP_ROUND_TRIPS} warm-up round trips; the getter sleeps ≥ ${GAP_MS} ms before each put, so every sample`,
      `is a wake-up. notify: q.useNotify(child) / q.useNotify(process), pollInterval ${formatCount(NOTIFY_POLL_MS)} ms. poll: no channel, pollInterval`,
      `${POLL_INTERVAL_MS} ms on both sides, puts at random moments of the poll cycle (expect p50 ≈ pollInterval / 2).`,
      ...verdicts,
    ],
  });
}

export const wakeups: BenchGroup = {
  name: 'wakeups',
  title: 'wake-up latency between two processes: notify over IPC (both ways) and polling',
  run,
};
