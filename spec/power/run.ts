// The power-loss suite: runs perq workers on a LazyFS mount, cuts the power
// at a random moment (SIGKILL every worker, then drop every byte not
// fsync'd), opens the directory in a fresh process, drains it, and checks
// what it finds against what the workers' resolved calls promise under each
// fsync mode (SPEC: "Durability under power loss"). Queues go on across cuts
// in the same directory, and now and then start afresh.
//
// Usage: node dist/spec/power/run.js [--cuts N] [--seed S] [--modes always,50,never]
//   [--workloads 1,4P1C,2P2C] [--run-ms MIN-MAX] [--slack MS] [--keep] [--verbose]
//   [--skip-if-unavailable] [--kill-only]
// Prints the seed (a seed replays the schedule: modes, workloads, run times and
// each worker's calls; the interleaving is the machine's), a line per cut, a
// table per mode and workload, and last `N passed, N failed`. Exit 1 if any cut failed.

import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KINDS, checkCut, newModel, type CutVerdict, type DirModel, type Finding, type Kind, type RunRecord } from './check.js';
import { LazyFs, buildLazyfs, lazyfsScripts, unavailable } from './lazyfs.js';
import {
  fsyncArg,
  now,
  parseJournal,
  type DrainReport,
  type Fsync,
  type Intents,
  type Role,
  type WorkerConfig,
  type WorkerReport,
} from './protocol.js';
import { between, choose, random } from './random.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..', '..');

const WORKLOADS: Record<string, Role[]> = {
  '1': ['mixed'],
  '4P1C': ['producer', 'producer', 'producer', 'producer', 'consumer'],
  '2P2C': ['producer', 'producer', 'consumer', 'consumer'],
};
/** Chunk sizes of fresh queues: small ones make chunk creation, deletion and spares frequent. */
const CHUNK_SIZES = [5, 16, 100];
/** A cut starts a fresh queue with this probability (and after a stuck one). */
const FRESH_CHANCE = 0.2;
/** A cut lets its workers clear the queue with this probability. */
const CLEAR_CHANCE = 0.35;
/** Producers wait while more items than this are waiting. */
const BACKLOG = 300;
/** Workers must all be ready within this (node start-up and open on a busy machine). */
const READY_TIMEOUT_MS = 30_000;
/** A drain that takes longer than this counts as stuck. */
const DRAIN_TIMEOUT_MS = 60_000;
/** How many findings of one cut are printed in full. */
const DETAILS_PER_CUT = 6;

interface Args {
  cuts: number;
  seed: number;
  modes: Fsync[];
  workloads: string[];
  runMs: [number, number];
  slack: number;
  keep: boolean;
  verbose: boolean;
  skipIfUnavailable: boolean;
  /** SIGKILL only, no power cut: every mode must then keep everything (a check of the suite itself, too). */
  killOnly: boolean;
}

function defaultArgs(): Args {
  return {
    cuts: 60,
    seed: Math.floor(Math.random() * 2 ** 31),
    modes: ['always', 50, 'never'],
    workloads: Object.keys(WORKLOADS),
    runMs: [120, 700],
    slack: 0,
    keep: false,
    verbose: false,
    skipIfUnavailable: false,
    killOnly: false,
  };
}

function parseArgs(argv: string[]): Args {
  const args = defaultArgs();
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) usage(`${flag} needs a value`);
      return v;
    };
    if (flag === '--cuts') args.cuts = Number(value());
    else if (flag === '--seed') args.seed = Number(value());
    else if (flag === '--modes') args.modes = value().split(',').map(fsyncArg);
    else if (flag === '--workloads') args.workloads = value().split(',');
    else if (flag === '--run-ms') args.runMs = value().split('-').map(Number) as [number, number];
    else if (flag === '--slack') args.slack = Number(value());
    else if (flag === '--keep') args.keep = true;
    else if (flag === '--verbose') args.verbose = true;
    else if (flag === '--skip-if-unavailable') args.skipIfUnavailable = true;
    else if (flag === '--kill-only') args.killOnly = true;
    else if (flag === '--help' || flag === '-h') usage();
    else usage(`unknown argument ${flag}`);
  }
  if (!Number.isSafeInteger(args.cuts) || args.cuts < 1) usage('--cuts takes a whole number >= 1');
  if (!Number.isSafeInteger(args.seed)) usage('--seed takes a whole number');
  if (args.modes.some((m) => typeof m === 'number' && !(m > 0))) usage('--modes: always, never or a number of ms');
  if (args.workloads.some((w) => !(w in WORKLOADS))) usage(`--workloads: some of ${Object.keys(WORKLOADS).join(', ')}`);
  if (args.runMs.length !== 2 || !(args.runMs[0] >= 0 && args.runMs[1] >= args.runMs[0])) usage('--run-ms takes MIN-MAX');
  return args;
}

function usage(problem?: string): never {
  const text =
    'usage: test:power [--cuts N] [--seed S] [--modes always,50,never] [--workloads 1,4P1C,2P2C] [--run-ms MIN-MAX] [--slack MS] [--keep] [--verbose] [--skip-if-unavailable] [--kill-only]';
  if (problem) console.error(`${problem}\n${text}`);
  else console.log(text);
  process.exit(problem ? 2 : 0);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Every child this run started, to kill on the way out. */
const children = new Set<ChildProcess>();

function start(script: string, config: object): { child: ChildProcess; stderr: () => string } {
  const child = fork(path.join(here, `${script}.js`), [JSON.stringify(config)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  children.add(child);
  let stderr = '';
  child.stderr?.on('data', (data: Buffer) => {
    stderr = (stderr + data.toString()).slice(-4000);
  });
  child.once('close', () => children.delete(child));
  return { child, stderr: () => stderr };
}

/** Resolves once the child has exited and its IPC channel has delivered everything. */
function gone(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      if (!child.connected) return resolve();
    }
    child.once('close', () => resolve());
  });
}

interface ModeState {
  dir: string | undefined;
  model: DirModel;
  dirs: number;
  chunkSize: number;
}

interface CutPlan {
  index: number;
  fsync: Fsync;
  workload: string;
  runMs: number;
  fresh: boolean;
  clears: boolean;
  chunkSize: number;
  seeds: number[];
}

interface CutResult {
  plan: CutPlan;
  dir: string;
  fresh: boolean;
  verdict: CutVerdict;
  warnings: Record<string, number>;
  failed: boolean;
}

async function runCut(fsLazy: LazyFs, base: string, plan: CutPlan, state: ModeState): Promise<CutResult> {
  // A fresh queue when planned, and after the last one was given up (stuck).
  const fresh = plan.fresh || state.dir === undefined;
  if (fresh) {
    state.dirs++;
    state.dir = path.join(fsLazy.mnt, `${modeName(plan.fsync)}-${state.dirs}`);
    state.model = newModel();
    state.chunkSize = plan.chunkSize;
  }
  const dir = state.dir as string;
  const roles = WORKLOADS[plan.workload];
  const multi = roles.length > 1;
  const reports: RunRecord['reports'] = [];
  const earlyExits: string[] = [];
  const journals: string[] = [];
  const workers = roles.map((role, i) => {
    const tag = `c${plan.index}w${i}`;
    const journal = path.join(base, 'journal', `${tag}.log`);
    journals.push(journal);
    const config: WorkerConfig = {
      dir,
      fsync: plan.fsync,
      role,
      tag,
      seed: plan.seeds[i],
      clears: plan.clears,
      ackAll: plan.clears && multi,
      backlog: BACKLOG,
      journal,
      chunkSize: fresh ? state.chunkSize : undefined,
    };
    const started = start('worker', config);
    started.child.on('message', (message: WorkerReport) => reports.push({ ...message, worker: tag }));
    return { tag, ...started };
  });

  // Run until every worker is ready (or gone), then for runMs, then cut.
  const ready = workers.map(
    ({ child }) =>
      new Promise<void>((resolve) => {
        child.on('message', (message: WorkerReport) => {
          if (message.kind === 'ready') resolve();
        });
        child.once('exit', () => resolve());
      }),
  );
  await Promise.race([Promise.all(ready), sleep(READY_TIMEOUT_MS)]);
  await sleep(plan.runMs);
  const tCut = now();
  for (const { child } of workers) child.kill('SIGKILL');
  await Promise.all(workers.map(({ child }) => gone(child)));
  for (const { tag, child, stderr } of workers) {
    if (child.signalCode !== 'SIGKILL')
      earlyExits.push(`${tag} (exit ${child.exitCode ?? child.signalCode}${stderr() ? `: ${errorLines(stderr())}` : ''})`);
  }
  if (!args.killOnly) await fsLazy.clearCache();

  const intents: Intents = { puts: new Map(), acks: new Set(), clears: [] };
  for (const journal of journals) {
    try {
      parseJournal(fs.readFileSync(journal, 'utf8'), intents);
    } catch {
      // A worker that died before its first call wrote nothing.
    }
  }

  const drain = await drainDir(dir, plan.fsync);
  // A process crash loses nothing that resolved, whatever the mode.
  const run: RunRecord = { fsync: args.killOnly ? 'always' : plan.fsync, tCut, reports, intents, earlyExits };
  const verdict = checkCut(state.model, run, drain, args.slack);
  if (verdict.next === undefined) state.dir = undefined;
  else state.model = verdict.next;
  const failed = verdict.findings.some((f) => !f.allowed);
  return { plan, dir, fresh, verdict, warnings: drain?.warnings ?? {}, failed };
}

async function drainDir(dir: string, fsync: Fsync): Promise<DrainReport | undefined> {
  const { child, stderr } = start('drain', { dir, fsync });
  let report: DrainReport | undefined;
  child.on('message', (message: DrainReport) => {
    report = message;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), DRAIN_TIMEOUT_MS);
  await gone(child);
  clearTimeout(timer);
  if (report === undefined) {
    const why =
      child.signalCode === 'SIGKILL'
        ? `hung for ${DRAIN_TIMEOUT_MS} ms`
        : `exited ${child.exitCode ?? child.signalCode}: ${errorLines(stderr())}`;
    return { keys: [], wrong: [], warnings: {}, stuck: { stage: 'drain', code: 'NO_REPORT', message: `the drain process ${why}` } };
  }
  return report;
}

/** The arguments that replay this run's schedule. */
function replayArgs(a: Args): string {
  const parts = [`--cuts ${a.cuts}`, `--seed ${a.seed}`];
  const defaults = defaultArgs();
  if (a.modes.join() !== defaults.modes.join()) parts.push(`--modes ${a.modes.join(',')}`);
  if (a.workloads.join() !== defaults.workloads.join()) parts.push(`--workloads ${a.workloads.join(',')}`);
  if (a.runMs.join() !== defaults.runMs.join()) parts.push(`--run-ms ${a.runMs.join('-')}`);
  if (a.slack !== 0) parts.push(`--slack ${a.slack}`);
  if (a.killOnly) parts.push('--kill-only');
  return parts.join(' ');
}

/** The lines of a child's stderr from its first error on, in one line. */
function errorLines(text: string): string {
  const lines = text.trim().split('\n');
  const first = lines.findIndex((line) => /Error|error/.test(line));
  return lines
    .slice(first < 0 ? -4 : first, (first < 0 ? lines.length : first) + 6)
    .map((line) => line.trim())
    .join(' / ');
}

function modeName(fsync: Fsync): string {
  return typeof fsync === 'number' ? `${fsync}ms` : fsync;
}

function plan(args: Args): CutPlan[] {
  const rand = random(args.seed);
  const plans: CutPlan[] = [];
  const seen = new Set<string>();
  for (let index = 0; index < args.cuts; index++) {
    const fsync = args.modes[index % args.modes.length];
    const name = modeName(fsync);
    const fresh = !seen.has(name) || rand() < FRESH_CHANCE;
    seen.add(name);
    const workload = choose(rand, args.workloads);
    plans.push({
      index,
      fsync,
      workload,
      fresh,
      runMs: between(rand, args.runMs[0], args.runMs[1]),
      clears: rand() < CLEAR_CHANCE,
      chunkSize: choose(rand, CHUNK_SIZES),
      seeds: WORKLOADS[workload].map(() => Math.floor(rand() * 2 ** 31)),
    });
  }
  return plans;
}

function cutLine(result: CutResult): string {
  const { plan, verdict } = result;
  const { puts, acks, gets, drained } = verdict.counts;
  const tally = tallyOf(verdict.findings);
  const bad = KINDS.filter((k) => tally[k].failed > 0).map((k) => `${k} ${tally[k].failed}`);
  const allowed = KINDS.filter((k) => tally[k].allowed > 0).map((k) => `${k} ${tally[k].allowed}`);
  const warned = Object.entries(result.warnings).map(([code, n]) => `${code}x${n}`);
  return [
    `cut ${String(plan.index).padStart(3)} ${modeName(plan.fsync).padEnd(6)} ${plan.workload.padEnd(4)} ${path.basename(result.dir).padEnd(10)}`,
    `${result.fresh ? 'fresh' : 'cont '} ${plan.clears ? 'clear' : '     '} run ${String(plan.runMs).padStart(3)}ms`,
    `puts ${puts} gets ${gets} acks ${acks} drained ${drained}`,
    bad.length > 0 ? `FAIL ${bad.join(', ')}` : 'ok',
    allowed.length > 0 ? `(allowed: ${allowed.join(', ')})` : '',
    warned.length > 0 ? `[${warned.join(' ')}]` : '',
  ]
    .filter(Boolean)
    .join('  ');
}

type Tally = Record<Kind, { failed: number; allowed: number }>;

function tallyOf(findings: Finding[], into?: Tally): Tally {
  const tally = into ?? (Object.fromEntries(KINDS.map((k) => [k, { failed: 0, allowed: 0 }])) as Tally);
  for (const f of findings) tally[f.kind][f.allowed ? 'allowed' : 'failed']++;
  return tally;
}

function summary(results: CutResult[]): string[] {
  const lines: string[] = [];
  const groups = new Map<string, CutResult[]>();
  for (const r of results) {
    for (const key of [`${modeName(r.plan.fsync)}|${r.plan.workload}`, `${modeName(r.plan.fsync)}|all`]) {
      groups.set(key, [...(groups.get(key) ?? []), r]);
    }
  }
  const header = ['mode', 'workload', 'cuts', 'failed', 'puts', 'acks', ...KINDS];
  const rows = [header];
  const order = [...groups.keys()].sort();
  for (const key of order) {
    const group = groups.get(key) ?? [];
    const [mode, workload] = key.split('|');
    const tally = group.reduce((t, r) => tallyOf(r.verdict.findings, t), undefined as Tally | undefined) ?? tallyOf([]);
    rows.push([
      mode,
      workload,
      String(group.length),
      String(group.filter((r) => r.failed).length),
      String(group.reduce((n, r) => n + r.verdict.counts.puts, 0)),
      String(group.reduce((n, r) => n + r.verdict.counts.acks, 0)),
      ...KINDS.map((k) => (tally[k].allowed > 0 ? `${tally[k].failed}(+${tally[k].allowed})` : String(tally[k].failed))),
    ]);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows) lines.push(row.map((cell, i) => cell.padEnd(widths[i])).join('  '));
  lines.push('(N(+M): N failures, M more within what the mode allows: a loss or return under never, or inside the fsync period)');
  const again = results.flatMap((r) => r.verdict.findings.filter((f) => f.kind === 'again' && !f.allowed && !f.live));
  if (again.length > 0) {
    lines.push(
      `failing 'again' after a cut: ${again.filter((f) => f.abovePrefix).length} of ${again.length} acknowledged above the prefix (another consumer held an item handed out before)`,
    );
  }
  const aged = results.flatMap((r) =>
    r.verdict.findings.filter(
      (f) => !f.allowed && typeof r.plan.fsync === 'number' && !f.abovePrefix && f.age !== undefined && Number.isFinite(f.age),
    ),
  );
  if (aged.length > 0) {
    const ages = aged.map((f) => f.age as number).sort((a, b) => a - b);
    lines.push(
      `fsync N losses and returns outside the period (not above the prefix), ${ages.length}, by age at the cut: min ${ages[0].toFixed(1)} ms, median ${ages[Math.floor(ages.length / 2)].toFixed(1)} ms, max ${ages[ages.length - 1].toFixed(1)} ms`,
    );
  }
  const warnings = new Map<string, number>();
  for (const r of results) {
    for (const [code, n] of Object.entries(r.warnings)) {
      const key = `${modeName(r.plan.fsync)} ${code}`;
      warnings.set(key, (warnings.get(key) ?? 0) + n);
    }
  }
  if (warnings.size > 0) lines.push(`warnings at open/drain: ${[...warnings].map(([k, n]) => `${k} x${n}`).join(', ')}`);
  return lines;
}

function details(result: CutResult, verbose: boolean): string[] {
  const failing = result.verdict.findings.filter((f) => !f.allowed || verbose);
  return failing
    .slice(0, verbose ? Infinity : DETAILS_PER_CUT)
    .map((f) => `    ${f.allowed ? 'allowed' : 'FAIL'} ${f.kind}${f.live ? ' (live)' : ''}: ${f.detail}`)
    .concat(failing.length > DETAILS_PER_CUT && !verbose ? [`    ... ${failing.length - DETAILS_PER_CUT} more`] : []);
}

const args = parseArgs(process.argv.slice(2));
const scripts = lazyfsScripts(repoRoot);
const missing = unavailable(scripts);
if (missing !== undefined) {
  console.log(`power-loss suite: cannot run here: ${missing}`);
  process.exit(args.skipIfUnavailable ? 0 : 2);
}
const bin = buildLazyfs(scripts);
// No '-' before the random part: LazyFS takes a --config-path containing "-o" (any case) for a missing one.
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'perq_power_'));
fs.mkdirSync(path.join(base, 'journal'));
const mount = LazyFs.mount(scripts, bin, base);
let cleanedUp = false;
const cleanUp = (): void => {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const child of children) child.kill('SIGKILL');
  mount.unmount();
  if (!args.keep) fs.rmSync(base, { recursive: true, force: true });
  else console.log(`kept ${base} (queues in ${mount.root})`);
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    cleanUp();
    process.exit(130);
  });
}

const plans = plan(args);
console.log(
  `power-loss suite${args.killOnly ? ' (--kill-only: SIGKILL, no power cut)' : ''}: ${args.cuts} cuts, modes ${args.modes.map(modeName).join(',')}, workloads ${args.workloads.join(',')}, seed ${args.seed}`,
);
console.log(`replay: npm run test:power -- ${replayArgs(args)}`);
const results: CutResult[] = [];
const states = new Map<string, ModeState>();
const began = Date.now();
try {
  for (const p of plans) {
    const name = modeName(p.fsync);
    const state = states.get(name) ?? { dir: undefined, model: newModel(), dirs: 0, chunkSize: p.chunkSize };
    states.set(name, state);
    const result = await runCut(mount, base, p, state);
    results.push(result);
    console.log(cutLine(result));
    for (const line of details(result, args.verbose)) console.log(line);
  }
} finally {
  cleanUp();
}
for (const line of summary(results)) console.log(line);
const failed = results.filter((r) => r.failed).length;
console.log(`seed ${args.seed}, ${((Date.now() - began) / 1000).toFixed(0)} s`);
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
