// The persisted acknowledgements: the prefix (the first item not yet
// acknowledged: everything before it is done and may be deleted) and the
// items above it acknowledged while a lower one was still out.
//
// Renaming a file on every taskDone costs ~180 us, so they live in two files:
// `cursor`, replaced atomically (temporary file + rename), and `cursor.log`,
// to which each acknowledgement appends one small checksummed entry (~1.5 us):
// the new prefix and the items it acknowledged above it. Every FOLD_EVERY
// entries, and on close, the whole picture is folded into `cursor` and only
// then is the log emptied. Prefixes only ever grow and acknowledgements are
// never taken back, so what is acknowledged is the largest prefix and the
// union of the ranges in the file and every valid log entry: a crash at any
// point between the steps loses nothing, and a torn or damaged log entry only
// ever falls back to an older picture (items are handed out again, never
// skipped).

import fs from 'node:fs';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { crc32c } from './crc32c.js';
import { fsyncDirectory } from '../fs/dirsync.js';
import { ioError } from '../errors.js';
import { closeQuietly, fileSize, startsWithMagic } from '../fs/files.js';
import { dropBelow, insertRange, type Range } from './ranges.js';

export const CURSOR_FILE = 'cursor';
export const CURSOR_LOG_FILE = 'cursor.log';
/**
 * Log entries between folds: keeps the log small (a few hundred KiB, read
 * whole on open in about a millisecond) and folds rare. A fold writes a new
 * cursor file, and creating a file can cost a millisecond of kernel time.
 */
export const FOLD_EVERY = 8192;

const CURSOR_MAGIC = 0x32435150; // 'PQC2' little-endian
const LOG_MAGIC = 0x32415150; // 'PQA2' little-endian
/** Cursor file: magic, length, ackSeq, headHint, range count, ranges, crc. */
const CURSOR_FIXED_BYTES = 4 + 4 + 8 + 8 + 4 + 4;
/** Log entry: magic, length, ackSeq, range count, ranges, crc. */
const ENTRY_FIXED_BYTES = 4 + 4 + 8 + 4 + 4;
const RANGE_BYTES = 12;
/** No entry or cursor file is larger: a damaged length cannot size an allocation. */
const MAX_RECORD_BYTES = 64 * 1024 * 1024;

export interface CursorState {
  /** First sequence number not yet acknowledged. */
  ackSeq: number;
  /** A chunk that existed at the last fold: the search for the newest chunk starts there. */
  headHint: number;
  /** Items above ackSeq acknowledged, sorted and merged. */
  acked: Range[];
}

export interface LoadedCursor {
  /** The cursor file's value; null when the file is missing or damaged. */
  file: CursorState | null;
  fileStatus: 'ok' | 'missing' | 'damaged';
  /** The largest prefix in a valid log entry, or null when the log holds none. */
  logAckSeq: number | null;
  /** The union of the ranges of every valid log entry. */
  logAcked: Range[];
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
  const { ackSeq: logAckSeq, acked: logAcked } = log === null ? { ackSeq: null, acked: [] } : readLog(log);
  return { file, fileStatus, logAckSeq, logAcked };
}

/** Whether `file` is a cursor file or log perq wrote (an empty log too: it is made before its first entry). */
export function isCursorFile(file: string, log: boolean): boolean {
  if (log && fileSize(file) === 0) return true;
  return startsWithMagic(file, log ? LOG_MAGIC : CURSOR_MAGIC);
}

/** The acknowledgements `loaded` adds up to: the largest prefix, and the ranges above it. */
export function acknowledgedIn(loaded: LoadedCursor): { ackSeq: number; acked: Range[] } {
  const ackSeq = Math.max(loaded.file?.ackSeq ?? 0, loaded.logAckSeq ?? 0);
  const acked: Range[] = [];
  for (const range of loaded.file?.acked ?? []) insertRange(acked, range);
  for (const range of loaded.logAcked) insertRange(acked, range);
  dropBelow(acked, ackSeq);
  return { ackSeq, acked };
}

/** Walks the log's entries; where one is damaged, looks for the next one that is whole. */
function readLog(log: Buffer): { ackSeq: number | null; acked: Range[]; end: number; entries: number } {
  let ackSeq: number | null = null;
  const acked: Range[] = [];
  let end = 0;
  let entries = 0;
  for (let at = 0; at + ENTRY_FIXED_BYTES <= log.length;) {
    const entry = decodeEntry(log, at);
    if (entry === null) {
      at++;
      continue;
    }
    if (ackSeq === null || entry.ackSeq > ackSeq) ackSeq = entry.ackSeq;
    for (const range of entry.ranges) insertRange(acked, range);
    at += entry.length;
    end = at;
    entries++;
  }
  return { ackSeq, acked, end, entries };
}

/** Writes and later folds the cursor of one open queue. */
export class CursorWriter {
  readonly logFd: number;
  #dir: string;
  #durable: boolean;
  #entries = 0;
  /** The newest prefix and head hint written, to the log or the file. */
  #ackSeq: number;
  #headHint: number;
  #foldedHeadHint: number;
  #scratch = Buffer.alloc(ENTRY_FIXED_BYTES);

  /** `durable`: fsync the cursor file (and its directory entry) when folding. */
  constructor(dir: string, state: CursorState, durable: boolean) {
    this.#dir = dir;
    this.#durable = durable;
    this.#ackSeq = state.ackSeq;
    this.#headHint = state.headHint;
    this.#foldedHeadHint = state.headHint;
    this.#scratch.writeUInt32LE(LOG_MAGIC, 0);
    this.#scratch.writeUInt32LE(ENTRY_FIXED_BYTES, 4);
    const logFile = path.join(dir, CURSOR_LOG_FILE);
    try {
      const existed = fs.existsSync(logFile);
      // O_APPEND: the processes sharing the directory append through descriptors of their own.
      this.logFd = fs.openSync(logFile, 'a+');
      // A new log's name must be durable before an entry in it counts.
      if (!existed && durable) fsyncDirectory(dir);
      const log = readIfExists(dir, logFile) ?? Buffer.alloc(0);
      const { end, entries } = readLog(log);
      this.#entries = entries;
      // Bytes after the last whole entry (a torn append) would be read as the
      // start of the next entry: cut them off first.
      if (end < log.length) fs.ftruncateSync(this.logFd, end);
    } catch (error) {
      throw ioError(dir, 'opening the cursor log', error, logFile);
    }
  }

  get ackSeq(): number {
    return this.#ackSeq;
  }

  /** The entry of a prefix alone (the common case), in a buffer reused for every such entry. */
  #prefixEntry(ackSeq: number): Buffer {
    const entry = this.#scratch;
    entry.writeDoubleLE(ackSeq, 8);
    entry.writeUInt32LE(0, 16);
    entry.writeUInt32LE(crc32c(entry, 0, 20), 20);
    return entry;
  }

  get headHint(): number {
    return this.#headHint;
  }

  /**
   * Records that every item before `ackSeq` is acknowledged, and the items
   * of `acked` above it: one entry, one write. Nothing to record writes nothing.
   */
  advance(ackSeq: number, acked: readonly Range[] = []): void {
    const prefix = Math.max(ackSeq, this.#ackSeq);
    const above = acked.length === 0 ? acked : acked.filter((range) => range.start + range.count > prefix);
    if (prefix === this.#ackSeq && above.length === 0) return;
    const entry = above.length === 0 ? this.#prefixEntry(prefix) : encodeEntry(prefix, above);
    let written = 0;
    try {
      written = fs.writeSync(this.logFd, entry, 0, entry.length);
      if (written !== entry.length) throw Object.assign(new Error('short write'), { code: 'EIO' });
    } catch (error) {
      // Drop a partial entry: the previous picture stands.
      if (written > 0) {
        try {
          fs.ftruncateSync(this.logFd, fs.fstatSync(this.logFd).size - written);
        } catch {
          // Left torn, it is cut off when the log is next opened.
        }
      }
      throw ioError(this.#dir, 'appending to the cursor log', error, path.join(this.#dir, CURSOR_LOG_FILE));
    }
    this.#ackSeq = prefix;
    this.#entries++;
  }

  /** Whether enough entries were appended that the log should be folded. */
  get wantsFold(): boolean {
    return this.#entries >= FOLD_EVERY;
  }

  /** The head hint as the cursor file holds it (open probes forward from there). */
  get foldedHeadHint(): number {
    return this.#foldedHeadHint;
  }

  /** Remembers where the newest chunk is, for the next fold. */
  setHeadHint(chunk: number): void {
    this.#headHint = chunk;
  }

  /** Writes the prefix and `acked` (everything acknowledged above it) into the cursor file, then empties the log. */
  fold(acked: readonly Range[]): void {
    writeCursorFile(this.#dir, { ackSeq: this.#ackSeq, headHint: this.#headHint, acked: [...acked] }, this.#durable);
    this.#foldedHeadHint = this.#headHint;
    try {
      fs.ftruncateSync(this.logFd, 0);
    } catch (error) {
      throw ioError(this.#dir, 'emptying the cursor log', error, path.join(this.#dir, CURSOR_LOG_FILE));
    }
    this.#entries = 0;
  }

  /**
   * The fold of a full disk, where an append needs a block and a fold a new
   * file: writes the picture (the prefix `ackSeq` and `acked` above it) into
   * the cursor file in place, syncs it, then empties the log, which frees the
   * log's blocks for the appends that follow. Not atomic like fold: a power
   * cut in the middle of this one write leaves a damaged cursor file, which
   * open rebuilds from the chunk files (items handed out again, none lost).
   */
  foldInPlace(ackSeq: number, acked: readonly Range[]): void {
    const file = path.join(this.#dir, CURSOR_FILE);
    this.#ackSeq = Math.max(ackSeq, this.#ackSeq);
    const bytes = encodeCursor({ ackSeq: this.#ackSeq, headHint: this.#headHint, acked: [...acked] });
    try {
      const fd = fs.openSync(file, 'r+');
      try {
        fs.writeSync(fd, bytes, 0, bytes.length, 0);
        fs.ftruncateSync(fd, bytes.length);
        fs.fdatasyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.ftruncateSync(this.logFd, 0);
    } catch (error) {
      throw ioError(this.#dir, 'writing the cursor file in place (the disk is full)', error, file);
    }
    this.#foldedHeadHint = this.#headHint;
    this.#entries = 0;
  }

  /**
   * fold, where failing is no harm: the cursor file and the log still add up
   * to every acknowledgement, so a fold that cannot write (a full disk: it
   * makes a temporary file) leaves the log as it is, to be folded later.
   */
  tryFold(acked: readonly Range[]): boolean {
    try {
      this.fold(acked);
      return true;
    } catch {
      return false;
    }
  }

  closeLog(): void {
    closeQuietly(this.logFd); // every entry was written with writeSync
  }
}

/** Replaces the cursor file atomically with `state`. */
export function writeCursorFile(dir: string, state: CursorState, durable: boolean): void {
  const file = path.join(dir, CURSOR_FILE);
  const bytes = encodeCursor(state);
  try {
    writeFileAtomic.sync(file, bytes, { fsync: durable });
    if (durable) fsyncDirectory(dir);
  } catch (error) {
    throw ioError(dir, 'writing the cursor file', error, file);
  }
}

function encodeCursor(state: CursorState): Buffer {
  const acked = state.acked.filter((range) => range.start + range.count > state.ackSeq).map((range) => clipBelow(range, state.ackSeq));
  const bytes = Buffer.alloc(CURSOR_FIXED_BYTES + acked.length * RANGE_BYTES);
  let at = bytes.writeUInt32LE(CURSOR_MAGIC, 0);
  at = bytes.writeUInt32LE(bytes.length, at);
  at = bytes.writeDoubleLE(state.ackSeq, at);
  at = bytes.writeDoubleLE(state.headHint, at);
  at = writeRanges(bytes, at, acked);
  bytes.writeUInt32LE(crc32c(bytes, 0, at), at);
  return bytes;
}

function encodeEntry(ackSeq: number, acked: readonly Range[]): Buffer {
  const ranges = acked.map((range) => clipBelow(range, ackSeq));
  const entry = Buffer.alloc(ENTRY_FIXED_BYTES + ranges.length * RANGE_BYTES);
  let at = entry.writeUInt32LE(LOG_MAGIC, 0);
  at = entry.writeUInt32LE(entry.length, at);
  at = entry.writeDoubleLE(ackSeq, at);
  at = writeRanges(entry, at, ranges);
  entry.writeUInt32LE(crc32c(entry, 0, at), at);
  return entry;
}

function clipBelow(range: Range, floor: number): Range {
  return range.start >= floor ? range : { start: floor, count: range.start + range.count - floor };
}

function writeRanges(b: Buffer, at: number, ranges: readonly Range[]): number {
  at = b.writeUInt32LE(ranges.length, at);
  for (const range of ranges) {
    at = b.writeDoubleLE(range.start, at);
    at = b.writeUInt32LE(range.count, at);
  }
  return at;
}

/** Ranges at `at` of a record whose checksum matched; null when one is not a valid range. */
function readRanges(b: Buffer, at: number, end: number): Range[] | null {
  const count = b.readUInt32LE(at);
  at += 4;
  if (at + count * RANGE_BYTES !== end) return null;
  const ranges: Range[] = [];
  for (let i = 0; i < count; i++, at += RANGE_BYTES) {
    const start = b.readDoubleLE(at);
    const length = b.readUInt32LE(at + 8);
    if (!isSequence(start) || length < 1 || !isSequence(start + length)) return null;
    ranges.push({ start, count: length });
  }
  return ranges;
}

/** The entry at `at`, or null where no whole, valid entry starts. */
function decodeEntry(log: Buffer, at: number): { ackSeq: number; ranges: Range[]; length: number } | null {
  if (log.readUInt32LE(at) !== LOG_MAGIC) return null;
  const length = log.readUInt32LE(at + 4);
  if (length < ENTRY_FIXED_BYTES || length > MAX_RECORD_BYTES || at + length > log.length) return null;
  const end = at + length - 4;
  if (crc32c(log, at, end) !== log.readUInt32LE(end)) return null;
  const ackSeq = log.readDoubleLE(at + 8);
  const ranges = readRanges(log, at + 16, end);
  if (!isSequence(ackSeq) || ranges === null) return null;
  return { ackSeq, ranges, length };
}

function decodeCursor(bytes: Buffer): CursorState | null {
  if (bytes.length < CURSOR_FIXED_BYTES || bytes.length > MAX_RECORD_BYTES) return null;
  if (bytes.readUInt32LE(0) !== CURSOR_MAGIC || bytes.readUInt32LE(4) !== bytes.length) return null;
  const end = bytes.length - 4;
  if (crc32c(bytes, 0, end) !== bytes.readUInt32LE(end)) return null;
  const ackSeq = bytes.readDoubleLE(8);
  const headHint = bytes.readDoubleLE(16);
  const acked = readRanges(bytes, 24, end);
  return isSequence(ackSeq) && isSequence(headHint) && acked !== null ? { ackSeq, headHint, acked } : null;
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
