// Spare chunk files: a chunk whose items are all acknowledged is emptied and
// kept under a spare name instead of being deleted, and a writer that needs a
// new chunk takes a spare rather than creating a file. On most file systems
// creating a file costs 10-30 µs and this is not worth doing; on some it is
// the dearest system call a put makes (460 µs to over 1 ms of kernel time on
// the ext4 this was measured on), made under the directory lock that every
// other process waits for, while emptying, linking and unlinking cost ~40 µs
// together. So a writer times the files it creates and takes spares only
// while creating costs more than spareTuning.dearCreateUs; a queue that is drained
// about as fast as it is filled then creates almost no files.
//
// The spares have fixed names (spare-0 ... spare-7): any process can take any
// of them, at most eight exist, and no listing of the directory is needed to
// find them. They are filled from the lowest name up and taken from the
// highest down, so they sit at spare-0 .. spare-(k-1): one look at spare-0
// tells whether there is any, one at spare-7 whether there is room. (Chunks
// deleted outside the lock, after a sync round, can break that order; then
// only a spare is missed or a chunk deleted instead of kept.)
//
// A spare becomes a chunk by a hard link (which, unlike a rename, refuses to
// replace an existing chunk) and the unlink of its spare name. A crash between
// the two leaves the spare name on a chunk in use: the next claim sees a
// second link or data in it and lets it go, so no chunk is ever written
// through two names.

import fs from 'node:fs';
import path from 'node:path';

/**
 * Enough to carry drained chunks over to producers across a few lock holds:
 * consumers and producers take the lock in runs, so chunks are freed and
 * needed in bursts. With 4 spares, 4 producers and 4 consumers on one
 * directory found a spare for ~30 % of their new chunks; with 8, ~50 %; with
 * 16, ~60 %.
 */
const SPARE_COUNT = 8;
/**
 * Creating a file costs more than `dearCreateUs` (a running average): take
 * spares instead. Exported so that specs can make every file system look
 * dear (0) or cheap (Infinity).
 */
export const spareTuning = { dearCreateUs: 60 };
/** Weight of the newest creation in the running average. */
const AVERAGE_WEIGHT = 0.25;
const US_PER_MS = 1000;

export const SPARE_FILES: readonly string[] = Array.from({ length: SPARE_COUNT }, (_, i) => `spare-${i}`);

export class SpareChunks {
  #dir: string;
  #paths: string[];
  /** Off once the file system refuses hard links: chunks are then created and deleted. */
  #enabled = true;
  /** Running average of this writer's file creations, µs; taken as dear until measured. */
  #createUs = Number.POSITIVE_INFINITY;

  constructor(dir: string) {
    this.#dir = dir;
    this.#paths = SPARE_FILES.map((name) => path.join(dir, name));
  }

  /**
   * Under the lock: creates the chunk file `file` (which must not exist) and
   * returns its descriptor, opened for appending; from a spare when creating
   * files is dear here and one is there. An existing `file` is an EEXIST error.
   */
  open(file: string): number {
    if (this.#enabled && this.#createUs > spareTuning.dearCreateUs) {
      const fd = this.#claim(file);
      if (fd !== null) return fd;
    }
    const start = performance.now();
    const fd = fs.openSync(file, 'ax');
    const us = (performance.now() - start) * US_PER_MS;
    this.#createUs = Number.isFinite(this.#createUs) ? this.#createUs + (us - this.#createUs) * AVERAGE_WEIGHT : us;
    return fd;
  }

  /**
   * Deletes an acknowledged chunk file, keeping it as a spare when a spare
   * name is free. Emptied first, so a spare never holds data.
   */
  recycle(file: string): void {
    if (this.#enabled && !fs.existsSync(this.#paths[SPARE_COUNT - 1])) {
      try {
        fs.truncateSync(file, 0);
        for (const spare of this.#paths) {
          if (!this.#enabled || (!fs.existsSync(spare) && this.#linkAsSpare(file, spare))) break;
        }
      } catch {
        // Not kept as a spare; deleted below all the same.
      }
    }
    fs.unlinkSync(file);
  }

  /** Makes the highest spare into `file`; null when there is none. */
  #claim(file: string): number | null {
    if (!fs.existsSync(this.#paths[0])) return null;
    for (let slot = SPARE_COUNT - 1; slot >= 0; slot--) {
      const spare = this.#paths[slot];
      if (slot > 0 && !fs.existsSync(spare)) continue;
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
