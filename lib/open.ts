// Finding and locking a queue directory, for Queue.open and Queue.repair:
// the directory made (its new parents synced unless fsync is 'never'), its
// real path (what the holds of one process on one directory share), the
// directory lock, and the store opened or the repair run under it. A refused
// open leaves the directory as it was found.

import fs from 'node:fs';
import path from 'node:path';
import { LockSession } from './coordination/session.js';
import { FLOCK_FILE, openDirectoryLock } from './coordination/lock.js';
import { QueueError, ioError } from './errors.js';
import { fsyncCreatedDirectories } from './fs/dirsync.js';
import { resolveOptions, type QueueOptions, type ResolvedOptions } from './options.js';
import { INFO_FILE } from './store/info.js';
import type { QueueStore } from './store/store.js';
import { openStore } from './store/open-store.js';
import { repairQueue, type RepairReport } from './store/recovery.js';

/** An open queue directory: what a Queue is made of. */
export interface OpenedDirectory {
  /** The directory as the caller named it, made absolute. */
  absolute: string;
  realDir: string;
  resolved: ResolvedOptions;
  store: QueueStore;
  /** The lock session, held (the store was opened under it). */
  hold: LockSession;
}

/** The queue directory a caller passed, as an absolute path. */
function absoluteDir(dir: unknown): string {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new QueueError('ERR_INVALID_ARG', String(dir), 'the queue directory must be a non-empty string');
  }
  return path.resolve(dir);
}

/** The lock session of the directory at `absolute` (real path `realDir`); the lock is opened only by the first queue of this process there. */
function lockSessionFor(absolute: string, realDir: string, resolved: ResolvedOptions): LockSession {
  return new LockSession(realDir, resolved.locking, () => openDirectoryLock(absolute, resolved.locking, resolved.staleAfter));
}

/** Opens the queue in `dir`, creating the directory (recursively) and the queue when absent. */
export function openQueueDirectory(dir: unknown, options?: QueueOptions): OpenedDirectory {
  const absolute = absoluteDir(dir);
  const resolved = resolveOptions(absolute, options);
  let realDir: string;
  try {
    const made = fs.mkdirSync(absolute, { recursive: true });
    if (resolved.fsync !== 'never') fsyncCreatedDirectories(absolute, made);
    realDir = fs.realpathSync(absolute);
  } catch (error) {
    throw ioError(absolute, 'creating the queue directory', error);
  }
  const lockFile = path.join(absolute, FLOCK_FILE);
  const hadLockFile = fs.existsSync(lockFile);
  const hold = lockSessionFor(absolute, realDir, resolved);
  let store: QueueStore;
  try {
    hold.enterSync();
    store = openStore(absolute, resolved);
  } catch (error) {
    hold.close();
    // Refused before a queue of ours was found (someone else's files, or a
    // queue that lost its info): leave the directory as it was found.
    if (!hadLockFile && error instanceof QueueError && (error.code === 'ERR_FORMAT' || !fs.existsSync(path.join(absolute, INFO_FILE)))) {
      fs.rmSync(lockFile, { force: true });
    }
    throw error;
  }
  return { absolute, realDir, resolved, store, hold };
}

/** Runs repairQueue (store/recovery.ts) on `dir` under the directory lock; refuses a directory that holds no queue before making a lock file there. */
export function repairQueueDirectory(dir: unknown, options?: QueueOptions): RepairReport {
  const absolute = absoluteDir(dir);
  const resolved = resolveOptions(absolute, options);
  let realDir: string;
  try {
    realDir = fs.realpathSync(absolute);
  } catch (error) {
    throw ioError(absolute, 'finding the queue directory', error);
  }
  // Checked before the lock file is made: a directory that is no queue is left as it was.
  if (!fs.existsSync(path.join(absolute, INFO_FILE)))
    throw new QueueError('ERR_FORMAT', absolute, 'there is no queue here to repair (no info file)');
  const hold = lockSessionFor(absolute, realDir, resolved);
  try {
    hold.enterSync();
    return repairQueue(absolute, resolved);
  } finally {
    hold.close();
  }
}
