// Making directory entries durable: a file created, renamed or linked exists
// after a power cut only once its directory is fsync'd (on ext4, XFS and most
// others; fsync of the file itself does not cover its name).

import fs from 'node:fs';
import path from 'node:path';

/** fsyncs directory `dir`: the names created, renamed or removed in it become durable. */
export function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * After `fs.mkdirSync(target, { recursive: true })` returned `made` (the
 * first directory it created, or undefined): fsyncs the parent of every
 * directory it created, so that `target` itself survives a power cut.
 */
export function fsyncCreatedDirectories(target: string, made: string | undefined): void {
  if (made === undefined) return;
  const top = path.resolve(made);
  for (let dir = path.resolve(target); ; dir = path.dirname(dir)) {
    fsyncDirectory(path.dirname(dir));
    if (dir === top || path.dirname(dir) === dir) return;
  }
}
