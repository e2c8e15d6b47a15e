// Who may use a queue directory. One lock file per directory, taken through one
// of two mechanisms behind the same interface:
// - 'flock': fs-ext flock(2) on `lock`. The kernel drops it when the holder
//   dies, even by SIGKILL, so there is never a stale lock to clean up. Local
//   file systems only (flock across NFS clients is not reliable).
// - 'lockfile': proper-lockfile's mkdir-based `lock.d` directory, refreshed
//   while held and taken over after its stale time when its holder is gone:
//   the mode for a directory on a network file system.
// Both modes take the flock; 'lockfile' adds the lock directory. For now the
// whole open queue holds the lock exclusively; a second opener gets ERR_LOCKED
// rather than a chance to interleave writes.

import fs from 'node:fs';
import path from 'node:path';
import fsExt from 'fs-ext';
import lockfile from 'proper-lockfile';
import { QueueError, ioError } from './errors.js';
import type { LockingMode } from './options.js';

export const FLOCK_FILE = 'lock';
export const LOCKFILE_DIR = 'lock.d';
/** A 'lockfile' lock not refreshed for this long is considered abandoned. */
const LOCKFILE_STALE_MS = 10_000;
/** Refresh well within the stale time, so a busy event loop does not lose the lock. */
const LOCKFILE_UPDATE_MS = 2_000;

export interface DirectoryLock {
  release(): void;
}

export function acquireDirectoryLock(dir: string, mode: LockingMode): DirectoryLock {
  // Both modes take the flock, so that processes on one host exclude each other
  // whichever mode each chose; 'lockfile' adds the lock directory for other hosts.
  const flock = acquireFlock(dir);
  if (mode === 'flock') {
    try {
      assertNoLockfile(dir);
    } catch (error) {
      flock.release();
      throw error;
    }
    return flock;
  }
  let held: DirectoryLock;
  try {
    held = acquireLockfile(dir);
  } catch (error) {
    flock.release();
    throw error;
  }
  return {
    release() {
      held.release();
      flock.release();
    },
  };
}

function acquireFlock(dir: string): DirectoryLock {
  const file = path.join(dir, FLOCK_FILE);
  let fd: number;
  try {
    fd = fs.openSync(file, 'a');
  } catch (error) {
    throw ioError(dir, 'opening the lock file', error, file);
  }
  try {
    fsExt.flockSync(fd, 'exnb');
  } catch (error) {
    fs.closeSync(fd);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EWOULDBLOCK') throw lockedError(dir, file);
    throw ioError(dir, 'flock of the lock file', error, file);
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      // Closing the descriptor releases the flock.
      fs.closeSync(fd);
    },
  };
}

/** A live 'lockfile' lock (another host, or a process that chose that mode) excludes 'flock' users too. */
function assertNoLockfile(dir: string): void {
  const file = path.join(dir, LOCKFILE_DIR);
  if (!fs.existsSync(file)) return;
  let locked: boolean;
  try {
    locked = lockfile.checkSync(dir, { lockfilePath: file, realpath: false, stale: LOCKFILE_STALE_MS });
  } catch (error) {
    throw ioError(dir, 'checking the lock directory', error, file);
  }
  if (locked) throw lockedError(dir, file);
}

function acquireLockfile(dir: string): DirectoryLock {
  const file = path.join(dir, LOCKFILE_DIR);
  let compromised: Error | undefined;
  let release: () => void;
  try {
    release = lockfile.lockSync(dir, {
      lockfilePath: file,
      realpath: false,
      stale: LOCKFILE_STALE_MS,
      update: LOCKFILE_UPDATE_MS,
      onCompromised: (error) => {
        // Another host took the lock over; our next release must not throw.
        compromised = error;
      },
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') throw lockedError(dir, file);
    throw ioError(dir, 'taking the lock directory', error, file);
  }
  let released = false;
  return {
    release() {
      if (released || compromised !== undefined) return;
      released = true;
      try {
        release();
      } catch {
        // Already released or taken over: nothing of ours is left to free.
      }
    },
  };
}

function lockedError(dir: string, file: string): QueueError {
  return new QueueError('ERR_LOCKED', dir, 'the queue is open in another process or Queue instance; close it there first', { file });
}
