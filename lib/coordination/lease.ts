// Consumer leases: how the processes sharing a directory tell a live consumer
// from a dead one, so that items handed to a dead one are handed out again.
// Each consumer owns `consumers/<id>` while it lives:
// - 'flock': it holds an exclusive flock on the file. The kernel drops it when
//   the process dies (SIGKILL included), so a probe that can take the flock
//   knows at once that the owner is gone.
// - 'lockfile': it touches the file every staleMs / 4; a lease whose mtime is
//   older than staleMs is dead (flock does not cross hosts on NFS or sshfs).
// Leases are created and probed under the directory lock, so a probe never
// sees a lease between its creation and its flock.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fsExt from 'fs-ext';
import { ioError } from '../errors.js';
import { fsyncDirectory } from '../fs/dirsync.js';
import { closeQuietly, fileSize, openIfThere } from '../fs/files.js';
import type { LockingMode } from './lock.js';

export const CONSUMERS_DIR = 'consumers';
/**
 * An empty file kept in consumers/ to become the next lease by a hard link:
 * on a file system out of inodes a new consumer could not otherwise register,
 * and registering is what a get needs before it can free any space. A lease
 * that ends goes back to being the reserve when there is none.
 */
export const RESERVE_LEASE = 'reserve';

/** Makes consumers/ and its reserve lease (a new queue; best effort: without them leases are created). */
export function prepareLeases(dir: string, durable: boolean): void {
  const folder = path.join(dir, CONSUMERS_DIR);
  try {
    fs.mkdirSync(folder, { recursive: true });
    fs.closeSync(fs.openSync(path.join(folder, RESERVE_LEASE), 'wx'));
    if (durable) fsyncDirectory(folder);
  } catch {
    // Leases are then created when needed, as before.
  }
}

export function leasePath(dir: string, id: number): string {
  return path.join(dir, CONSUMERS_DIR, String(id));
}

export class Lease {
  readonly id: number;
  readonly file: string;
  #fd: number;
  #timer: NodeJS.Timeout | undefined;

  private constructor(id: number, file: string, fd: number, timer: NodeJS.Timeout | undefined) {
    this.id = id;
    this.file = file;
    this.#fd = fd;
    this.#timer = timer;
  }

  /**
   * Creates and takes lease `id`, which must not exist yet (the caller holds
   * the directory lock). `durable`: the new names (consumers/ and the lease)
   * are fsync'd into their directories before the lease is used.
   */
  static take(dir: string, id: number, mode: LockingMode, staleMs: number, durable: boolean): Lease {
    const file = leasePath(dir, id);
    let fd: number;
    try {
      const madeDir = fs.mkdirSync(path.dirname(file), { recursive: true });
      if (durable && madeDir !== undefined) fsyncDirectory(dir);
      fd = fromReserve(file) ?? fs.openSync(file, 'wx');
    } catch (error) {
      throw ioError(dir, 'taking a consumer lease', error, file);
    }
    try {
      if (mode === 'flock') fsExt.flockSync(fd, 'exnb');
      // A new reserve for the next consumer (none on a file system out of inodes: that is what it was for).
      try {
        fs.closeSync(fs.openSync(path.join(path.dirname(file), RESERVE_LEASE), 'wx'));
      } catch {
        // There is one already, or no room: the next consumer creates its lease.
      }
      if (durable) fsyncDirectory(path.dirname(file));
    } catch (error) {
      // Leave nothing behind: no descriptor holding a flock, no lease file.
      closeQuietly(fd);
      fs.rmSync(file, { force: true });
      throw ioError(dir, 'taking a consumer lease', error, file);
    }
    try {
      fs.ftruncateSync(fd, 0);
      fs.writeSync(fd, `${JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() })}\n`, 0);
    } catch {
      // The content is for people only: a full disk must not keep a consumer
      // from taking items, the one thing that frees space.
    }
    let timer: NodeJS.Timeout | undefined;
    if (mode === 'lockfile') {
      timer = setInterval(
        () => {
          try {
            const now = new Date();
            fs.futimesSync(fd, now, now);
          } catch {
            // Missed once; the next touch comes well within the stale time.
          }
        },
        Math.max(10, Math.floor(staleMs / 4)),
      );
      timer.unref();
    }
    return new Lease(id, file, fd, timer);
  }

  /** Gives the lease up: its items must already be returned (the caller holds the directory lock). */
  end(): void {
    clearInterval(this.#timer);
    const reserve = path.join(path.dirname(this.file), RESERVE_LEASE);
    try {
      // Keep the inode as the reserve when there is none (the caller holds the directory lock).
      if (fs.existsSync(reserve)) fs.unlinkSync(this.file);
      else fs.renameSync(this.file, reserve);
    } catch {
      // Already removed by a process that took us for dead.
    }
    closeQuietly(this.#fd);
  }
}

/**
 * Whether `file` is a lease perq wrote: empty (its content could not be
 * written, or a crash came first) or the JSON line it writes. Anything else
 * in consumers/ is someone else's and never removed.
 */
export function isLeaseFile(file: string): boolean {
  const size = fileSize(file);
  if (size === 0) return true;
  if (size < 0 || size > 4096) return false;
  try {
    const lease: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    return typeof lease === 'object' && lease !== null && 'pid' in lease && 'since' in lease;
  } catch {
    return false;
  }
}

/**
 * Makes the reserve lease into `file` by a rename (no new inode; tmpfs
 * charges even a hard link against its inode limit); null when there is no
 * reserve. The caller holds the directory lock and `file` does not exist.
 */
function fromReserve(file: string): number | null {
  try {
    fs.renameSync(path.join(path.dirname(file), RESERVE_LEASE), file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return fs.openSync(file, 'r+');
}

/** Whether consumer `id`'s owner is alive (call under the directory lock). */
export function leaseAlive(dir: string, id: number, mode: LockingMode, staleMs: number): boolean {
  const file = leasePath(dir, id);
  if (mode === 'lockfile') {
    try {
      return fs.statSync(file).mtimeMs >= Date.now() - staleMs;
    } catch {
      return false;
    }
  }
  const fd = openIfThere(file);
  if (fd === null) return false;
  try {
    fsExt.flockSync(fd, 'exnb');
    return false;
  } catch (error) {
    // A file deleted meanwhile (ENOENT, or ESTALE through another mount of a
    // network file system) has no owner left; any other failure is taken as
    // alive, so that a live consumer's items are never handed out twice.
    const code = (error as NodeJS.ErrnoException).code;
    return code !== 'ESTALE' && code !== 'ENOENT';
  } finally {
    closeQuietly(fd);
  }
}

/** Removes a dead consumer's lease file. */
export function removeLease(dir: string, id: number): void {
  fs.rmSync(leasePath(dir, id), { force: true });
}
