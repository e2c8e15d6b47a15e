// Batch throughput: items/s of putMany for small, 1 KiB and 64 KiB items (as
// strings through the default cbor serializer and as Buffers through 'raw'),
// the effect of the chunk size on small items, and the rate at which a filled
// queue is drained with getMany (and with get, for comparison).

import { Queue, type QueueOptions } from '../lib/index.js';
import {
  formatBytes,
  formatCount,
  formatRateSeries,
  measureInterleaved,
  printTable,
  progress,
  timed,
  type BenchContext,
  type BenchGroup,
} from './harness.js';

const KIB = 1024;
/** perq's default chunkSize, for rows that leave it unset. */
const DEFAULT_CHUNK_SIZE = 100;
/** Measured runs per row: odd, so the median is one of them. */
const REPEATS = 5;
const QUICK_REPEATS = 3;
/** One discarded run per row, so the first row does not pay for JIT compilation. */
const WARMUPS = 1;
/** Bytes of items written per run: enough that a run takes ~0.1-1 s here. */
const BYTES_PER_RUN = 96 * 1024 * KIB;
/** --quick writes an eighth as much. */
const QUICK_BYTES_PER_RUN = 12 * 1024 * KIB;
/** Bytes of items per putMany call: a batch a producer might plausibly hold (and 1,000 items of 1 KiB). */
const BATCH_BYTES = 1024 * KIB;
/** Most items per putMany call, so that small items come in batches of a realistic 1,000 too. */
const MAX_BATCH_ITEMS = 1000;
/** Items asked for per getMany call when draining. */
const GET_MANY_MAX = 1000;
/** Drains with one awaited get() per item are slower: they move this fraction of the items. */
const PER_ITEM_DRAIN_FRACTION = 0.25;

type Kind = 'string' | 'buffer';

interface ItemShape {
  label: string;
  bytes: number;
  kind: Kind;
}

const SMALL: ItemShape = { label: '100 B string', bytes: 100, kind: 'string' };
const SMALL_RAW: ItemShape = { label: '100 B Buffer', bytes: 100, kind: 'buffer' };
const ONE_KIB: ItemShape = { label: '1 KiB string', bytes: KIB, kind: 'string' };
const ONE_KIB_RAW: ItemShape = { label: '1 KiB Buffer', bytes: KIB, kind: 'buffer' };
const BIG: ItemShape = { label: '64 KiB string', bytes: 64 * KIB, kind: 'string' };
const BIG_RAW: ItemShape = { label: '64 KiB Buffer', bytes: 64 * KIB, kind: 'buffer' };

interface PutCase {
  shape: ItemShape;
  chunkSize?: number;
}

const PUT_CASES: readonly PutCase[] = [
  { shape: SMALL },
  { shape: SMALL, chunkSize: 1000 },
  { shape: SMALL, chunkSize: 10_000 },
  { shape: SMALL_RAW },
  { shape: ONE_KIB },
  { shape: ONE_KIB_RAW },
  { shape: BIG },
  { shape: BIG_RAW },
];

type DrainMethod = 'getMany' | 'getMany+taskDone' | 'getMany+taskDone(n)' | 'get+taskDone';

interface DrainCase {
  shape: ItemShape;
  method: DrainMethod;
}

const DRAIN_CASES: readonly DrainCase[] = [
  { shape: SMALL, method: 'getMany' },
  { shape: SMALL, method: 'getMany+taskDone' },
  { shape: SMALL, method: 'getMany+taskDone(n)' },
  { shape: SMALL, method: 'get+taskDone' },
  { shape: ONE_KIB_RAW, method: 'getMany' },
  { shape: ONE_KIB_RAW, method: 'getMany+taskDone' },
  { shape: BIG_RAW, method: 'getMany+taskDone' },
];

function serializerFor(shape: ItemShape): 'raw' | 'cbor' {
  return shape.kind === 'buffer' ? 'raw' : 'cbor';
}

/** A batch of distinct items of `shape`: strings of `bytes` ASCII characters, or Buffers of `bytes` bytes. */
function makeBatch(shape: ItemShape, count: number): Array<string | Buffer> {
  const batch: Array<string | Buffer> = [];
  for (let i = 0; i < count; i++) {
    const tag = `item-${i}-`;
    if (shape.kind === 'string') batch.push(tag + 'x'.repeat(shape.bytes - tag.length));
    else {
      const buffer = Buffer.alloc(shape.bytes, i & 0xff);
      buffer.write(tag);
      batch.push(buffer);
    }
  }
  return batch;
}

function batchItems(shape: ItemShape): number {
  return Math.max(1, Math.min(MAX_BATCH_ITEMS, Math.floor(BATCH_BYTES / shape.bytes)));
}

/** Items per run for `shape`: a whole number of batches holding about the bytes per run. */
function itemsPerRun(shape: ItemShape, quick: boolean): number {
  const perBatch = batchItems(shape);
  const bytes = quick ? QUICK_BYTES_PER_RUN : BYTES_PER_RUN;
  return Math.max(1, Math.round(bytes / shape.bytes / perBatch)) * perBatch;
}

function optionsFor(shape: ItemShape, chunkSize: number | undefined): QueueOptions {
  const options: QueueOptions = { serializer: serializerFor(shape) };
  if (chunkSize !== undefined) options.chunkSize = chunkSize;
  return options;
}

/** Fills `q` with `total` items of the batch, one putMany per batch. */
async function fill(q: Queue<string | Buffer>, batch: Array<string | Buffer>, total: number): Promise<void> {
  for (let done = 0; done < total; done += batch.length) await q.putMany(batch);
}

/** items/s of putMany into a fresh queue (open and close untimed). */
async function putManyRate(dir: string, testCase: PutCase, total: number, batch: Array<string | Buffer>): Promise<number> {
  const q = await Queue.open<string | Buffer>(dir, optionsFor(testCase.shape, testCase.chunkSize));
  const seconds = await timed(() => fill(q, batch, total));
  if (q.size !== total) throw new Error(`benchmark bug: ${q.size} items queued, expected ${total}`);
  await q.close();
  return total / seconds;
}

/** items/s of draining a queue filled (untimed) with `total` items. */
async function drainRate(dir: string, testCase: DrainCase, total: number, batch: Array<string | Buffer>): Promise<number> {
  const q = await Queue.open<string | Buffer>(dir, optionsFor(testCase.shape, undefined));
  await fill(q, batch, total);
  let taken = 0;
  const seconds = await timed(async () => {
    if (testCase.method === 'get+taskDone') {
      for (; taken < total; taken++) {
        await q.get();
        await q.taskDone();
      }
      return;
    }
    while (taken < total) {
      const items = await q.getMany(GET_MANY_MAX);
      taken += items.length;
      if (testCase.method === 'getMany+taskDone') for (let i = 0; i < items.length; i++) await q.taskDone();
      else if (testCase.method === 'getMany+taskDone(n)') await q.taskDone(items.length);
    }
  });
  if (taken !== total || q.size !== 0) throw new Error(`benchmark bug: drained ${taken} of ${total}, ${q.size} left`);
  await q.close();
  return total / seconds;
}

/** Items a drain run moves: fewer for one awaited get per item, which is slower. */
function drainItems(testCase: DrainCase, quick: boolean): number {
  const total = itemsPerRun(testCase.shape, quick);
  if (testCase.method !== 'get+taskDone') return total;
  const perBatch = batchItems(testCase.shape);
  return Math.max(1, Math.round((total * PER_ITEM_DRAIN_FRACTION) / perBatch)) * perBatch;
}

function chunkFilesFor(total: number, chunkSize: number): number {
  return Math.ceil(total / chunkSize);
}

function planFor(context: BenchContext): { repeats: number; warmups: number } {
  return { repeats: context.quick ? QUICK_REPEATS : REPEATS, warmups: WARMUPS };
}

async function runPutMany(context: BenchContext): Promise<void> {
  const plan = planFor(context);
  const putRows: string[][] = [];
  progress(`putMany: ${PUT_CASES.length} cases taking turns, ${plan.repeats} runs each`);
  const putSeries = await measureInterleaved(
    plan,
    PUT_CASES.map((testCase) => {
      const total = itemsPerRun(testCase.shape, context.quick);
      const batch = makeBatch(testCase.shape, batchItems(testCase.shape));
      return (dir: string) => putManyRate(dir, testCase, total, batch);
    }),
  );
  for (const [index, testCase] of PUT_CASES.entries()) {
    const series = putSeries[index];
    const total = itemsPerRun(testCase.shape, context.quick);
    const chunkSize = testCase.chunkSize ?? DEFAULT_CHUNK_SIZE;
    putRows.push([
      testCase.shape.label,
      serializerFor(testCase.shape),
      testCase.chunkSize === undefined ? `${DEFAULT_CHUNK_SIZE} (default)` : formatCount(chunkSize),
      formatCount(batchItems(testCase.shape)),
      formatCount(total),
      formatCount(chunkFilesFor(total, chunkSize)),
      formatRateSeries(series),
      `${formatBytes(series.median * testCase.shape.bytes)}/s`,
    ]);
  }
  printTable({
    title: 'putMany: items/s',
    columns: [
      'item',
      'serializer',
      'chunkSize',
      'items per call',
      'items per run',
      'chunk files per run',
      'items/s, median (min–max)',
      'item bytes/s',
    ],
    rows: putRows,
    notes: [
      `Median of ${plan.repeats} runs after ${WARMUPS} warm-up, the rows taking turns, each run into a fresh directory; only the putMany calls are timed (fsync 'never', the default).`,
      "A string item is that many ASCII characters, encoded by the default 'cbor' serializer (2-5 bytes more);",
      "a Buffer item goes through serializer 'raw' as is. Each record adds a 28-byte header on disk.",
    ],
  });
}

async function runDrain(context: BenchContext): Promise<void> {
  const plan = planFor(context);
  const drainRows: string[][] = [];
  const drainTotals = DRAIN_CASES.map((testCase) => drainItems(testCase, context.quick));
  progress(`drain: ${DRAIN_CASES.length} cases taking turns, ${plan.repeats} runs each`);
  const drainSeries = await measureInterleaved(
    plan,
    DRAIN_CASES.map((testCase, index) => {
      const batch = makeBatch(testCase.shape, batchItems(testCase.shape));
      return (dir: string) => drainRate(dir, testCase, drainTotals[index], batch);
    }),
  );
  for (const [index, testCase] of DRAIN_CASES.entries()) {
    const series = drainSeries[index];
    drainRows.push([
      testCase.shape.label,
      serializerFor(testCase.shape),
      describeDrain(testCase.method),
      formatCount(drainTotals[index]),
      formatRateSeries(series),
      `${formatBytes(series.median * testCase.shape.bytes)}/s`,
    ]);
  }
  printTable({
    title: 'Drain: items/s taken from a filled queue',
    columns: ['item', 'serializer', 'how', 'items per run', 'items/s, median (min–max)', 'item bytes/s'],
    rows: drainRows,
    notes: [
      `Median of ${plan.repeats} runs, the rows taking turns; the queue (chunkSize ${DEFAULT_CHUNK_SIZE}) is filled with putMany untimed, then drained to empty.`,
      'With taskDone, acknowledged chunk files are deleted during the drain, and that is timed too.',
    ],
  });
}

function describeDrain(method: DrainMethod): string {
  switch (method) {
    case 'getMany':
      return `getMany(${GET_MANY_MAX})`;
    case 'getMany+taskDone':
      return `getMany(${GET_MANY_MAX}) + taskDone per item`;
    case 'getMany+taskDone(n)':
      return `getMany(${GET_MANY_MAX}) + taskDone(n) per batch`;
    case 'get+taskDone':
      return 'get() + taskDone() per item';
  }
}

export const throughput: BenchGroup = {
  name: 'throughput',
  title: 'putMany items/s by item size, serializer and chunk size',
  run: runPutMany,
};

// A group of its own, run after the groups that time file creations: a
// drain deletes thousands of chunk files (see harness.withTempDir).
export const drain: BenchGroup = {
  name: 'drain',
  title: 'getMany and get items/s from a filled queue, with and without taskDone',
  run: runDrain,
};
