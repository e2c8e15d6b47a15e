// The worker lock: an exclusive flock (fs-ext) on `<dir>/worker.lock`, held
// by the one worker that works on a task queue directory, for as long as it
// works. The kernel drops it when the worker dies, SIGKILL included, so a
// dead worker never keeps the next one out.
//
// A push that finds it free does not let it go for the worker to take: it
// starts the worker with the locked descriptor as one of its stdio slots, so
// the worker holds the lock from its first instruction (a flock belongs to the
// open file, which both processes share until the pusher closes its side).
// No second push can slip into a gap and start a second worker, however many
// pushes a burst makes while the first worker boots.
//
// Only workers (and a push about to start one) may take it: anything else
// holding it, even for a moment, could be taken for a worker by a push, which
// would then start none.
//
// A flock is one host's lock on sshfs and some NFS set-ups: a directory
// shared between hosts ('lockfile' locking) gets at most one worker per host,
// which the queue underneath shares correctly.

import fs from 'node:fs';
import { ioError } from '../errors.js';
import type { TaskPaths } from './layout.js';
import { closeQuietly } from '../fs/files.js';
import { tryFlock, unflock, type FlockTarget } from '../coordination/flock.js';

export class WorkerLock {
  readonly file: string;
  readonly fd: number;
  #target: FlockTarget;
  #closed = false;

  private constructor(dir: string, file: string, fd: number) {
    this.file = file;
    this.fd = fd;
    this.#target = { dir, file, name: 'the worker lock' };
  }

  /** Opens the lock file (creating it), without taking the lock. */
  static open(paths: TaskPaths): WorkerLock {
    let fd: number;
    try {
      fd = fs.openSync(paths.workerLock, 'a');
    } catch (error) {
      throw ioError(paths.dir, 'opening the worker lock', error, paths.workerLock);
    }
    return new WorkerLock(paths.dir, paths.workerLock, fd);
  }

  /** The lock a pusher handed over as descriptor `fd` (held already). */
  static inherited(paths: TaskPaths, fd: number): WorkerLock {
    return new WorkerLock(paths.dir, paths.workerLock, fd);
  }

  /** Takes the lock if it is free at once (true also when this descriptor holds it). */
  tryAcquire(): boolean {
    return tryFlock(this.fd, this.#target);
  }

  release(): void {
    unflock(this.fd, this.#target);
  }

  /** Closes this descriptor. The lock is dropped with it unless another process shares the open file (a hand-over). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.fd);
  }
}
