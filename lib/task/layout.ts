// The files of a task queue directory. Everything a task queue keeps is under
// its directory:
//   queue/       the perq queue of pending work (envelopes: id, key, work)
//   dead/        the perq queue of dead letters
//   keys/        the index of waiting work (see keys.ts) and its lock
//   attempts/    one file per item being tried (see attempts.ts)
//   worker.lock  the worker lock (worker-lock.ts): held by the one working worker
//   worker.pid   the pid of that worker, while it holds the lock
//   worker.log   the log (see log.ts)

import fs from 'node:fs';
import path from 'node:path';
import { openDirectoryLock, type DirectoryLock } from '../coordination/lock.js';
import { DEFAULT_STALE_AFTER } from '../options.js';
import type { TaskStorageOptions } from './options.js';

export interface TaskPaths {
  dir: string;
  queue: string;
  dead: string;
  keys: string;
  attempts: string;
  workerLock: string;
  pidFile: string;
  logFile: string;
}

export function taskPaths(dir: string): TaskPaths {
  return {
    dir,
    queue: path.join(dir, 'queue'),
    dead: path.join(dir, 'dead'),
    keys: path.join(dir, 'keys'),
    attempts: path.join(dir, 'attempts'),
    workerLock: path.join(dir, 'worker.lock'),
    pidFile: path.join(dir, 'worker.pid'),
    logFile: path.join(dir, 'worker.log'),
  };
}

/** The directory lock of `lockDir` (created if absent), in the storage's locking mode. */
export function openTaskLock(lockDir: string, storage: TaskStorageOptions): DirectoryLock {
  fs.mkdirSync(lockDir, { recursive: true });
  return openDirectoryLock(lockDir, storage.locking ?? 'flock', storage.staleAfter ?? DEFAULT_STALE_AFTER);
}

/** The pid in worker.pid, if there is one (the worker holding the lock, or one killed while it did). */
export function readWorkerPid(paths: TaskPaths): number | undefined {
  try {
    const pid = Number(fs.readFileSync(paths.pidFile, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Records this process as the working worker (it has just taken the worker lock). */
export function writeWorkerPid(paths: TaskPaths): void {
  fs.writeFileSync(paths.pidFile, `${process.pid}\n`);
}

/** Removes worker.pid if it names this process (before the lock is let go). */
export function removeWorkerPid(paths: TaskPaths): void {
  if (readWorkerPid(paths) === process.pid) fs.rmSync(paths.pidFile, { force: true });
}
