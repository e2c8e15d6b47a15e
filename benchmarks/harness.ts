// The benchmark harness: wall-clock timing, repeated runs summarised by their
// median, a fresh temporary directory per run (emptied after the run, all
// removed at the end of the whole run, whatever happens), a pause before each group until creating a
// file is cheap again, and markdown tables. Runs that are compared share one process and
// one machine state, so ratios within a run mean more than absolute numbers.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Set this to benchmark a directory on another file system than the OS temp dir. */
export const BENCH_DIR_ENV = 'PERQ_BENCH_DIR';
/** Prefix of every temporary directory, so a run killed midway is easy to spot and remove. */
const TEMP_PREFIX = 'perq-bench-';
const MS_PER_S = 1000;
const KIB = 1024;
const MIB = KIB * KIB;
const GIB = MIB * KIB;
/** A markdown table's rule needs at least three dashes per column. */
const MIN_COLUMN_WIDTH = 3;

export interface BenchContext {
  /** Fewer repeats and smaller N: a smoke run that shows the suite works. */
  quick: boolean;
}

/** One benchmark group: a module that measures one concern and prints its tables. */
export interface BenchGroup {
  /** The name to pass on the command line to run only this group. */
  name: string;
  /** What the group measures, one line. */
  title: string;
  run(context: BenchContext): Promise<void>;
}

export interface RunPlan {
  /** Measured runs; the median of them is reported. */
  repeats: number;
  /** Runs before the measured ones whose times are thrown away (JIT, page cache). */
  warmups?: number;
}

export interface Series {
  median: number;
  min: number;
  max: number;
  /** Every measured value, in run order. */
  samples: number[];
}

/** The directory under which each run makes its own temporary directory. */
export function benchRoot(): string {
  const chosen = process.env[BENCH_DIR_ENV];
  if (chosen === undefined || chosen === '') return os.tmpdir();
  const root = path.resolve(chosen);
  // Made here, not at the first run: the machine description looks at it first.
  fs.mkdirSync(root, { recursive: true });
  return root;
}

/** Directories of finished runs, removed by removeTempDirs at the end of the whole run. */
const finishedDirs: string[] = [];

/**
 * Calls `fn` with a fresh empty directory, kept until removeTempDirs, its
 * files emptied afterwards. Not removed at once because deleting files makes
 * creating files dearer for minutes on some file systems (ext4 without a
 * journal, as on the machine these numbers come from, skips every inode freed
 * in the last 60-360 s when it picks one for a new file): one run's clean-up
 * would slow the next run's chunk creations ~20x. Emptied, because the data
 * of runs left whole (gigabytes over a group) would be written back to the
 * disk during later runs and throttle them. The files perq itself deletes
 * still count.
 */
export async function withTempDir<R>(fn: (dir: string) => Promise<R>): Promise<R> {
  const dir = newTempDir();
  try {
    return await fn(dir);
  } finally {
    emptyFiles(dir);
  }
}

/** A fresh empty directory, removed by removeTempDirs. */
function newTempDir(): string {
  const dir = fs.mkdtempSync(path.join(benchRoot(), TEMP_PREFIX));
  finishedDirs.push(dir);
  return dir;
}

/** Truncates every file under `dir` to nothing, keeping the files (and their inodes). */
function emptyFiles(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) emptyFiles(file);
    else if (entry.isFile()) fs.truncateSync(file, 0);
  }
}

/** A file creation at most this dear counts as settled (tmpfs: ~5-20 µs, a quiet ext4: ~25 µs). */
const SETTLED_CREATE_US = 80;
/** Files created (and kept) per look at the creation cost. */
const SETTLE_PROBE_FILES = 32;
const SETTLE_PAUSE_MS = 10_000;
/** Waiting longer than this is not worth it: the group runs on the file system as it is. */
const SETTLE_LIMIT_MS = 120_000;
const US_PER_MS = 1000;

/** Average µs to create (and close) one empty file in a fresh directory. */
function fileCreationUs(): number {
  const dir = newTempDir();
  const start = performance.now();
  for (let i = 0; i < SETTLE_PROBE_FILES; i++) fs.closeSync(fs.openSync(path.join(dir, String(i)), 'wx'));
  return ((performance.now() - start) * US_PER_MS) / SETTLE_PROBE_FILES;
}

/**
 * Waits (up to two minutes; not at all with `quick`) until creating a file
 * costs no more than it does on a quiet file system, so that each group
 * starts from a comparable state rather than from the deletions of the group
 * before it (see withTempDir); returns what it saw, for the output.
 */
export async function settleFileCreation(context: BenchContext): Promise<{ createUs: number; waitedMs: number }> {
  const start = performance.now();
  const limitMs = context.quick ? 0 : SETTLE_LIMIT_MS;
  let createUs = fileCreationUs();
  while (createUs > SETTLED_CREATE_US && performance.now() - start < limitMs) {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_PAUSE_MS));
    createUs = fileCreationUs();
  }
  return { createUs, waitedMs: performance.now() - start };
}

/** Removes every directory withTempDir made. */
export function removeTempDirs(): void {
  for (const dir of finishedDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/** Runs the garbage collector when node was started with --expose-gc. */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc !== undefined) gc();
}

export function gcExposed(): boolean {
  return typeof (globalThis as { gc?: unknown }).gc === 'function';
}

/** Seconds `fn` takes, wall clock. */
export async function timed(fn: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / MS_PER_S;
}

/**
 * Runs `run` (warmups + repeats) times, each in a fresh temporary directory
 * after a garbage collection, and summarises the values it returns (for
 * example the seconds of its timed section, or a rate).
 */
export async function measure(plan: RunPlan, run: (dir: string) => Promise<number>): Promise<Series> {
  for (let i = 0; i < (plan.warmups ?? 0); i++) {
    collectGarbage();
    await withTempDir(run);
  }
  const samples: number[] = [];
  for (let i = 0; i < plan.repeats; i++) {
    collectGarbage();
    samples.push(await withTempDir(run));
  }
  return summarise(samples);
}

/**
 * `measure` for several cases at once, taking their runs in turns (a, b, c,
 * a, b, c, ...) so that drift in the machine's state over the minutes of a
 * run (other tenants, file system caches) reaches every case alike and their
 * ratios stay fair. Returns one series per case, in the order given.
 */
export async function measureInterleaved(plan: RunPlan, runs: ReadonlyArray<(dir: string) => Promise<number>>): Promise<Series[]> {
  for (let i = 0; i < (plan.warmups ?? 0); i++) {
    for (const run of runs) {
      collectGarbage();
      await withTempDir(run);
    }
  }
  const samples: number[][] = runs.map(() => []);
  for (let i = 0; i < plan.repeats; i++) {
    for (const [index, run] of runs.entries()) {
      collectGarbage();
      samples[index].push(await withTempDir(run));
    }
  }
  return samples.map((values) => summarise(values));
}

export function summarise(samples: readonly number[]): Series {
  if (samples.length === 0) throw new Error('no samples to summarise');
  return { median: median(samples), min: Math.min(...samples), max: Math.max(...samples), samples: [...samples] };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Seconds with a unit that keeps three significant digits: "812 µs", "49.2 ms", "2.61 s". */
export function formatSeconds(seconds: number): string {
  if (seconds < 1e-3) return `${precise(seconds * 1e6)} µs`;
  if (seconds < 1) return `${precise(seconds * 1e3)} ms`;
  return `${precise(seconds)} s`;
}

/** A series of seconds as "median (min–max)", or just the median for a single run. */
export function formatSecondsSeries(series: Series): string {
  if (series.samples.length === 1) return formatSeconds(series.median);
  return `${formatSeconds(series.median)} (${formatSeconds(series.min)}–${formatSeconds(series.max)})`;
}

/** A rate per second with thousands separators and no decimals: "1,234,567". */
export function formatRate(perSecond: number): string {
  return Math.round(perSecond).toLocaleString('en-US');
}

/** A series of rates as "median (min–max)". */
export function formatRateSeries(series: Series): string {
  if (series.samples.length === 1) return formatRate(series.median);
  return `${formatRate(series.median)} (${formatRate(series.min)}–${formatRate(series.max)})`;
}

export function formatBytes(bytes: number): string {
  if (bytes < KIB) return `${bytes} B`;
  if (bytes < MIB) return `${precise(bytes / KIB)} KiB`;
  if (bytes < GIB) return `${precise(bytes / MIB)} MiB`;
  return `${precise(bytes / GIB)} GiB`;
}

export function formatCount(count: number): string {
  return count.toLocaleString('en-US');
}

export function formatRatio(ratio: number): string {
  return `${ratio >= 10 ? ratio.toFixed(0) : ratio.toFixed(1)}x`;
}

/** Three significant digits, without exponent notation. */
function precise(value: number): string {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export interface Table {
  title: string;
  columns: string[];
  rows: string[][];
  /** Lines printed under the table: what was measured and how. */
  notes?: string[];
}

/** Prints a markdown table (first column left-aligned, the others right-aligned), ready for docs/benchmarks.md. */
export function printTable(table: Table): void {
  const widths = table.columns.map((column, i) =>
    Math.max(column.length, MIN_COLUMN_WIDTH, ...table.rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: string[]): string =>
    `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ')} |`;
  const rule = `| ${widths.map((width, i) => (i === 0 ? '-'.repeat(width) : `${'-'.repeat(width - 1)}:`)).join(' | ')} |`;
  const out = [`### ${table.title}`, '', line(table.columns), rule, ...table.rows.map((row) => line(row))];
  if (table.notes !== undefined && table.notes.length > 0) out.push('', ...table.notes);
  console.log(`${out.join('\n')}\n`);
}

/** Prints a progress line on stderr, so that stdout holds only the tables. */
export function progress(message: string): void {
  process.stderr.write(`  … ${message}\n`);
}

/** The machine the numbers come from, as markdown bullet lines. */
export function describeMachine(): string[] {
  const cpus = os.cpus();
  const cpuModel = readCpuModel() ?? cpus[0]?.model ?? 'unknown';
  const root = benchRoot();
  return [
    `- CPU: ${cpuModel}, ${os.availableParallelism()} cores available`,
    `- memory: ${formatBytes(os.totalmem())}`,
    `- OS: ${os.type()} ${os.release()} (${os.arch()})`,
    `- temp dir: ${root} on ${describeFileSystem(root)}`,
    `- Node.js ${process.version}`,
  ];
}

function readCpuModel(): string | undefined {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    return match?.[1].trim();
  } catch {
    return undefined;
  }
}

/** The file system type of the mount that holds `dir`, from /proc/mounts (Linux); 'unknown' elsewhere. */
function describeFileSystem(dir: string): string {
  let mounts: string;
  try {
    mounts = fs.readFileSync('/proc/mounts', 'utf8');
  } catch {
    return 'an unknown file system';
  }
  const real = fs.realpathSync(dir);
  let best: { point: string; type: string; device: string } | undefined;
  for (const entry of mounts.split('\n')) {
    const [device, point, type] = entry.split(' ');
    if (point === undefined || type === undefined) continue;
    const inside = real === point || real.startsWith(point.endsWith('/') ? point : `${point}/`);
    if (inside && (best === undefined || point.length >= best.point.length)) best = { point, type, device };
  }
  return best === undefined ? 'an unknown file system' : `${best.type} (${best.device} mounted at ${best.point})`;
}
