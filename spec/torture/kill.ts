// SIGKILL at random moments inside open, put, putMany, get, getMany,
// taskDone(n), clear and close: with one process (each kill followed by a
// fresh process that lists the queue, then works on, until it too is killed),
// and with 2 producers + 2 consumers (each killed process restarted at once,
// the survivors working on). Every run ends with a final drain in a fresh
// process; the journals are then checked (check.ts).

import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { QueueOptions } from '../../lib/index.js';
import type { WorkerConfig } from '../fixtures/torture-worker.js';
import { checkJournals, type Counts, type ProcessRecord, type Violation } from './check.js';
import { ID_SPACE } from './items.js';
import { now, readJournal, type JournalLine } from './journal.js';
import { KILL_MODES, OPS, randomPlan, type KillPlan, type OpName } from './killswitch.js';
import { random, type Random } from './random.js';
import type { CaseResult } from './report.js';
import { running } from '../helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const WORKER = path.join(here, '..', 'fixtures', 'torture-worker.js');
/** A worker not dead by then is killed from outside (and the run says so). */
const WORKER_TIMEOUT_MS = 20_000;

export interface KillOutcome {
  record: ProcessRecord;
  /** How it ended: 'killed' (as planned), 'stopped', or what went wrong. */
  how: string;
  stderr: string;
}

interface RunningWorker {
  child: ChildProcess;
  done: Promise<KillOutcome>;
}

interface Booting {
  child: ChildProcess;
  stderr: { text: string };
  ready: Promise<boolean>;
}

/**
 * Worker processes booted ahead of need (node and perq take a few hundred ms
 * to load): a kill is followed at once by a fresh process, and booting
 * overlaps the previous worker's run.
 */
export class WorkerPool {
  #spares: Booting[] = [];
  #size: number;
  #closed = false;

  constructor(size: number) {
    this.#size = size;
  }

  take(): Booting {
    if (this.#closed) throw new Error('the worker pool is closed');
    const booting = this.#spares.shift() ?? this.#boot();
    while (this.#spares.length < this.#size) this.#spares.push(this.#boot());
    return booting;
  }

  close(): void {
    this.#closed = true;
    for (const spare of this.#spares.splice(0)) spare.child.kill('SIGKILL');
  }

  #boot(): Booting {
    const child = fork(WORKER, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const stderr = { text: '' };
    child.stderr?.on('data', (data: Buffer) => {
      if (stderr.text.length < 4000) stderr.text += data.toString();
    });
    child.on('error', () => {});
    const ready = new Promise<boolean>((resolve) => {
      child.on('message', (message: { booted?: boolean }) => {
        if (message.booted === true) resolve(true);
      });
      child.on('exit', () => resolve(false));
    });
    return { child, stderr, ready };
  }
}

function startWorker(pool: WorkerPool, config: WorkerConfig, name: string, round: number, r: Random): RunningWorker {
  const { child, stderr, ready } = pool.take();
  let killSent = Infinity;
  let timedOut = false;
  const killNow = (): void => {
    if (running(child)) {
      killSent = Math.min(killSent, now());
      child.kill('SIGKILL');
    }
  };
  child.on('message', (message: { about?: OpName }) => {
    if (message.about !== undefined) setTimeout(killNow, r.float() * 2);
  });
  const timer = setTimeout(() => {
    timedOut = true;
    killNow();
  }, WORKER_TIMEOUT_MS);
  const done = new Promise<KillOutcome>((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const seen = now();
      const lines = readJournal(config.journal);
      const selfKill = lines.findLast((line: JournalLine) => line.code === 'K');
      const end = Math.min(seen, killSent, selfKill?.time ?? Infinity);
      let how: string;
      if (timedOut) how = `timed out after ${WORKER_TIMEOUT_MS} ms`;
      else if (signal === 'SIGKILL') how = 'killed';
      else if (code === 0) how = 'stopped';
      else how = `exited with ${code ?? signal}`;
      resolve({ record: { name, lines, end, round }, how, stderr: stderr.text });
    });
  });
  void ready.then((booted) => {
    if (booted) child.send({ config }, () => {});
  });
  return { child, done };
}

function maxIntended(lines: readonly JournalLine[], fallback: number): number {
  let next = fallback;
  for (const line of lines) {
    if (line.code === 'p') next = Math.max(next, Number(line.args[0]) + 1);
    if (line.code === 'm') next = Math.max(next, Number(line.args[1]) + 1);
  }
  return next;
}

function queueOptions(r: Random, multi: boolean): QueueOptions {
  const options: QueueOptions = {
    chunkSize: r.pick([1, 3, 5, 7, 16, 64, 100]),
    fsync: r.pick(['never', 'never', 'never', 'always', 5] as const),
    serializer: r.pick(['cbor', 'cbor', 'json', 'msgpack'] as const),
  };
  if (multi) options.pollInterval = 10;
  else if (r.chance(0.2)) options.autosave = true;
  return options;
}

function describeOptions(options: QueueOptions): string {
  return `chunkSize ${options.chunkSize}, fsync ${options.fsync}, ${typeof options.serializer === 'string' ? options.serializer : (options.serializer?.name ?? 'json')}${options.autosave === true ? ', autosave' : ''}`;
}

function unexpectedEnd(outcome: KillOutcome): string | null {
  if (outcome.how === 'killed' || outcome.how === 'stopped') return null;
  const error = outcome.record.lines.find((line) => line.code === 'e');
  if (error !== undefined) return null; // the journal says what failed; the check counts it
  // What it did last says where it stalled (a worker that timed out prints nothing itself).
  const last = outcome.record.lines
    .slice(-4)
    .map((line) => `${line.code} ${line.text}`.trim())
    .join(' | ');
  const journal =
    last === ''
      ? ''
      : `; its journal ends: ${last} (at ${outcome.record.lines.at(-1)?.time.toFixed(0)} ms, ended ${outcome.record.end.toFixed(0)} ms)`;
  return `${outcome.record.name} ${outcome.how}${journal}${outcome.stderr === '' ? '' : `: ${outcome.stderr.trim().slice(0, 600)}`}`;
}

async function finalDrain(
  pool: WorkerPool,
  dir: string,
  root: string,
  options: QueueOptions,
  round: number,
  r: Random,
): Promise<KillOutcome> {
  const config: WorkerConfig = {
    role: 'drain',
    dir,
    journal: path.join(root, 'drain.journal'),
    seed: r.seed(),
    options,
    verify: false,
    plan: null,
    firstId: 0,
    maxOps: 0,
  };
  return startWorker(pool, config, 'final drain', round, r).done;
}

function casesFrom(
  label: string,
  rounds: Array<{ name: string; plan: KillPlan | null }>,
  violations: Violation[],
  extra: string[],
  seedText: string,
  counts: Counts,
  perRound: boolean,
): CaseResult[] {
  if (!perRound) {
    const failed = violations.length > 0 || extra.length > 0;
    return [
      {
        name: label,
        passed: !failed,
        counts,
        kills: rounds.length,
        seed: seedText,
        details: [...extra, ...violations.map((v) => `${v.kind}: ${v.text}`)].slice(0, 30),
      },
    ];
  }
  return rounds.map((round, k) => {
    const mine = violations.filter((v) => v.round === k);
    const mineExtra = k === rounds.length - 1 ? extra : [];
    const roundCounts = { lost: 0, phantom: 0, wrong: 0, duplicate: 0, ackedAgain: 0, order: 0, errors: 0 };
    for (const v of mine) roundCounts[v.kind]++;
    if (k === rounds.length - 1) {
      // Counts past the first 20 losses are in the totals only: charge them to the last round.
      const listed = violations.filter((v) => v.kind === 'lost').length;
      roundCounts.lost += counts.lost - listed;
      roundCounts.errors += mineExtra.length;
    }
    const failed =
      mine.length > 0 ||
      mineExtra.length > 0 ||
      (k === rounds.length - 1 && counts.lost > violations.filter((v) => v.kind === 'lost').length);
    return {
      name: `${label} #${k} (${round.name})`,
      passed: !failed,
      counts: roundCounts,
      kills: 1,
      seed: seedText,
      details: [...mineExtra, ...mine.map((v) => `${v.kind}: ${v.text}`)].slice(0, 20),
    };
  });
}

/**
 * One process at a time: `kills` kills, each inside an operation of kind
 * `target`, on one directory. One case per kill.
 */
export async function singleProcessRun(pool: WorkerPool, seed: number, target: OpName, kills: number, tmp: string): Promise<CaseResult[]> {
  const r = random(seed);
  const root = fs.mkdtempSync(path.join(tmp, `perq-torture-${target}-`));
  const dir = path.join(root, 'q');
  const options = queueOptions(r, false);
  const label = `kill in ${target}, 1 process (seed ${seed}, ${describeOptions(options)})`;
  const records: ProcessRecord[] = [];
  const rounds: Array<{ name: string; plan: KillPlan | null }> = [];
  const extra: string[] = [];
  let nextId = 0;
  try {
    for (let k = 0; k < kills; k++) {
      const plan = randomPlan(r, target, KILL_MODES[k % KILL_MODES.length]);
      const name = `${plan.mode} kill in ${target}${plan.mode === 'syscall' ? ` at call ${plan.at} ${plan.after ? 'after' : 'before'}` : ''}, skip ${plan.skip}`;
      const config: WorkerConfig = {
        role: 'single',
        dir,
        journal: path.join(root, `w${k}.journal`),
        seed: r.seed(),
        options,
        verify: k > 0,
        plan,
        firstId: nextId,
        maxOps: 3000,
      };
      const outcome = await startWorker(pool, config, `worker ${k}`, Math.max(0, k - 1), r).done;
      records.push(outcome.record);
      rounds.push({ name, plan });
      nextId = maxIntended(outcome.record.lines, nextId);
      const problem = unexpectedEnd(outcome);
      if (problem !== null) extra.push(problem);
      if (outcome.how !== 'killed') break; // a worker that failed: the directory is no use for more kills
    }
    const drained = await finalDrain(pool, dir, root, options, rounds.length - 1, r);
    records.push(drained.record);
    const problem = unexpectedEnd(drained);
    if (problem !== null) extra.push(problem);
    const { counts, violations } = checkJournals(records, options.autosave === true);
    counts.errors += extra.length;
    return casesFrom(label, rounds, violations, extra, String(seed), counts, true);
  } finally {
    if (process.env.PERQ_TORTURE_KEEP === undefined) fs.rmSync(root, { recursive: true, force: true });
  }
}

const PRODUCER_TARGETS: readonly OpName[] = ['open', 'put', 'putMany', 'put', 'putMany', 'close'];
const CONSUMER_TARGETS: readonly OpName[] = ['open', 'get', 'getMany', 'taskDone', 'get', 'getMany', 'taskDone', 'ack', 'close'];

/**
 * 2 producers + 2 consumers on one directory; each process is killed inside
 * an operation of its role (at random) and restarted at once, `kills` kills
 * in all; then the survivors close and a fresh process drains. One case.
 */
export async function multiProcessRun(pool: WorkerPool, seed: number, kills: number, tmp: string): Promise<CaseResult[]> {
  const r = random(seed);
  const root = fs.mkdtempSync(path.join(tmp, 'perq-torture-mp-'));
  const dir = path.join(root, 'q');
  const options = queueOptions(r, true);
  const label = `kills in 2 producers + 2 consumers (seed ${seed}, ${describeOptions(options)})`;
  const records: ProcessRecord[] = [];
  const rounds: Array<{ name: string; plan: KillPlan | null }> = [];
  const extra: string[] = [];
  const byTarget = new Map<string, number>();
  const roles = [
    { role: 'producer' as const, tag: 1 },
    { role: 'producer' as const, tag: 2 },
    { role: 'consumer' as const, tag: 0 },
    { role: 'consumer' as const, tag: 0 },
  ];
  const nextId = roles.map((m) => m.tag * ID_SPACE);
  let incarnation = 0;
  let stopping = false;
  const running = new Set<ChildProcess>();
  try {
    // Create the queue first, so that the four first opens race only to open it.
    await finalDrain(pool, dir, root, options, 0, r).then((outcome) => {
      const problem = unexpectedEnd(outcome);
      if (problem !== null) extra.push(problem);
    });
    fs.rmSync(path.join(root, 'drain.journal'), { force: true });
    const member = async (index: number): Promise<void> => {
      while (!stopping) {
        const { role } = roles[index];
        const target = r.pick(role === 'producer' ? PRODUCER_TARGETS : CONSUMER_TARGETS);
        const plan = randomPlan(r, target);
        const n = incarnation++;
        const config: WorkerConfig = {
          role,
          dir,
          journal: path.join(root, `m${index}-${n}.journal`),
          seed: r.seed(),
          options,
          verify: false,
          plan,
          firstId: nextId[index],
          maxOps: 4000,
        };
        const worker = startWorker(pool, config, `${role} ${index} (incarnation ${n}, ${plan.mode} kill in ${target})`, 0, r);
        running.add(worker.child);
        const outcome = await worker.done;
        running.delete(worker.child);
        records.push(outcome.record);
        nextId[index] = maxIntended(outcome.record.lines, nextId[index]);
        const problem = unexpectedEnd(outcome);
        if (problem !== null) extra.push(problem);
        if (outcome.how === 'killed') {
          rounds.push({ name: `${plan.mode} in ${target}`, plan });
          byTarget.set(target, (byTarget.get(target) ?? 0) + 1);
          if (rounds.length >= kills && !stopping) {
            stopping = true;
            for (const child of running) child.send('stop', () => {});
          }
        } else if (outcome.how !== 'stopped') {
          stopping = true;
          for (const child of running) child.send('stop', () => {});
        }
      }
    };
    await Promise.all(roles.map((_, index) => member(index)));
    const drained = await finalDrain(pool, dir, root, options, 0, r);
    records.push(drained.record);
    const problem = unexpectedEnd(drained);
    if (problem !== null) extra.push(problem);
    const { counts, violations } = checkJournals(records);
    counts.errors += extra.length;
    const where = [...byTarget].map(([t, n]) => `${t} ${n}`).join(', ');
    return casesFrom(`${label}: ${rounds.length} kills (${where})`, rounds, violations, extra, String(seed), counts, false);
  } finally {
    for (const child of running) child.kill('SIGKILL');
    if (process.env.PERQ_TORTURE_KEEP === undefined) fs.rmSync(root, { recursive: true, force: true });
  }
}

/** Spreads `kills` over the one-process runs (every operation) and the 2+2 runs. */
export async function killSuite(
  seed: number,
  kills: number,
  tmp: string,
  log: (result: CaseResult) => void,
  parallel = 2,
): Promise<CaseResult[]> {
  const r = random(seed);
  const single = Math.max(OPS.length, Math.round(kills * 0.6));
  const multi = Math.max(0, kills - single);
  const jobs: Array<() => Promise<CaseResult[]>> = [];
  const perOp = Math.floor(single / OPS.length);
  let extraKills = single - perOp * OPS.length;
  // Long one-process runs are split so that a directory never carries more than 40 kills.
  for (const op of OPS) {
    let n = perOp + (extraKills-- > 0 ? 1 : 0);
    while (n > 0) {
      const part = Math.min(n, 40);
      const s = r.seed();
      jobs.push(() => singleProcessRun(pool, s, op, part, tmp));
      n -= part;
    }
  }
  for (let left = multi; left > 0;) {
    const part = Math.min(left, 40);
    const s = r.seed();
    jobs.push(() => multiProcessRun(pool, s, part, tmp));
    left -= part;
  }
  const results: CaseResult[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++];
      for (const result of await job()) {
        results.push(result);
        log(result);
      }
    }
  };
  const pool = new WorkerPool(parallel);
  try {
    await Promise.all(Array.from({ length: parallel }, lane));
  } finally {
    pool.close();
  }
  return results;
}
