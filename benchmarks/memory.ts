// Resident memory against queue length. Each measurement runs in child
// processes of its own (benchmarks/memory-child.ts): one fills a fresh queue
// with putMany and reports process.memoryUsage() after garbage collection with
// the queue still open; a second opens that queue and takes a batch, as a
// restarted consumer would. perq keeps no per-item state in memory, so neither
// should grow with the backlog.

import { fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  formatBytes,
  formatCount,
  formatSeconds,
  median,
  printTable,
  progress,
  withTempDir,
  type BenchContext,
  type BenchGroup,
} from './harness.js';
import type { MemoryMode, MemoryReport } from './memory-child.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'memory-child.js');
/** Queue lengths measured: the 10 thousand and 10 million, and steps between. */
const LENGTHS = [10_000, 1_000_000, 10_000_000];
/** --quick stops at a million, which fills in seconds. */
const QUICK_LENGTHS = [10_000, 1_000_000];
/** Runs per length: RSS and heap vary by a few MiB between identical runs. */
const REPEATS = 3;
const QUICK_REPEATS = 1;

interface MemoryRun {
  filled: MemoryReport;
  opened: MemoryReport;
  diskBytes: number;
  files: number;
}

/** Fills a fresh directory in one child, opens it in another; returns both reports and what is on disk. */
async function measureLength(items: number): Promise<MemoryRun> {
  return withTempDir(async (dir) => {
    const filled = await runChild('fill', dir, items);
    const opened = await runChild('open', dir, items);
    let diskBytes = 0;
    const names = fs.readdirSync(dir);
    for (const name of names) diskBytes += fs.statSync(path.join(dir, name)).size;
    return { filled, opened, diskBytes, files: names.length };
  });
}

function runChild(mode: MemoryMode, dir: string, items: number): Promise<MemoryReport> {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [mode, dir, String(items)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let report: MemoryReport | undefined;
    child.on('message', (message) => {
      report = message as MemoryReport;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (report !== undefined && code === 0) resolve(report);
      else
        reject(
          new Error(`memory child (${mode}, ${items} items) exited with ${signal ?? code} and ${report === undefined ? 'no' : 'a'} report`),
        );
    });
  });
}

async function run(context: BenchContext): Promise<void> {
  const lengths = context.quick ? QUICK_LENGTHS : LENGTHS;
  const rows: string[][] = [];
  for (const items of lengths) {
    const repeats = context.quick ? QUICK_REPEATS : REPEATS;
    progress(`memory: ${formatCount(items)} items, ${repeats} run(s) of a fill child and an open child`);
    const runs: MemoryRun[] = [];
    for (let i = 0; i < repeats; i++) runs.push(await measureLength(items));
    const pick = (f: (r: MemoryRun) => number): string => formatBytes(median(runs.map(f)));
    rows.push([
      formatCount(items),
      pick((r) => r.filled.rssBefore),
      pick((r) => r.filled.rss),
      `${pick((r) => r.filled.heapUsed)} / ${pick((r) => r.filled.heapTotal)}`,
      pick((r) => r.filled.maxRss),
      formatSeconds(median(runs.map((r) => r.filled.seconds))),
      pick((r) => r.opened.rss),
      `${pick((r) => r.opened.heapUsed)} / ${pick((r) => r.opened.heapTotal)}`,
      formatSeconds(median(runs.map((r) => r.opened.seconds))),
      `${pick((r) => r.diskBytes)} in ${formatCount(runs[0].files)} files`,
      String(repeats),
    ]);
  }
  printTable({
    title: 'Resident memory against queue length',
    columns: [
      'items queued',
      'RSS, perq loaded',
      'RSS, filled',
      'heap used / total, filled',
      'peak RSS, filling',
      'fill time',
      'RSS, reopened',
      'heap used / total, reopened',
      'open time',
      'on disk',
      'runs',
    ],
    rows,
    notes: [
      "Default options; items 'item' + i (about 10 bytes as CBOR), putMany in batches of 10,000. Each column group is its own child process",
      '(node --expose-gc): the fill child measures with the queue it filled still open; the open child opens that directory, takes getMany(1000)',
      "and measures. Memory is read after two forced garbage collections; peak RSS is the fill child's maxRSS (batches being built included).",
      'Median over the runs.',
    ],
  });
}

export const memory: BenchGroup = {
  name: 'memory',
  title: 'resident memory with 10 thousand to 10 million items queued (one child process per measurement)',
  run,
};
