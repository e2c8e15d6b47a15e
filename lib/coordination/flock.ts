// flock(2) through fs-ext on a descriptor perq opened, with perq's errors: the
// steps the directory lock and the task queue's worker lock both take.

import fsExt from 'fs-ext';
import { ioError, type QueueError } from '../errors.js';

/** The file a flock is on, for errors: the queue directory, its path, and what people call it ("the lock file"). */
export interface FlockTarget {
  readonly dir: string;
  readonly file: string;
  readonly name: string;
}

/** Takes the exclusive flock on `fd` if it is free at once (true also when this open file holds it already). */
export function tryFlock(fd: number, target: FlockTarget): boolean {
  try {
    fsExt.flockSync(fd, 'exnb');
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return false;
    throw failed(target, 'flock of', error);
  }
}

/** Takes the exclusive flock on `fd`, blocking the thread until it is free. */
export function flockBlocking(fd: number, target: FlockTarget): void {
  try {
    fsExt.flockSync(fd, 'ex');
  } catch (error) {
    throw failed(target, 'flock of', error);
  }
}

/** Takes the exclusive flock on `fd`, waiting in the thread pool (main thread only: fs-ext reports to its event loop). */
export function flockInThreadPool(fd: number, target: FlockTarget): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    fsExt.flock(fd, 'ex', (error) => (error ? reject(failed(target, 'flock of', error)) : resolve()));
  });
}

/** Lets the flock on `fd` go. */
export function unflock(fd: number, target: FlockTarget): void {
  try {
    fsExt.flockSync(fd, 'un');
  } catch (error) {
    throw failed(target, 'unlocking', error);
  }
}

/** ERR_IO for a failed step on the target, e.g. "flock of the lock file". */
function failed(target: FlockTarget, step: string, error: unknown): QueueError {
  return ioError(target.dir, `${step} ${target.name}`, error, target.file);
}
