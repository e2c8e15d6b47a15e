// Telling perq's files from someone else's by their first bytes: every binary
// file perq writes starts with a 4-byte magic number, so a file of the same
// name that does not is a stranger's, and perq leaves it alone. And telling
// whether a name still leads to the file a process holds open.

import fs from 'node:fs';

/** A read-only descriptor of `file`, or null when it cannot be opened (missing, say). */
export function openIfThere(file: string): number | null {
  try {
    return fs.openSync(file, 'r');
  } catch {
    return null;
  }
}

/** Whether `file` starts with the little-endian u32 `magic` (false when it cannot be read). */
export function startsWithMagic(file: string, magic: number): boolean {
  const fd = openIfThere(file);
  if (fd === null) return false;
  try {
    const head = Buffer.alloc(4);
    return fs.readSync(fd, head, 0, 4, 0) === 4 && head.readUInt32LE(0) === magic;
  } catch {
    return false;
  } finally {
    fs.closeSync(fd);
  }
}

/** The size of `file`, or -1 when it is missing or not a regular file. */
export function fileSize(file: string): number {
  try {
    const stats = fs.statSync(file);
    return stats.isFile() ? stats.size : -1;
  } catch {
    return -1;
  }
}

/** An inode, as fs.Stats and fs.fstatSync give it. */
export interface Inode {
  dev: number;
  ino: number;
}

/**
 * Whether the name `file` leads to `inode` (false when it is missing or
 * cannot be stat'd). Held open, an inode cannot be reused, so a match means
 * the very file the descriptor is on.
 */
export function isFileAt(file: string, inode: Inode): boolean {
  try {
    const current = fs.statSync(file);
    return current.ino === inode.ino && current.dev === inode.dev;
  } catch {
    return false;
  }
}

/** Closes a descriptor whose failing close has nothing left to save. */
export function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // A descriptor that fails to close has nothing left for us to save.
  }
}
