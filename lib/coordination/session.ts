// Holding the directory lock across several operations. Taking the lock and
// re-reading the shared state for every put would cost several system calls
// per item, so a process keeps the lock once it has it until the event loop
// turns (or MAX_HOLD_MS pass; LOCKFILE_MAX_HOLD_MS under 'lockfile') and
// publishes its changes then: a loop of awaited puts pays for the lock about
// once per turn, while other processes wait at most a few milliseconds. Items
// reach the chunk files at once; a holder that dies before publishing leaves
// the state marked dirty, and the next holder adopts what it wrote (see
// store.ts).
//
// Queues of one process on one directory share one kernel lock (one
// descriptor): taking it twice from one thread would deadlock, so they hand
// it over among themselves instead, each publishing before the next refreshes.

import { QueueError } from '../errors.js';
import type { DirectoryLock } from './lock.js';
import type { LockingMode } from './lock.js';

/** The longest a process keeps the lock while others may be waiting for it. */
export const MAX_HOLD_MS = 5;
/**
 * The same under locking 'lockfile', where taking the lock costs more: a
 * mkdir and an rmdir of lock.d besides the flock (~2.6 ms on the ext4 this was
 * measured on, a round trip each on NFS). Holding longer pays for them with
 * more work per take: 4 producers and 4 consumers went from ~45,000 to
 * ~55,000 items/s. Processes of such a directory mostly find work by polling,
 * where 20 ms more is little.
 */
export const LOCKFILE_MAX_HOLD_MS = 20;

export interface HoldHooks {
  /** Just acquired: bring the cached shared state up to date. */
  acquired(): void;
  /** About to release: publish what changed. */
  releasing(): void;
  /** Released: tell other processes what changed. */
  released(): void;
}

export interface RunOptions {
  /**
   * The call finishes work this process started under the lock (taskDone
   * after a get): it runs in the current hold even past MAX_HOLD_MS, rather
   * than stepping aside with the work half done. A consumer that let go
   * between its get and its taskDone would leave an item out, and every other
   * consumer's acknowledgement above it would have to be published on its
   * own.
   */
  finishing?: boolean;
}

const NO_HOOKS: HoldHooks = { acquired() {}, releasing() {}, released() {} };

/**
 * Whether this process holds a directory's kernel lock, and which of its
 * queues has it: 'free'; 'taken' (held since `since`, handed to no queue yet:
 * just acquired, or between two queues); 'owned' by `owner`, which publishes
 * before it lets go.
 */
type KernelLockState =
  | { readonly kind: 'free' }
  | { readonly kind: 'taken'; readonly since: number }
  | { readonly kind: 'owned'; readonly since: number; readonly owner: LockSession };

const FREE: KernelLockState = { kind: 'free' };

/** The kernel lock of one directory in this process, and which of its queues has it. */
class SharedLock {
  readonly lock: DirectoryLock;
  readonly mode: LockingMode;
  readonly maxHoldMs: number;
  state: KernelLockState = FREE;
  /** A wait in the kernel the queues of this process share (a sync call may take the lock meanwhile). */
  acquiring: Promise<void> | null = null;
  /** Set while this process steps aside after holding too long; calls wait for it in order. */
  yielding: Promise<void> | null = null;
  releaseScheduled = false;
  holds = new Set<LockSession>();

  constructor(lock: DirectoryLock, mode: LockingMode) {
    this.lock = lock;
    this.mode = mode;
    this.maxHoldMs = mode === 'lockfile' ? LOCKFILE_MAX_HOLD_MS : MAX_HOLD_MS;
  }
}

const sharedByDir = new Map<string, SharedLock>();

export class LockSession {
  #dir: string;
  #shared: SharedLock;
  #hooks: HoldHooks = NO_HOOKS;
  #closed = false;

  /** `openLock` is called only when no other queue of this process has `dir` open. */
  constructor(dir: string, mode: LockingMode, openLock: () => DirectoryLock) {
    this.#dir = dir;
    let shared = sharedByDir.get(dir);
    if (shared === undefined) sharedByDir.set(dir, (shared = new SharedLock(openLock(), mode)));
    else if (shared.mode !== mode) {
      throw new QueueError('ERR_INVALID_ARG', dir, `this process already has the queue open with locking '${shared.mode}', not '${mode}'`);
    }
    shared.holds.add(this);
    this.#shared = shared;
  }

  /** What to do around each holding (set once the queue's store is open). */
  useHooks(hooks: HoldHooks): void {
    this.#hooks = hooks;
  }

  get held(): boolean {
    return ownerOf(this.#shared) === this;
  }

  /** Makes sure the lock is held, blocking the thread while another process has it. */
  enterSync(): void {
    const shared = this.#shared;
    this.#assertOpen();
    if (this.held && !overdue(shared)) return;
    if (overdue(shared)) releaseShared(shared);
    if (shared.state.kind === 'free') {
      shared.lock.acquireSync();
      this.#kernelAcquired();
    }
    this.#takeOver();
  }

  /**
   * Runs `fn` with the lock held, waiting for it without blocking the event
   * loop. The hand-over from a sibling queue and `fn` run in one synchronous
   * step, so two queues of this process cannot take it from each other in turn.
   */
  async run<R>(fn: () => R, options: RunOptions = {}): Promise<R> {
    const shared = this.#shared;
    this.#assertOpen();
    if (options.finishing === true && shared.yielding === null && shared.state.kind !== 'free') {
      this.#takeOver();
      return fn();
    }
    if (shared.yielding === null && overdue(shared)) {
      // Held too long: let a waiting process in before taking it again.
      // Later calls wait behind this one, so the order of calls is kept.
      releaseShared(shared);
      shared.yielding = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        shared.yielding = null;
      });
    }
    if (shared.yielding !== null) await shared.yielding;
    for (;;) {
      this.#assertOpen();
      if (shared.state.kind !== 'free') {
        this.#takeOver();
        return fn();
      }
      if (shared.acquiring === null) {
        if (shared.lock.tryAcquire()) {
          this.#kernelAcquired();
          continue;
        }
        // The queues of this process share one wait in the kernel.
        shared.acquiring = shared.lock.acquire().then(
          () => {
            shared.acquiring = null;
            // A sync call may have taken and released it meanwhile: confirm
            // (a no-op for the lock we hold, a fresh try if it was let go).
            if (shared.state.kind === 'free' && shared.lock.tryAcquire()) this.#kernelAcquired();
          },
          (error: unknown) => {
            shared.acquiring = null;
            throw error;
          },
        );
      }
      await shared.acquiring;
    }
  }

  /** Publishes and releases the kernel lock, if this queue has it. */
  release(): void {
    const shared = this.#shared;
    if (!this.held) return;
    try {
      this.#hooks.releasing();
    } finally {
      dropKernelLock(shared);
    }
    this.#hooks.released();
  }

  /** Releases for good (the queue is closing); the last queue of the directory frees the lock. */
  close(): void {
    const shared = this.#shared;
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.release();
    } finally {
      shared.holds.delete(this);
      if (shared.holds.size === 0) {
        if (sharedByDir.get(this.#dir) === shared) sharedByDir.delete(this.#dir);
        if (shared.state.kind !== 'free') dropKernelLock(shared);
        // A wait still in the thread pool uses the descriptor: close after it ends.
        if (shared.acquiring === null) shared.lock.close();
        else shared.acquiring.finally(() => shared.lock.close()).catch(() => undefined);
      }
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new QueueError('ERR_QUEUE_CLOSED', this.#dir, 'the queue is closed');
  }

  /** Hands the held kernel lock to this queue: the previous owner publishes, this one refreshes. */
  #takeOver(): void {
    const shared = this.#shared;
    if (shared.state.kind === 'free') throw new Error('perq: a queue took over a lock its process does not hold');
    const { since } = shared.state;
    const previous = ownerOf(shared);
    if (previous === this) return;
    if (previous !== null) {
      try {
        previous.#hooks.releasing();
      } finally {
        shared.state = { kind: 'taken', since };
      }
      previous.#hooks.released();
    }
    shared.state = { kind: 'owned', since, owner: this };
    try {
      this.#hooks.acquired();
    } catch (error) {
      // Could not read the shared state: let go, so the next try starts afresh.
      dropKernelLock(shared);
      throw error;
    }
  }

  #kernelAcquired(): void {
    const shared = this.#shared;
    shared.state = { kind: 'taken', since: performance.now() };
    if (shared.releaseScheduled) return;
    shared.releaseScheduled = true;
    setImmediate(() => {
      shared.releaseScheduled = false;
      try {
        releaseShared(shared);
      } catch (error) {
        // Nobody awaits this release: report, and the next holder recovers.
        process.emitWarning(`perq queue ${this.#dir}: publishing the shared state failed: ${(error as Error)?.message ?? String(error)}`, {
          code: 'PERQ_PUBLISH_FAILED',
        });
      }
    });
  }
}

/** The queue of this process that has the lock; null when none has (or the process does not hold it). */
function ownerOf(shared: SharedLock): LockSession | null {
  return shared.state.kind === 'owned' ? shared.state.owner : null;
}

/** Held for longer than a hold may last. */
function overdue(shared: SharedLock): boolean {
  return shared.state.kind !== 'free' && performance.now() - shared.state.since > shared.maxHoldMs;
}

/** Releases the kernel lock, the owning queue publishing first. */
function releaseShared(shared: SharedLock): void {
  const owner = ownerOf(shared);
  if (owner !== null) owner.release();
  else if (shared.state.kind !== 'free') dropKernelLock(shared);
}

/** Lets the kernel lock go, with no publishing. */
function dropKernelLock(shared: SharedLock): void {
  shared.state = FREE;
  shared.lock.release();
}

/** Publishes what the queues of this process changed in `dir` and releases its lock, so a lock-free read sees it. */
export function releaseHoldsOn(dir: string): void {
  const shared = sharedByDir.get(dir);
  if (shared !== undefined) releaseShared(shared);
}
