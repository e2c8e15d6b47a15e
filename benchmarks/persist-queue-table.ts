// persist-queue's README table, measured for perq: Write, Write/Read(1
// task_done) and Write/Read(many task_done) of N items 'bench' + i, every call
// awaited, each run in a fresh directory. Like persist-queue's own benchmark,
// which times its whole function, the timed section runs from open to close.

import { Queue, type QueueOptions } from '../lib/index.js';
import {
  formatCount,
  formatRatio,
  formatSeconds,
  formatSecondsSeries,
  measureInterleaved,
  printTable,
  progress,
  timed,
  type BenchContext,
  type BenchGroup,
  type Series,
} from './harness.js';

type Scenario = 'write' | 'writeReadOne' | 'writeReadMany';

const SCENARIOS: ReadonlyArray<{ id: Scenario; column: string }> = [
  { id: 'write', column: 'Write' },
  { id: 'writeReadOne', column: 'Write/Read(1 task_done)' },
  { id: 'writeReadMany', column: 'Write/Read(many task_done)' },
];

/** The N of persist-queue's README table. */
const SIZES = [1_000, 10_000, 100_000];
/** --quick leaves out N = 100,000, whose fsync'd runs alone take minutes. */
const QUICK_SIZES = [1_000, 10_000];
/** The N at which persist-queue was measured on this machine. */
const REFERENCE_N = 10_000;
/** persist-queue's file Queue at N = 10,000 on this machine, in seconds (from the project's issue). */
const REFERENCE_SECONDS: Record<Scenario, number> = { write: 2.7, writeReadOne: 2.7, writeReadMany: 6.5 };
/** The speed-ups over persist-queue the project aims for, with default options. */
const TARGET_RATIO: Record<Scenario, number> = { write: 50, writeReadOne: 20, writeReadMany: 10 };

interface Config {
  label: string;
  options: QueueOptions;
  /** Whether each call waits for an fdatasync (about 0.2-1 ms): then repeats are fewer. */
  synced: boolean;
}

const CONFIGS: readonly Config[] = [
  { label: 'default', options: {}, synced: false },
  { label: "fsync: 'always'", options: { fsync: 'always' }, synced: true },
];

/** Measured runs per cell: odd (a true median), fewer where one run takes seconds. */
const REPEATS = { small: 7, large: 5, quick: 3 };
/** fsync'd runs wait ~0.2-1 ms per call: at N = 100,000 one run of the three columns takes minutes, so it runs once. */
const SYNCED_REPEATS = { small: 5, medium: 3, large: 1, quick: 3, quickMedium: 1 };
/** From this N a cell counts as large (fewer repeats). */
const LARGE_N = 100_000;
/** From this N an fsync'd cell takes seconds per run. */
const MEDIUM_N = 10_000;
/** One warm-up run so that the first cell does not pay for JIT compilation; fsync'd cells wait on the disk, not the JIT. */
const WARMUPS = 1;

function planFor(config: Config, n: number, quick: boolean): { repeats: number; warmups: number } {
  if (config.synced) {
    if (n >= LARGE_N) return { repeats: SYNCED_REPEATS.large, warmups: 0 };
    if (n >= MEDIUM_N) return { repeats: quick ? SYNCED_REPEATS.quickMedium : SYNCED_REPEATS.medium, warmups: 0 };
    return { repeats: quick ? SYNCED_REPEATS.quick : SYNCED_REPEATS.small, warmups: 0 };
  }
  if (quick) return { repeats: REPEATS.quick, warmups: WARMUPS };
  return { repeats: n >= LARGE_N ? REPEATS.large : REPEATS.small, warmups: WARMUPS };
}

/** One run of `scenario`, open to close; returns its seconds. */
async function runScenario(dir: string, n: number, options: QueueOptions, scenario: Scenario): Promise<number> {
  let last: string | undefined;
  const seconds = await timed(async () => {
    const q = await Queue.open<string>(dir, options);
    for (let i = 0; i < n; i++) await q.put('bench' + i);
    if (q.size !== n) throw new Error(`benchmark bug: ${q.size} items queued, expected ${n}`);
    if (scenario === 'writeReadOne') {
      for (let i = 0; i < n; i++) last = await q.get();
      await q.taskDone();
    } else if (scenario === 'writeReadMany') {
      for (let i = 0; i < n; i++) {
        last = await q.get();
        await q.taskDone();
      }
    }
    await q.close();
  });
  if (scenario !== 'write' && last !== 'bench' + (n - 1)) throw new Error(`benchmark bug: last item ${String(last)}`);
  return seconds;
}

async function run(context: BenchContext): Promise<void> {
  const sizes = context.quick ? QUICK_SIZES : SIZES;
  const results = new Map<string, Series>();
  const rows: string[][] = [];
  for (const config of CONFIGS) {
    for (const n of sizes) {
      const plan = planFor(config, n, context.quick);
      const row = [`perq ${config.label}`, formatCount(n)];
      progress(`persist-queue table: ${config.label}, N = ${formatCount(n)}, ${plan.repeats} runs of each column`);
      const series = await measureInterleaved(
        plan,
        SCENARIOS.map((scenario) => (dir: string) => runScenario(dir, n, config.options, scenario.id)),
      );
      for (const [index, scenario] of SCENARIOS.entries()) {
        results.set(`${config.label}/${n}/${scenario.id}`, series[index]);
        row.push(formatSecondsSeries(series[index]));
      }
      row.push(String(plan.repeats));
      rows.push(row);
    }
  }
  printTable({
    title: "persist-queue's README table: seconds for N awaited calls",
    columns: ['queue', 'N', ...SCENARIOS.map((s) => s.column), 'runs'],
    rows: [
      ...rows,
      [
        'persist-queue file Queue (reference)',
        formatCount(REFERENCE_N),
        ...SCENARIOS.map((s) => formatSeconds(REFERENCE_SECONDS[s.id])),
        '-',
      ],
    ],
    notes: [
      'Median of the runs, (min–max) across them; the three columns take turns. Each run: a fresh directory, Queue.open .. close timed.',
      "Write: N × await put('bench' + i). Write/Read(1 task_done): N puts, N × await get(), one await taskDone().",
      'Write/Read(many task_done): N puts, then N × (await get(), await taskDone()).',
      "fsync 'always' waits for one fdatasync per awaited call, so it runs fewer repeats (a single run at N = 100,000).",
    ],
  });

  const ratioRows: string[][] = [];
  for (const config of CONFIGS) {
    for (const scenario of SCENARIOS) {
      const series = results.get(`${config.label}/${REFERENCE_N}/${scenario.id}`);
      if (series === undefined) continue;
      const ratio = REFERENCE_SECONDS[scenario.id] / series.median;
      const target = config.synced ? undefined : TARGET_RATIO[scenario.id];
      ratioRows.push([
        `perq ${config.label}`,
        scenario.column,
        formatSeconds(REFERENCE_SECONDS[scenario.id]),
        formatSeconds(series.median),
        formatRatio(ratio),
        target === undefined ? '-' : `≥ ${target}x`,
        target === undefined ? '-' : ratio >= target ? 'met' : 'MISSED',
      ]);
    }
  }
  printTable({
    title: `Speed-up over persist-queue at N = ${formatCount(REFERENCE_N)}`,
    columns: ['queue', 'column', 'persist-queue', 'perq (median)', 'speed-up', 'target', 'status'],
    rows: ratioRows,
    notes: [
      "Targets apply to default options. persist-queue's file Queue fsyncs a chunk only when it fills (every 100 puts) and",
      "renames its info file on every put; perq's default fsyncs nothing, fsync 'always' fsyncs every call (no target).",
      "persist-queue's one task_done persists the read position of every item got; perq's taskDone acknowledges one item.",
    ],
  });
}

export const persistQueueTable: BenchGroup = {
  name: 'table',
  title: "persist-queue's README table (Write, Write/Read(1 task_done), Write/Read(many task_done))",
  run,
};
