// One memory measurement, run by benchmarks/memory.ts in a child process of
// its own so that no other measurement's heap is counted. Two modes:
// - fill: fills a fresh queue in `dir` with `items` small items by putMany and
//   reads resident memory after a garbage collection (a producer's view);
// - open: opens the queue a fill child left and takes a batch (what a
//   restarted consumer holds, without the churn of filling).
// Usage: node --expose-gc memory-child.js fill|open <dir> <items>

import { Queue } from '../lib/index.js';

/** Items per putMany call: a big batch, as a bulk loader would use. */
const BATCH_ITEMS = 10_000;
/** Items taken after the reopen, to show reading does not load the backlog either. */
const READ_AFTER_REOPEN = 1000;
/** A second collection picks up what finalizers of the first released. */
const GC_PASSES = 2;
const MS_PER_S = 1000;
const KIB = 1024;

export type MemoryMode = 'fill' | 'open';

export interface MemoryReport {
  mode: MemoryMode;
  items: number;
  /** RSS with perq loaded and no queue open. */
  rssBefore: number;
  /** After the fill, or after the open and getMany: RSS and V8 heap, after garbage collection. */
  rss: number;
  heapUsed: number;
  heapTotal: number;
  /** Peak RSS of the whole child, in bytes. */
  maxRss: number;
  /** Seconds of the fill, or of Queue.open. */
  seconds: number;
}

function settledMemory(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('memory-child needs node --expose-gc');
  for (let i = 0; i < GC_PASSES; i++) gc();
  return process.memoryUsage();
}

/** Fills a fresh queue; returns it (still open: a producer holding its backlog) and the seconds taken. */
async function fill(dir: string, items: number): Promise<{ q: Queue<string>; seconds: number }> {
  const q = await Queue.open<string>(dir);
  const start = performance.now();
  for (let done = 0; done < items;) {
    const count = Math.min(BATCH_ITEMS, items - done);
    const batch: string[] = new Array<string>(count);
    for (let i = 0; i < count; i++) batch[i] = 'item' + (done + i);
    await q.putMany(batch);
    done += count;
  }
  const seconds = (performance.now() - start) / MS_PER_S;
  if (q.size !== items) throw new Error(`benchmark bug: ${q.size} items queued, expected ${items}`);
  return { q, seconds };
}

/** Opens the filled queue and takes a batch; returns it (still open) and the seconds Queue.open took. */
async function open(dir: string, items: number): Promise<{ q: Queue<string>; seconds: number }> {
  const start = performance.now();
  const q = await Queue.open<string>(dir);
  const seconds = (performance.now() - start) / MS_PER_S;
  if (q.size !== items) throw new Error(`benchmark bug: ${q.size} items after reopen, expected ${items}`);
  if (items > 0) await q.getMany(Math.min(READ_AFTER_REOPEN, items));
  return { q, seconds };
}

async function main(): Promise<void> {
  const [mode, dir, itemsArg] = process.argv.slice(2);
  const items = Number(itemsArg);
  if ((mode !== 'fill' && mode !== 'open') || dir === undefined || !Number.isSafeInteger(items) || items < 0) {
    throw new Error('usage: memory-child.js fill|open <dir> <items>');
  }
  const rssBefore = settledMemory().rss;
  const { q, seconds } = mode === 'fill' ? await fill(dir, items) : await open(dir, items);
  const after = settledMemory();
  await q.close();
  const report: MemoryReport = {
    mode,
    items,
    rssBefore,
    rss: after.rss,
    heapUsed: after.heapUsed,
    heapTotal: after.heapTotal,
    maxRss: process.resourceUsage().maxRSS * KIB,
    seconds,
  };
  if (process.send === undefined) console.log(JSON.stringify(report));
  else process.send(report);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
