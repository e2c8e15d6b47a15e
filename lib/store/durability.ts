// When written data is fsync'd, per the `fsync` option:
// - 'never': never; the OS writes back in its own time (survives a process
//   crash, not a power loss).
// - 'always': every put/taskDone waits for an fdatasync of what it wrote.
//   Group commit: callers that arrive while a sync runs share the next one,
//   so N concurrent producers pay for about one fdatasync per round, not N.
// - N ms: a timer syncs whatever was written at most every N ms; a call that
//   resolves when the last round began N ms ago or more starts one itself, so
//   a timer made late by a busy event loop does not stretch the window.
// Work that is only safe once the cursor is durable (deleting acknowledged
// chunks) waits here too, so a power loss can never leave a cursor that points
// into a chunk already deleted.

import fs from 'node:fs';
import { closeQuietly } from '../fs/files.js';

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const RESOLVED = Promise.resolve();

/** `'never'`, `'always'`, or a period in ms (see the `fsync` option). */
export type FsyncMode = 'never' | 'always' | number;

export class Durability {
  readonly mode: FsyncMode;
  #dirFd: number | undefined;
  #dirty = new Set<number>();
  #dirDirty = false;
  /** Callbacks to run once everything written before them is durable. */
  #afterSync: Array<() => void> = [];
  /** Descriptors to close once no sync round can still be using them. */
  #toClose: number[] = [];
  #running: Promise<void> | null = null;
  #next: Deferred | null = null;
  #timer: NodeJS.Timeout | undefined;
  /** When the last sync round began (performance.now()). */
  #lastRound = performance.now();
  #wrapError: (error: unknown) => Error;

  constructor(mode: FsyncMode, dir: string, wrapError: (error: unknown) => Error) {
    this.mode = mode;
    this.#wrapError = wrapError;
    if (mode === 'never') return;
    this.#dirFd = fs.openSync(dir, 'r');
    if (typeof mode === 'number') {
      this.#timer = setInterval(() => {
        if (this.#running === null && this.#pending())
          this.#startRound().catch(() => {
            // The next round retries; a periodic sync has no caller to tell.
          });
      }, mode);
      this.#timer.unref();
    }
  }

  /** Data was written to `fd`. */
  touch(fd: number): void {
    if (this.mode !== 'never') this.#dirty.add(fd);
  }

  /** A file was created or removed in the directory. */
  touchDirectory(): void {
    if (this.mode !== 'never') this.#dirDirty = true;
  }

  /** Runs `fn` once everything written so far is durable (at once under 'never'). */
  afterDurable(fn: () => void): void {
    if (this.mode === 'never') fn();
    else this.#afterSync.push(fn);
  }

  /** Closes `fd` once no pending sync needs it. */
  release(fd: number): void {
    if (this.mode === 'never' || (!this.#dirty.has(fd) && this.#running === null)) closeQuietly(fd);
    else this.#toClose.push(fd);
  }

  /** Resolves once everything written so far is durable, as the mode asks. */
  settle(): Promise<void> {
    // Under a period, a call does not wait: the timer syncs in its own time,
    // or this call starts the round the timer is late for.
    if (typeof this.mode === 'number') {
      if (this.#running === null && this.#pending() && performance.now() - this.#lastRound >= this.mode) {
        this.#startRound().catch(() => {
          // The next round retries; the call has resolved already.
        });
      }
      return RESOLVED;
    }
    if (this.mode !== 'always') return RESOLVED;
    if (this.#running === null) return this.#startRound();
    // A round is running, but it may have started before our write: join the next.
    this.#next ??= deferred();
    return this.#next.promise;
  }

  /** Like settle, synchronously: for the sync API under 'always'. */
  settleSync(): void {
    if (this.mode !== 'always') return;
    const { fds, dir, after } = this.#take();
    try {
      for (const fd of fds) fs.fdatasyncSync(fd);
      if (dir && this.#dirFd !== undefined) fs.fsyncSync(this.#dirFd);
    } catch (error) {
      throw this.#wrapError(error);
    }
    for (const fn of after) fn();
    if (this.#running === null) this.#closeReleased();
  }

  /** Syncs what is left (unless 'never'), stops the timer and closes the directory. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    try {
      if (this.mode !== 'never') {
        while (this.#running !== null) await this.#running.catch(() => undefined);
        if (this.#pending()) await this.#startRound();
      }
    } finally {
      this.#dirty.clear();
      this.#closeReleased();
      if (this.#dirFd !== undefined) closeQuietly(this.#dirFd);
      this.#dirFd = undefined;
    }
  }

  #pending(): boolean {
    return this.#dirty.size > 0 || this.#dirDirty || this.#afterSync.length > 0 || this.#toClose.length > 0;
  }

  #take(): { fds: number[]; dir: boolean; after: Array<() => void> } {
    const taken = { fds: [...this.#dirty], dir: this.#dirDirty, after: this.#afterSync };
    this.#dirty.clear();
    this.#dirDirty = false;
    this.#afterSync = [];
    return taken;
  }

  #startRound(): Promise<void> {
    this.#lastRound = performance.now();
    const { fds, dir, after } = this.#take();
    const syncs = fds.map((fd) => syncAsync(fd, true));
    if (dir && this.#dirFd !== undefined) syncs.push(syncAsync(this.#dirFd, false));
    const round = Promise.all(syncs).then(
      () => {
        for (const fn of after) fn();
      },
      (error: unknown) => {
        throw this.#wrapError(error);
      },
    );
    this.#running = round.finally(() => {
      this.#running = null;
      this.#closeReleased();
      const next = this.#next;
      this.#next = null;
      if (next !== null) this.#startRound().then(next.resolve, next.reject);
      else if (typeof this.mode === 'number' && this.#pending() && performance.now() - this.#lastRound >= this.mode) {
        // A round that took longer than the period: the next one starts now, not at the next tick.
        this.#startRound().catch(() => undefined);
      }
    });
    // The round's own rejection reaches callers through `round`; the
    // bookkeeping chain must not raise an unhandled rejection of its own.
    this.#running.catch(() => undefined);
    return round;
  }

  /** Closes released descriptors, except those written since the last sync (the next round needs them). */
  #closeReleased(): void {
    const stillDirty: number[] = [];
    for (const fd of this.#toClose) {
      if (this.#dirty.has(fd)) stillDirty.push(fd);
      else closeQuietly(fd);
    }
    this.#toClose = stillDirty;
  }
}

function syncAsync(fd: number, dataOnly: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error: NodeJS.ErrnoException | null): void => (error ? reject(error) : resolve());
    if (dataOnly) fs.fdatasync(fd, done);
    else fs.fsync(fd, done);
  });
}
