// Spare chunk files: a chunk whose items are all acknowledged is emptied and
// kept under a spare name instead of being deleted, and a writer that needs a
// new chunk takes a spare rather than creating a file. On most file systems
// creating a file costs 10-30 µs and this is not worth doing; on some it is
// the dearest system call a put makes, made under the directory lock that
// every other process waits for. On ext4 without a journal (the machine perq
// is measured on) a new file skips every inode freed in the last 60-360 s, so
// each deleted chunk makes later creations dearer: 25 µs in a quiet
// directory, 500 µs to over 1 ms while chunks are deleted as fast as a busy
// queue drains them. Emptying, linking and unlinking cost ~40 µs together and
// free no inode. So a writer times the files it creates and takes spares only
// while creating costs more than spareTuning.takeSparesAboveCreateUs; a queue that is
// drained about as fast as it is filled then creates and deletes almost no
// files.
//
// The spares have fixed names (spare-0 ... spare-63): any process can take any
// of them, and no listing of the directory is needed to find them. They are
// filled from the lowest name up and taken from the highest down, so they sit
// at spare-0 .. spare-(k-1): a bisection over the names finds k in seven looks,
// one look at spare-0 tells whether there is any. (A crash, or chunks deleted
// outside the lock after a sync round, can leave a gap; then only a spare is
// missed until the gap is filled, or a chunk deleted instead of kept.)
//
// A spare becomes a chunk by a hard link (which, unlike a rename, refuses to
// replace an existing chunk) and the unlink of its spare name. A crash between
// the two leaves the spare name on a chunk in use: the next claim sees a
// second link or data in it and lets it go, so no chunk is ever written
// through two names.

import fs from 'node:fs';
import path from 'node:path';
import { NEW_CHUNK_FLAGS } from './chunk.js';

/**
 * Enough to carry drained chunks over to producers across the runs in which
 * consumers and producers take the lock (chunks are freed and needed in
 * bursts): with 8, 4 producers and 4 consumers on one directory found a spare
 * for ~50 % of their new chunks and deleted the rest; with 64, ~86 %. At most
 * this many empty files stay in a drained queue's directory.
 */
const SPARE_COUNT = 64;
/** Looks that may each find another process's claim or recycling in the way. */
const RACE_RETRIES = 3;
/**
 * Creating a file costs more than `takeSparesAboveCreateUs` (a running average): take
 * spares instead. Exported so that specs can make every file system look
 * dear (0) or cheap (Infinity).
 */
export const spareTuning = { takeSparesAboveCreateUs: 60 };
/** Weight of the newest creation in the running average. */
const AVERAGE_WEIGHT = 0.25;
const US_PER_MS = 1000;

export const SPARE_FILES: readonly string[] = Array.from({ length: SPARE_COUNT }, (_, i) => `spare-${i}`);

export class SpareChunks {
  #paths: string[];
  /** Off once the file system refuses hard links: chunks are then created and deleted. */
  #enabled = true;
  /** Running average of this writer's file creations, µs; taken as dear until measured. */
  #createUs = Number.POSITIVE_INFINITY;

  /**
   * `enabled` false on a network file system: another client may still hold
   * cached pages of a spare's earlier life as another chunk, and would read
   * them as the new chunk's bytes.
   */
  constructor(dir: string, enabled = true) {
    this.#enabled = enabled;
    this.#paths = SPARE_FILES.map((name) => path.join(dir, name));
  }

  /**
   * Under the lock: creates the chunk file `file` (which must not exist) and
   * returns its descriptor, opened read-write (positioned writes, no O_APPEND); from a spare when creating
   * files is dear here and one is there. An existing `file` is an EEXIST error.
   */
  open(file: string): number {
    if (this.#enabled && this.#createUs > spareTuning.takeSparesAboveCreateUs) {
      const fd = this.#claim(file);
      if (fd !== null) return fd;
    }
    const start = performance.now();
    const fd = fs.openSync(file, NEW_CHUNK_FLAGS, 0o644);
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
        for (let attempt = 0; attempt < RACE_RETRIES && this.#enabled; attempt++) {
          const free = this.#spareCount();
          if (free === SPARE_COUNT) break;
          const outcome = this.#linkAsSpare(file, this.#paths[free]);
          if (outcome !== 'taken') break;
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
    for (let attempt = 0; attempt < RACE_RETRIES; attempt++) {
      const count = this.#spareCount();
      if (count === 0) return null;
      const spare = this.#paths[count - 1];
      try {
        fs.linkSync(spare, file);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') continue; // taken by another process meanwhile
        if (code === 'EEXIST') throw error;
        this.#enabled = false;
        return null;
      }
      try {
        fs.unlinkSync(spare);
      } catch {
        // The check below finds the second name and gives this spare up.
      }
      // Read-write, not O_APPEND: appends are positioned writes at the recorded end.
      const fd = fs.openSync(file, 'r+');
      const { nlink, size } = fs.fstatSync(fd);
      if (nlink === 1 && size === 0) return fd;
      // Left linked to a chunk by a crash mid-claim: drop only the new name.
      fs.closeSync(fd);
      fs.unlinkSync(file);
    }
    return null;
  }

  /** How many spares there are, taking them to be spare-0 .. spare-(k-1): the first missing name, by bisection. */
  #spareCount(): number {
    let low = 0;
    let high = SPARE_COUNT;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (fs.existsSync(this.#paths[middle])) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Links `file` as `spare`: 'taken' when another process filled that name first. */
  #linkAsSpare(file: string, spare: string): 'linked' | 'taken' | 'failed' {
    try {
      fs.linkSync(file, spare);
      return 'linked';
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return 'taken';
      // ENOENT: the chunk was deleted meanwhile; anything else: no hard links here.
      if (code !== 'ENOENT') this.#enabled = false;
      return 'failed';
    }
  }
}
