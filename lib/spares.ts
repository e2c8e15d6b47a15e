// Spare chunk files: empty files made ahead of need, off the directory lock
// and off this thread, that a writer turns into its next chunk under the lock.
// Creating a file is the dearest system call a put makes: 50 µs to over 1 ms
// of kernel time on the ext4 this was measured on, against ~25 µs for a link
// and an unlink. A worker thread (spare-maker.ts) creates the spares on the
// other core, so the creation neither holds the lock that every other process
// of the directory waits for nor takes this thread's time. It starts only once
// a queue has filled a few chunks: a script that puts a handful of items
// never pays for a thread.
//
// The spares have fixed names, spares/<slot>/next for slots 0 to 3: any writer
// in any process can take any of them, none is left over for long, and no
// listing of the directory is needed to find them. Each has a directory of its
// own because creating a file holds its directory's lock for the whole
// (long) creation: a writer linking into the queue directory, or unlinking
// the spare it took, never waits behind the maker creating the next one.
// A spare becomes a chunk by a hard link
// (which, unlike a rename, refuses to replace an existing chunk) and the
// unlink of its spare name. A crash between the two leaves the spare name on
// a chunk in use: the next claim sees a second link or data in it and lets it
// go, so no chunk is ever written through two names.

import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { SpareReply, SpareRequest } from './spare-maker.js';

/** The directory of the spares, inside the queue directory. */
export const SPARES_DIR = 'spares';
const SLOTS = 4;
const SPARE_NAME = 'next';
/** The spare files, relative to the queue directory. */
export const SPARE_FILES: readonly string[] = Array.from({ length: SLOTS }, (_, slot) => path.join(SPARES_DIR, String(slot), SPARE_NAME));
/** Chunks a queue creates itself before it asks for spares. */
const START_AFTER_CHUNKS = 4;

export class SpareChunks {
  #dir: string;
  /** Off once the file system refuses hard links (then chunks are created directly). */
  #enabled = true;
  #chunksMade = 0;
  /** Spares this queue took and has not yet asked to be made again; all of them at first. */
  #wanted = new Set(SPARE_FILES);
  #asked = false;
  #closed = false;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /**
   * Under the lock: makes a spare into the chunk file `file` and returns its
   * descriptor, opened for appending; null when no spare is ready. An
   * existing `file` is an EEXIST error, as creating it would be.
   */
  claim(file: string): number | null {
    this.#chunksMade++;
    if (!this.#enabled || !this.#asked) return null;
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
      this.#wanted.add(name);
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

  /** After chunks were made: asks the spare maker to replace the spares taken. */
  refill(): void {
    if (!this.#enabled || this.#closed || this.#chunksMade < START_AFTER_CHUNKS) return;
    const maker = spareMaker();
    if (maker === null) return;
    for (const name of this.#wanted) maker.postMessage({ make: path.join(this.#dir, name) } satisfies SpareRequest);
    this.#wanted.clear();
    this.#asked = true;
  }

  /** Waits until the spare maker has done what this queue asked, so that no spare appears after the queue is closed. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#asked) await flushSpareMaker();
  }
}

/** The spare maker of this thread, started on first use; null if it cannot run. */
let maker: Worker | null = null;
let makerBroken = false;
let nextFlush = 0;
const flushes = new Map<number, () => void>();

function spareMaker(): Worker | null {
  if (maker !== null || makerBroken) return maker;
  try {
    maker = new Worker(new URL('./spare-maker.js', import.meta.url));
  } catch {
    makerBroken = true;
    return null;
  }
  // The maker never keeps the process alive, except while a close waits for it.
  maker.unref();
  maker.on('message', (reply: SpareReply) => {
    flushes.get(reply.flushed)?.();
  });
  maker.on('error', () => stopMaker());
  maker.on('exit', () => stopMaker());
  return maker;
}

/** The maker died or could not start: queues create their chunks themselves from now on. */
function stopMaker(): void {
  maker = null;
  makerBroken = true;
  for (const done of flushes.values()) done();
}

function flushSpareMaker(): Promise<void> {
  const worker = maker;
  if (worker === null) return Promise.resolve();
  const id = nextFlush++;
  if (flushes.size === 0) worker.ref();
  return new Promise<void>((resolve) => {
    flushes.set(id, () => {
      flushes.delete(id);
      if (flushes.size === 0) maker?.unref();
      resolve();
    });
    worker.postMessage({ flush: id } satisfies SpareRequest);
  });
}
