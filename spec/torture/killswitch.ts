// Where a torture worker dies: the kill switch arms at the start of an
// operation of the target kind and kills the process with SIGKILL inside it.
//
// - 'syscall': every fs call (and flock) made while a target operation runs is
//   counted; at call number `at` (counted over the armed target operations)
//   the process kills itself, just before that call or just after it returned.
//   Deterministic for a seed.
// - 'thread': a watchdog thread, told when a target operation starts, spins
//   `at` microseconds and kills the process if that operation is still running
//   (else it waits for the next one, with the next delay).
// - 'parent': the worker tells its parent "about to call X" and goes on; the
//   parent kills it 0..2 ms later.
// In every mode the first `skip` target operations run unharmed.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Journal } from './journal.js';
import type { Random } from './random.js';

export type OpName = 'open' | 'put' | 'putMany' | 'get' | 'getMany' | 'taskDone' | 'ack' | 'clear' | 'close';
export const OPS: readonly OpName[] = ['open', 'put', 'putMany', 'get', 'getMany', 'taskDone', 'ack', 'clear', 'close'];
export type KillMode = 'syscall' | 'thread' | 'parent';
export const KILL_MODES: readonly KillMode[] = ['syscall', 'thread', 'parent'];

export interface KillPlan {
  mode: KillMode;
  target: OpName;
  /** Target operations to let run unharmed first. */
  skip: number;
  /** syscall: which call (0-based) kills; thread: the largest delay in microseconds. */
  at: number;
  /** syscall: kill just after the call returned instead of just before it. */
  after: boolean;
}

export function randomPlan(r: Random, target: OpName, mode: KillMode = r.pick(KILL_MODES)): KillPlan {
  return {
    mode,
    target,
    skip: target === 'open' || target === 'close' || target === 'clear' ? r.int(3) : r.int(25),
    at: mode === 'syscall' ? r.int(40) : mode === 'thread' ? 20 + r.int(600) : 0,
    after: r.chance(0.5),
  };
}

export class KillSwitch {
  #plan: KillPlan;
  #journal: Journal;
  #random: Random;
  #seen = 0;
  #inTarget = 0;
  #calls = 0;
  #armed = false;
  #shared: Int32Array | null = null;
  #worker: Worker | null = null;
  #told = false;

  constructor(plan: KillPlan, journal: Journal, random: Random) {
    this.#plan = plan;
    this.#journal = journal;
    this.#random = random;
    if (plan.mode === 'syscall') this.#wrapFs();
    if (plan.mode === 'thread') {
      // [0] a target operation is running, [1] delay in us, [2] arm count (the thread waits on it)
      this.#shared = new Int32Array(new SharedArrayBuffer(12));
      const here = path.dirname(fileURLToPath(import.meta.url));
      this.#worker = new Worker(path.join(here, 'watchdog.js'), { workerData: { shared: this.#shared, fd: journal.fd } });
      this.#worker.unref();
    }
  }

  /** Runs `fn` as an operation of kind `op`. */
  async run<R>(op: OpName, fn: () => Promise<R>): Promise<R> {
    if (op !== this.#plan.target) return fn();
    if (this.#seen++ < this.#plan.skip) return fn();
    this.#armed = true;
    this.#inTarget++;
    if (this.#plan.mode === 'thread') this.#armThread();
    if (this.#plan.mode === 'parent' && !this.#told) {
      this.#told = true;
      process.send?.({ about: op });
    }
    try {
      return await fn();
    } finally {
      this.#inTarget--;
      if (this.#shared !== null) Atomics.store(this.#shared, 0, 0);
    }
  }

  /** Kills the process now (used when the run went on too long without a kill). */
  die(why: string): never {
    this.#journal.write('K', why);
    process.kill(process.pid, 'SIGKILL');
    throw new Error('unreachable');
  }

  #armThread(): void {
    const shared = this.#shared!;
    Atomics.store(shared, 0, 1);
    Atomics.store(shared, 1, this.#random.int(this.#plan.at + 1));
    Atomics.add(shared, 2, 1);
    Atomics.notify(shared, 2);
  }

  #tick(name: string): void {
    if (!this.#armed || this.#inTarget === 0) return;
    if (this.#calls++ === this.#plan.at) this.die(`${this.#plan.target} ${this.#plan.after ? 'after' : 'before'} ${name}`);
  }

  #wrapFs(): void {
    const wrap = (target: Record<string, unknown>, name: string): void => {
      const original = target[name];
      if (typeof original !== 'function') return;
      const tickBefore = (): void => {
        if (!this.#plan.after) this.#tick(name);
      };
      const tickAfter = (): void => {
        if (this.#plan.after) this.#tick(name);
      };
      // A function, not an arrow: the fs call keeps the `this` it was called with.
      target[name] = function (this: unknown, ...args: unknown[]) {
        tickBefore();
        const result = (original as (...a: unknown[]) => unknown).apply(this, args);
        tickAfter();
        return result;
      };
    };
    const fsObject = fs as unknown as Record<string, unknown>;
    for (const name of Object.keys(fsObject)) {
      if (name.endsWith('Sync') && !name.startsWith('watch')) wrap(fsObject, name);
    }
    for (const name of ['fsync', 'fdatasync']) wrap(fsObject, name);
    const require = createRequire(import.meta.url);
    const fsExt = require('fs-ext') as Record<string, unknown>;
    wrap(fsExt, 'flock');
    wrap(fsExt, 'flockSync');
  }
}
