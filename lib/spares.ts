// Spare chunk files: a chunk whose items are all acknowledged is emptied and
// kept under a spare name instead of being deleted, and a writer that needs a
// new chunk takes a spare rather than creating a file. Creating a file is the
// dearest system call a put makes (50 µs to over 1 ms of kernel time on the
// ext4 this was measured on), and it is made under the directory lock that
// every other process waits for; emptying, linking and unlinking cost ~40 µs
// together. A queue that is drained about as fast as it is filled then
// creates almost no files.
//
// The spares have fixed names (spare-0 ... spare-7): any process can take any
// of them, at most eight exist, and no listing of the directory is needed to
// find them. A spare becomes a chunk by a hard link (which, unlike a rename,
// refuses to replace an existing chunk) and the unlink of its spare name. A
// crash between the two leaves the spare name on a chunk in use: the next
// claim sees a second link or data in it and lets it go, so no chunk is ever
// written through two names.

import fs from 'node:fs';
import path from 'node:path';

/**
 * Enough to carry drained chunks over to producers across a few lock holds:
 * consumers and producers take the lock in runs, so chunks are freed and
 * needed in bursts. With 4 spares, 4 producers and 4 consumers on one
 * directory found a spare for ~30 % of their new chunks; with 8, ~50 %; with
 * 16, ~60 %. A miss costs a file creation; a spare name taken or absent costs
 * a failed link (a few µs).
 */
const SPARE_COUNT = 8;

export const SPARE_FILES: readonly string[] = Array.from({ length: SPARE_COUNT }, (_, i) => `spare-${i}`);

export class SpareChunks {
  #dir: string;
  /** Off once the file system refuses hard links: chunks are then created and deleted. */
  #enabled = true;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /**
   * Under the lock: makes a spare into the chunk file `file` and returns its
   * descriptor, opened for appending; null when no spare is there. An
   * existing `file` is an EEXIST error, as creating it would be.
   */
  claim(file: string): number | null {
    if (!this.#enabled) return null;
    for (const name of SPARE_FILES) {
      const spare = path.join(this.#dir, name);
      try {
        fs.linkSync(spare, file);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') continue;
        if (code === 'EEXIST') throw error;
        this.#enabled = false;
        return null;
      }
      try {
        fs.unlinkSync(spare);
      } catch {
        // The check below finds the second name and gives this spare up.
      }
      const fd = fs.openSync(file, 'a');
      const { nlink, size } = fs.fstatSync(fd);
      if (nlink === 1 && size === 0) return fd;
      // Left linked to a chunk by a crash mid-claim: drop only the new name.
      fs.closeSync(fd);
      fs.unlinkSync(file);
    }
    return null;
  }

  /**
   * Deletes an acknowledged chunk file, keeping it as a spare when a spare
   * name is free. Emptied first, so a spare never holds data.
   */
  recycle(file: string): void {
    if (this.#enabled) {
      try {
        fs.truncateSync(file, 0);
        for (const name of SPARE_FILES) {
          if (!this.#enabled || this.#linkAsSpare(file, path.join(this.#dir, name))) break;
        }
      } catch {
        // Not kept as a spare; deleted below all the same.
      }
    }
    fs.unlinkSync(file);
  }

  /** Links `file` as `spare`; false when that name is taken (or links are refused). */
  #linkAsSpare(file: string, spare: string): boolean {
    try {
      fs.linkSync(file, spare);
      return true;
    } catch (error) {
      // Taken, or the chunk was deleted meanwhile; anything else: no hard links here.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ENOENT') this.#enabled = false;
      return false;
    }
  }
}
