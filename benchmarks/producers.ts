// Concurrent producers under fsync 'always': each producer is an async loop of
// awaited puts. Group commit lets calls that arrive while an fdatasync runs
// share the next one, so 64 producers should reach many times the items/s of
// one (the target is 10x). Each run lasts a fixed time; the rate counts the
// puts that resolved in it.

import { Queue, type QueueOptions } from '../lib/index.js';
import {
  formatRateSeries,
  formatRatio,
  formatSeconds,
  measureInterleaved,
  printTable,
  progress,
  type BenchContext,
  type BenchGroup,
  type Series,
} from './harness.js';

const PRODUCER_COUNTS = [1, 8, 64];
/** Producers in the target comparison (against 1). */
const TARGET_PRODUCERS = 64;
/** 64 producers should get at least this many times the items/s of one. */
const TARGET_RATIO = 10;
/** Seconds each run lets the producers put: hundreds of fsync rounds at ~0.3 ms. */
const RUN_SECONDS = 1;
const QUICK_RUN_SECONDS = 0.3;
const REPEATS = 5;
const QUICK_REPEATS = 3;
const MS_PER_S = 1000;

interface Mode {
  label: string;
  options: QueueOptions;
}

const MODES: readonly Mode[] = [
  { label: "fsync: 'always'", options: { fsync: 'always' } },
  // For scale: what the same loops do when a put waits for no fsync.
  { label: 'default', options: {} },
];

/** items/s of `producers` loops of awaited puts for `seconds`, into a fresh queue. */
async function producerRate(dir: string, options: QueueOptions, producers: number, seconds: number): Promise<number> {
  const q = await Queue.open<string>(dir, options);
  let count = 0;
  const start = performance.now();
  const deadline = start + seconds * MS_PER_S;
  const loop = async (producer: number): Promise<void> => {
    for (let i = 0; performance.now() < deadline; i++) {
      await q.put(`p${producer}-${i}`);
      count++;
    }
  };
  await Promise.all(Array.from({ length: producers }, (_, producer) => loop(producer)));
  const elapsed = (performance.now() - start) / MS_PER_S;
  if (q.size !== count) throw new Error(`benchmark bug: ${q.size} items queued, ${count} puts resolved`);
  await q.close();
  return count / elapsed;
}

async function run(context: BenchContext): Promise<void> {
  const seconds = context.quick ? QUICK_RUN_SECONDS : RUN_SECONDS;
  const plan = { repeats: context.quick ? QUICK_REPEATS : REPEATS, warmups: 0 };
  const rows: string[][] = [];
  const verdicts: string[] = [];
  const cases = MODES.flatMap((mode) => PRODUCER_COUNTS.map((count) => ({ mode, count })));
  progress(`producers: ${cases.length} cases taking turns, ${plan.repeats} runs of ${formatSeconds(seconds)} each`);
  const series = await measureInterleaved(
    plan,
    cases.map(
      ({ mode, count }) =>
        (dir: string) =>
          producerRate(dir, mode.options, count, seconds),
    ),
  );
  for (const mode of MODES) {
    const rateOf = (count: number): Series | undefined => series[cases.findIndex((c) => c.mode === mode && c.count === count)];
    const single = rateOf(1);
    for (const count of PRODUCER_COUNTS) {
      const rate = rateOf(count);
      if (rate === undefined || single === undefined) continue;
      rows.push([mode.label, String(count), formatRateSeries(rate), formatRatio(rate.median / single.median)]);
    }
    const many = rateOf(TARGET_PRODUCERS);
    if (mode.options.fsync === 'always' && single !== undefined && many !== undefined) {
      const ratio = many.median / single.median;
      verdicts.push(
        `Target: ${TARGET_PRODUCERS} producers ≥ ${TARGET_RATIO}x the items/s of 1 under fsync 'always': ${formatRatio(ratio)}, ${ratio >= TARGET_RATIO ? 'met' : 'MISSED'}.`,
      );
    }
  }
  printTable({
    title: 'Concurrent producers: items/s of awaited puts',
    columns: ['fsync', 'producers', 'items/s, median (min–max)', 'vs 1 producer'],
    rows,
    notes: [
      `Median of ${plan.repeats} runs of ${formatSeconds(seconds)}, the rows taking turns, each into a fresh queue; every producer is a loop of await put('p<n>-<i>').`,
      ...verdicts,
    ],
  });
}

export const producers: BenchGroup = {
  name: 'producers',
  title: "fsync 'always' with 1, 8 and 64 concurrent producers (group commit)",
  run,
};
