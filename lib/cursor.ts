// The persisted read cursor: the sequence number of the first item not yet
// acknowledged (everything before it is done and may be deleted).
//
// Renaming a file on every taskDone costs ~180 us, so the cursor lives in two
// files: `cursor`, replaced atomically (temporary file + rename), and
// `cursor.log`, to which each acknowledgement appends one small checksummed
// entry (~1.5 us). Every FOLD_EVERY entries, and on close, the newest value is
// folded into `cursor` and only then is the log emptied. Both only ever grow,
// so the cursor on open is the larger of the file's value and the log's last
// valid entry: a crash at any point between the steps loses nothing, and a
// torn or damaged log entry only ever falls back to an older value (items are
// handed out again, never skipped).

import fs from 'node:fs';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { crc32c } from './crc32c.js';
import { ioError } from './errors.js';

export const CURSOR_FILE = 'cursor';
export const CURSOR_LOG_FILE = 'cursor.log';
/**
 * Log entries between folds: keeps the log small (128 KiB, read whole on
 * open in well under a millisecond) and folds rare. A fold writes a new
 * cursor file, and creating a file can cost a millisecond of kernel time.
 */
export const FOLD_EVERY = 8192;

const CURSOR_MAGIC = 0x52435150; // 'PQCR' little-endian
const CURSOR_BYTES = 24;
const LOG_MAGIC = 0x4c435150; // 'PQCL' little-endian
const LOG_ENTRY_BYTES = 16;

export interface CursorState {
  /** First sequence number not yet acknowledged. */
  ackSeq: number;
  /** A chunk that existed at the last fold: the search for the newest chunk starts there. */
  headHint: number;
}

export interface LoadedCursor {
  /** The cursor file's value; null when the file is missing or damaged. */
  file: CursorState | null;
  fileStatus: 'ok' | 'missing' | 'damaged';
  /** The newest valid log entry, or null when the log holds none. */
  logAckSeq: number | null;
}

export function loadCursor(dir: string): LoadedCursor {
  const cursorFile = path.join(dir, CURSOR_FILE);
  let file: CursorState | null = null;
  let fileStatus: LoadedCursor['fileStatus'] = 'ok';
  const bytes = readIfExists(dir, cursorFile);
  if (bytes === null) fileStatus = 'missing';
  else {
    file = decodeCursor(bytes);
    if (file === null) fileStatus = 'damaged';
  }
  const log = readIfExists(dir, path.join(dir, CURSOR_LOG_FILE));
  let logAckSeq: number | null = null;
  if (log !== null) {
    for (let at = 0; at + LOG_ENTRY_BYTES <= log.length; at += LOG_ENTRY_BYTES) {
      const entry = decodeLogEntry(log, at);
      if (entry !== null && (logAckSeq === null || entry > logAckSeq)) logAckSeq = entry;
    }
  }
  return { file, fileStatus, logAckSeq };
}

/** Writes and later folds the cursor of one open queue. */
export class CursorWriter {
  readonly logFd: number;
  #dir: string;
  #durable: boolean;
  #entry = Buffer.alloc(LOG_ENTRY_BYTES);
  #entries = 0;
  /** The newest value written, to the log or the file. */
  #state: CursorState;
  #foldedHeadHint: number;

  /** `durable`: fsync the cursor file (and its directory entry) when folding. */
  constructor(dir: string, state: CursorState, durable: boolean) {
    this.#dir = dir;
    this.#durable = durable;
    this.#state = { ...state };
    this.#foldedHeadHint = state.headHint;
    const logFile = path.join(dir, CURSOR_LOG_FILE);
    try {
      this.logFd = fs.openSync(logFile, 'a');
      const size = fs.fstatSync(this.logFd).size;
      this.#entries = Math.floor(size / LOG_ENTRY_BYTES);
      // A torn last entry would put every later entry out of line with the
      // 16-byte slots, where loading never finds it: cut it off first.
      if (size % LOG_ENTRY_BYTES !== 0) fs.ftruncateSync(this.logFd, this.#entries * LOG_ENTRY_BYTES);
    } catch (error) {
      throw ioError(dir, 'opening the cursor log', error, logFile);
    }
  }

  get state(): Readonly<CursorState> {
    return this.#state;
  }

  /** Records that every item before `ackSeq` is acknowledged. */
  advance(ackSeq: number): void {
    if (ackSeq <= this.#state.ackSeq) return;
    this.#state.ackSeq = ackSeq;
    this.#entry.writeUInt32LE(LOG_MAGIC, 0);
    this.#entry.writeDoubleLE(ackSeq, 4);
    this.#entry.writeUInt32LE(crc32c(this.#entry, 0, 12), 12);
    let written = 0;
    try {
      written = fs.writeSync(this.logFd, this.#entry, 0, LOG_ENTRY_BYTES);
      if (written !== LOG_ENTRY_BYTES) throw Object.assign(new Error('short write'), { code: 'EIO' });
    } catch (error) {
      // Keep the log aligned: drop a partial entry (the previous value stands).
      if (written > 0) fs.ftruncateSync(this.logFd, this.#entries * LOG_ENTRY_BYTES);
      throw ioError(this.#dir, 'appending to the cursor log', error, path.join(this.#dir, CURSOR_LOG_FILE));
    }
    if (++this.#entries >= FOLD_EVERY) this.fold();
  }

  /** The head hint as the cursor file holds it (open probes forward from there). */
  get foldedHeadHint(): number {
    return this.#foldedHeadHint;
  }

  /** Remembers where the newest chunk is, for the next fold. */
  setHeadHint(chunk: number): void {
    this.#state.headHint = chunk;
  }

  /** Writes the current state into the cursor file, then empties the log. */
  fold(): void {
    writeCursorFile(this.#dir, this.#state, this.#durable);
    this.#foldedHeadHint = this.#state.headHint;
    try {
      fs.ftruncateSync(this.logFd, 0);
    } catch (error) {
      throw ioError(this.#dir, 'emptying the cursor log', error, path.join(this.#dir, CURSOR_LOG_FILE));
    }
    this.#entries = 0;
  }

  /** Closes the log; fold first, and sync it before if the mode asks. */
  closeLog(): void {
    fs.closeSync(this.logFd);
  }
}

/** Replaces the cursor file atomically with `state`. */
export function writeCursorFile(dir: string, state: CursorState, durable: boolean): void {
  const file = path.join(dir, CURSOR_FILE);
  const bytes = Buffer.alloc(CURSOR_BYTES);
  bytes.writeUInt32LE(CURSOR_MAGIC, 0);
  bytes.writeDoubleLE(state.ackSeq, 4);
  bytes.writeDoubleLE(state.headHint, 12);
  bytes.writeUInt32LE(crc32c(bytes, 0, 20), 20);
  try {
    writeFileAtomic.sync(file, bytes, { fsync: durable });
    if (durable) fsyncDirectory(dir);
  } catch (error) {
    throw ioError(dir, 'writing the cursor file', error, file);
  }
}

/** Makes renames and new files in `dir` durable. */
export function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function decodeCursor(bytes: Buffer): CursorState | null {
  if (bytes.length !== CURSOR_BYTES || bytes.readUInt32LE(0) !== CURSOR_MAGIC) return null;
  if (crc32c(bytes, 0, 20) !== bytes.readUInt32LE(20)) return null;
  const ackSeq = bytes.readDoubleLE(4);
  const headHint = bytes.readDoubleLE(12);
  return isSequence(ackSeq) && isSequence(headHint) ? { ackSeq, headHint } : null;
}

function decodeLogEntry(log: Buffer, at: number): number | null {
  if (log.readUInt32LE(at) !== LOG_MAGIC || crc32c(log, at, at + 12) !== log.readUInt32LE(at + 12)) return null;
  const ackSeq = log.readDoubleLE(at + 4);
  return isSequence(ackSeq) ? ackSeq : null;
}

function isSequence(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

function readIfExists(dir: string, file: string): Buffer | null {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError(dir, 'reading', error, file);
  }
}
