// The directory lock that makes a change to the queue's shared files one
// critical section, however many processes use the directory. Held for short
// sections only (see hold.ts), through one of two mechanisms:
// - 'flock': fs-ext flock(2) on the file `lock`. The kernel drops it when its
//   holder dies, even by SIGKILL, so there is never a stale lock. Local file
//   systems only: flock is not shared between the clients of NFS or sshfs.
// - 'lockfile': proper-lockfile's `lock.d` directory (mkdir is atomic on
//   network file systems too). A holder that died leaves it behind; it is
//   taken over once its mtime is older than the stale time. It takes the
//   flock as well, so processes of one host exclude each other whichever mode
//   each chose; processes on different hosts must all use 'lockfile'.

import fs from 'node:fs';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import lockfile from 'proper-lockfile';
import { ioError } from '../errors.js';
import { closeQuietly } from '../fs/files.js';
import { flockBlocking, flockInThreadPool, tryFlock, unflock, type FlockTarget } from './flock.js';

/** `'flock'` (local file systems) or `'lockfile'` (network file systems; see the `locking` option). */
export type LockingMode = 'flock' | 'lockfile';

export const FLOCK_FILE = 'lock';
export const LOCKFILE_DIR = 'lock.d';
/** How long a waiter that cannot block (lockfile mode, or flock in a worker thread) sleeps between attempts. */
const LOCKFILE_RETRY_MS = 1;

export interface DirectoryLock {
  /** Takes the lock if it is free at once. */
  tryAcquire(): boolean;
  /** Takes the lock, blocking the thread until it is free. */
  acquireSync(): void;
  /** Takes the lock, waiting without blocking the event loop. */
  acquire(): Promise<void>;
  release(): void;
  /** Releases (if held) and frees the lock's descriptor for good. */
  close(): void;
}

export function openDirectoryLock(dir: string, mode: LockingMode, staleMs: number): DirectoryLock {
  const flock = new Flock(dir);
  return mode === 'flock' ? flock : new LockDirectory(dir, staleMs, flock);
}

class Flock implements DirectoryLock {
  #target: FlockTarget;
  #fd: number;

  constructor(dir: string) {
    const file = path.join(dir, FLOCK_FILE);
    this.#target = { dir, file, name: 'the lock file' };
    try {
      this.#fd = fs.openSync(file, 'a');
    } catch (error) {
      throw ioError(dir, 'opening the lock file', error, file);
    }
  }

  acquireSync(): void {
    flockBlocking(this.#fd, this.#target);
  }

  tryAcquire(): boolean {
    return tryFlock(this.#fd, this.#target);
  }

  async acquire(): Promise<void> {
    if (!isMainThread) {
      // fs-ext's async flock reports to the main thread's event loop, never
      // to a worker's: a worker polls instead.
      while (!this.tryAcquire()) await new Promise((resolve) => setTimeout(resolve, LOCKFILE_RETRY_MS));
      return;
    }
    // Waits in the thread pool, so the event loop goes on meanwhile.
    return flockInThreadPool(this.#fd, this.#target);
  }

  release(): void {
    unflock(this.#fd, this.#target);
  }

  close(): void {
    closeQuietly(this.#fd); // which also drops the flock
  }
}

class LockDirectory implements DirectoryLock {
  #dir: string;
  #file: string;
  #stale: number;
  #flock: Flock;
  #release: (() => void) | null = null;
  #sleeper = new Int32Array(new SharedArrayBuffer(4));

  constructor(dir: string, staleMs: number, flock: Flock) {
    this.#dir = dir;
    this.#file = path.join(dir, LOCKFILE_DIR);
    this.#stale = staleMs;
    this.#flock = flock;
  }

  tryAcquire(): boolean {
    if (!this.#flock.tryAcquire()) return false;
    return this.#tryOrUnflock();
  }

  acquireSync(): void {
    for (;;) {
      this.#flock.acquireSync();
      if (this.#tryOrUnflock()) return;
      Atomics.wait(this.#sleeper, 0, 0, LOCKFILE_RETRY_MS);
    }
  }

  async acquire(): Promise<void> {
    for (;;) {
      await this.#flock.acquire();
      if (this.#tryOrUnflock()) return;
      await new Promise((resolve) => setTimeout(resolve, LOCKFILE_RETRY_MS));
    }
  }

  release(): void {
    const release = this.#release;
    this.#release = null;
    try {
      release?.();
    } catch {
      // Taken over after the stale time: nothing of ours is left to remove.
    } finally {
      this.#flock.release();
    }
  }

  close(): void {
    try {
      this.release();
    } finally {
      this.#flock.close();
    }
  }

  /** With the flock held: takes lock.d too, or lets the flock go (another host has the directory). */
  #tryOrUnflock(): boolean {
    let taken = false;
    try {
      taken = this.#try();
    } finally {
      if (!taken) this.#flock.release();
    }
    return taken;
  }

  #try(): boolean {
    if (this.#release !== null) return true;
    try {
      this.#release = lockfile.lockSync(this.#dir, {
        lockfilePath: this.#file,
        realpath: false,
        stale: this.#stale,
        onCompromised: () => {
          // Held past the stale time and taken over; the release will find it gone.
        },
      });
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ELOCKED') return false;
      throw ioError(this.#dir, 'taking the lock directory', error, this.#file);
    }
  }
}
