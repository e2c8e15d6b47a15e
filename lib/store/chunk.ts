// One chunk file: a run of framed records (see record.ts), at most
// `chunkSize` of them. Chunk n holds the items with sequence numbers
// n*chunkSize .. (n+1)*chunkSize-1, so an item's chunk follows from its number.
// Records are only ever appended; a chunk is deleted whole once every item in
// it is acknowledged. Only the writer holding the queue lock appends.

import fs from 'node:fs';
import path from 'node:path';
import { QueueError, ioError } from '../errors.js';
import {
  HEADER_BYTES,
  headerSeq,
  headerTimestamp,
  intactFramesLength,
  isQuarantined,
  readHeaderLength,
  payloadIntact,
  vouchedHeaderLength,
} from './record.js';
import type { SpareChunks } from './spares.js';
import { closeQuietly } from '../fs/files.js';

/**
 * A new chunk is opened read-write, never O_APPEND: on Linux a positioned
 * write on an O_APPEND descriptor lands at the file's end, and every append
 * must land at the end perq recorded (see ChunkWriter.append).
 */
export const NEW_CHUNK_FLAGS = fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL;

/** Digits in a chunk number: enough for 2^53 items with a chunk size of 1. */
const CHUNK_NUMBER_DIGITS = 16;
const CHUNK_PREFIX = 'chunk-';
const CHUNK_NAME = new RegExp(`^${CHUNK_PREFIX}(\\d{${CHUNK_NUMBER_DIGITS}})$`);
/** 64 KiB reads: big enough to amortise a syscall over many small records. */
export const READ_AHEAD_BYTES = 64 * 1024;
/** Blocks read at a time while checking that a damaged tail is all zeros. */
const ZERO_CHECK_BYTES = 64 * 1024;

export function chunkFileName(chunk: number): string {
  return CHUNK_PREFIX + String(chunk).padStart(CHUNK_NUMBER_DIGITS, '0');
}

/** The chunk number in a file name, or -1 when the name is not a chunk's. */
export function parseChunkFileName(name: string): number {
  const match = CHUNK_NAME.exec(name);
  return match === null ? -1 : Number(match[1]);
}

export function chunkPath(dir: string, chunk: number): string {
  return path.join(dir, chunkFileName(chunk));
}

/** The chunk files in `dir` and the bytes they hold (spares, empty, are not chunks). */
export function chunksOnDisk(dir: string): { chunks: number; bytes: number } {
  let chunks = 0;
  let bytes = 0;
  for (const name of fs.readdirSync(dir)) {
    if (parseChunkFileName(name) < 0) continue;
    try {
      bytes += fs.statSync(path.join(dir, name)).size;
      chunks++;
    } catch {
      // Deleted since the listing (acknowledged meanwhile): not on disk any more.
    }
  }
  return { chunks, bytes };
}

export function chunkExists(dir: string, chunk: number): boolean {
  return fs.existsSync(chunkPath(dir, chunk));
}

export interface ChunkScan {
  /** Whole records found (up to the limit asked for). */
  count: number;
  /** The offset just after the last whole record counted. */
  end: number;
  /** Whether bytes after `end` form a torn or stale record (a write cut short, or another item's bytes). */
  torn: boolean;
}

/**
 * Walks the record headers of a chunk whose first record is item `firstSeq`,
 * without reading payloads: counts up to `limit` records and finds where the
 * valid data ends. A partial record at the end of the file, a tail of zero
 * bytes (what a power loss can leave after the file size was updated but not
 * the data), or a sound record of another item (bytes of the file's earlier
 * life as another chunk) ends the valid data. Any other header damage is
 * `ERR_CORRUPT`.
 */
export function scanChunk(dir: string, file: string, fd: number, maxItemBytes: number, firstSeq: number, limit = Infinity): ChunkScan {
  const size = fstatSize(dir, file, fd);
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  let pos = 0;
  let count = 0;
  /** Where the last record counted starts and its payload length (-1: none yet). */
  let last = -1;
  let lastLength = 0;
  // The valid data ends at `end` and what follows is torn or zeros: unless
  // the record before `end` itself lost its payload (zeros that fail its
  // checksum), which ends the data one record earlier.
  const tornAt = (end: number): ChunkScan => {
    if (last >= 0 && lastPayloadLost(dir, file, fd, last, lastLength)) return { count: count - 1, end: last, torn: true };
    return { count, end, torn: true };
  };
  while (count < limit && pos < size) {
    if (size - pos < HEADER_BYTES) return tornAt(pos);
    readFully(dir, file, fd, header, HEADER_BYTES, pos);
    const length = readHeaderLength(header, 0);
    if (length < 0) {
      if (isZeroFrom(dir, file, fd, pos, size)) return tornAt(pos);
      throw new QueueError('ERR_CORRUPT', dir, 'damaged record header (checksum mismatch)', { file, offset: pos });
    }
    if (!isRecordOf(header, 0, firstSeq + count, dir, file, pos)) return tornAt(pos);
    if (length > maxItemBytes) throw tooLargeRecord(dir, file, pos, length, maxItemBytes);
    if (pos + HEADER_BYTES + length > size) return tornAt(pos);
    last = pos;
    lastLength = length;
    pos += HEADER_BYTES + length;
    count++;
  }
  if (pos === size && last >= 0 && lastPayloadLost(dir, file, fd, last, lastLength)) return { count: count - 1, end: last, torn: true };
  return { count, end: pos, torn: false };
}

/**
 * Whether the file's last record has a sound header but a payload of zeros
 * that fails its checksum: the data of the last write never reached the disk
 * (a power cut after the size was updated). Other payload damage is left for
 * the reader to report as ERR_CORRUPT.
 */
function lastPayloadLost(dir: string, file: string, fd: number, pos: number, length: number): boolean {
  const record = Buffer.allocUnsafe(HEADER_BYTES + length);
  readFully(dir, file, fd, record, record.length, pos);
  if (isQuarantined(record, 0)) return false;
  return !payloadIntact(record, 0, length) && isZeroFrom(dir, file, fd, pos + HEADER_BYTES, pos + HEADER_BYTES + length);
}

/**
 * The message for a sound record of a later item where item `seq`'s should
 * be: the records between were cut out. (A record of an earlier item is bytes
 * of the file's earlier life as an older chunk, which end the data: chunk
 * numbers, and so sequence numbers, only grow.)
 */
export function recordsCutOut(at: number, seq: number): string {
  const missing = at - seq === 1 ? `item ${seq} is` : `items ${seq}..${at - 1} are`;
  return `the record of item ${at} is where item ${seq}'s should be: ${missing} missing (bytes cut out)`;
}

/**
 * Whether the sound header at `at` of `source` (at `offset` of `file`) is item
 * `seq`'s. An earlier item's is a stale record, which ends the data: false. A
 * later item's means records were cut out: ERR_CORRUPT.
 */
function isRecordOf(source: Uint8Array, at: number, seq: number, dir: string, file: string, offset: number): boolean {
  const found = headerSeq(source, at);
  if (found === seq) return true;
  if (found > seq) throw new QueueError('ERR_CORRUPT', dir, recordsCutOut(found, seq), { file, offset });
  return false;
}

function tooLargeRecord(dir: string, file: string, offset: number, length: number, maxItemBytes: number): QueueError {
  return new QueueError(
    'ERR_CORRUPT',
    dir,
    `record of ${length} bytes exceeds maxItemBytes (${maxItemBytes}); if it was written with a larger maxItemBytes, reopen with that value`,
    { file, offset },
  );
}

/** Whether `bytes[from, to)` are all zero (what a power cut leaves where data was never written). */
export function isAllZero(bytes: Uint8Array, from: number, to: number = bytes.length): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Whether the file holds only zero bytes from `from` to `size`, read in blocks. */
function isZeroFrom(dir: string, file: string, fd: number, from: number, size: number): boolean {
  const block = Buffer.allocUnsafe(Math.max(1, Math.min(ZERO_CHECK_BYTES, size - from)));
  for (let pos = from; pos < size;) {
    const n = readFully(dir, file, fd, block, Math.min(block.length, size - pos), pos);
    if (!isAllZero(block, 0, n)) return false;
    pos += n;
  }
  return true;
}

/** Reads `length` bytes at `position` into `target[0..]`; fewer only at end of file. */
function readFully(dir: string, file: string, fd: number, target: Buffer, length: number, position: number): number {
  return readAtLeast(dir, file, fd, target, length, length, position);
}

/**
 * Reads up to `length` bytes at `position` into `target[0..]`, stopping once
 * `needed` are in (a read-ahead at the head of the queue would otherwise
 * pay a second read to learn that the file ends); fewer than `needed` only
 * at end of file.
 */
function readAtLeast(dir: string, file: string, fd: number, target: Buffer, needed: number, length: number, position: number): number {
  let done = 0;
  try {
    while (done < needed) {
      const n = fs.readSync(fd, target, done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
  } catch (error) {
    throw ioError(dir, 'reading a chunk', error, file);
  }
  return done;
}

function fstatSize(dir: string, file: string, fd: number): number {
  try {
    return fs.fstatSync(fd).size;
  } catch (error) {
    throw ioError(dir, 'stat of a chunk', error, file);
  }
}

/**
 * Reads the records of one chunk in order through a read-ahead buffer, so a
 * `get` costs a syscall only once per READ_AHEAD_BYTES of small records.
 * A returned payload is a view into the buffer, valid until the next read.
 */
/** What ChunkReader.readAt finds where a record should be. */
export type RecordRead =
  { kind: 'record'; payload: Buffer; timestamp: number; next: number } | { kind: 'quarantined'; next: number } | { kind: 'missing' };

const MISSING: RecordRead = { kind: 'missing' };

export class ChunkReader {
  readonly chunk: number;
  readonly file: string;
  #dir: string;
  #fd: number;
  #maxItemBytes: number;
  #buffer = Buffer.allocUnsafe(READ_AHEAD_BYTES);
  /**
   * The next record start whose header and payload intactFramesLength
   * vouched for at the last fill (-1: none), and where what it vouched for
   * ends. Only a read at exactly that offset skips the sums: the chain goes
   * from record to record of the fill, so an offset that is not a record
   * start never passes unchecked.
   */
  #vouchedAt = -1;
  #vouchedEnd = 0;
  /** File offset of #buffer[0], and how many bytes of it are valid. */
  #bufferStart = 0;
  #bufferLength = 0;

  constructor(dir: string, chunk: number, maxItemBytes: number) {
    this.chunk = chunk;
    this.file = chunkPath(dir, chunk);
    this.#dir = dir;
    this.#maxItemBytes = maxItemBytes;
    try {
      this.#fd = fs.openSync(this.file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new QueueError('ERR_CORRUPT', dir, 'a chunk file that holds unread items is missing', { file: this.file });
      }
      throw ioError(dir, 'opening a chunk', error, this.file);
    }
  }

  /**
   * The record of item `seq` at `offset`: its payload (a view, valid until
   * the next read), put time and the offset after it; or `missing` when the
   * file holds no such record there (it ends, ends in a torn write or zeros,
   * or holds another item's record: bytes of the file's earlier life).
   * Damage is ERR_CORRUPT.
   */
  readAt(offset: number, seq: number): RecordRead {
    let view = this.#view(offset, HEADER_BYTES);
    if (view === null) return MISSING;
    // Read on from a record vouched for at the last fill: its sums were checked then.
    const vouched = offset === this.#vouchedAt && offset < this.#vouchedEnd;
    const length = vouched ? vouchedHeaderLength(view.bytes, view.at) : readHeaderLength(view.bytes, view.at);
    if (length < 0) {
      if (this.#zeroFrom(offset)) return MISSING;
      throw this.#corrupt(offset, 'damaged record header (checksum mismatch)');
    }
    if (!isRecordOf(view.bytes, view.at, seq, this.#dir, this.file, offset)) return MISSING;
    if (isQuarantined(view.bytes, view.at)) return { kind: 'quarantined', next: offset + HEADER_BYTES };
    if (length > this.#maxItemBytes) throw tooLargeRecord(this.#dir, this.file, offset, length, this.#maxItemBytes);
    const timestamp = headerTimestamp(view.bytes, view.at);
    view = this.#view(offset, HEADER_BYTES + length);
    if (view === null) return MISSING;
    if (!vouched && !payloadIntact(view.bytes, view.at, length)) {
      if (this.#zeroFrom(offset + HEADER_BYTES)) return MISSING;
      throw this.#corrupt(offset, 'damaged record payload (checksum mismatch)');
    }
    const start = view.at + HEADER_BYTES;
    const next = offset + HEADER_BYTES + length;
    if (vouched) this.#vouchedAt = next;
    return { kind: 'record', payload: view.bytes.subarray(start, start + length), timestamp, next };
  }

  /** Offset after skipping the `count` records of items `seq`, `seq + 1`, ... from `offset`, checking headers only; -1 when one is missing. */
  offsetAfterRecords(offset: number, seq: number, count: number): number {
    for (let i = 0; i < count; i++) {
      const view = this.#view(offset, HEADER_BYTES);
      if (view === null) return -1;
      const length = readHeaderLength(view.bytes, view.at);
      if (length < 0) {
        if (this.#zeroFrom(offset)) return -1;
        throw this.#corrupt(offset, 'damaged record header (checksum mismatch)');
      }
      if (!isRecordOf(view.bytes, view.at, seq + i, this.#dir, this.file, offset)) return -1;
      offset += HEADER_BYTES + length;
    }
    return offset;
  }

  /** Whether the file holds only zero bytes from `offset` to its end (data a power cut never wrote). */
  #zeroFrom(offset: number): boolean {
    return isZeroFrom(this.#dir, this.file, this.#fd, offset, fstatSize(this.#dir, this.file, this.#fd));
  }

  /** The descriptor (for coherence.ts's fstat). */
  get fd(): number {
    return this.#fd;
  }

  /** Forgets the read-ahead: another process may have cut and rewritten bytes past what was published. */
  invalidate(): void {
    this.#bufferLength = 0;
    this.#vouchedAt = -1;
    this.#vouchedEnd = 0;
  }

  close(): void {
    closeQuietly(this.#fd); // a read-only descriptor: closing loses nothing
  }

  /** `length` bytes at file `offset`, from the read-ahead buffer or a read sized for them; null when the file ends before. */
  #view(offset: number, length: number): { bytes: Buffer; at: number } | null {
    const inBuffer = offset - this.#bufferStart;
    if (inBuffer >= 0 && inBuffer + length <= this.#bufferLength) return { bytes: this.#buffer, at: inBuffer };
    if (length > this.#buffer.length) {
      // A record larger than the read-ahead buffer gets a buffer of its own.
      const big = Buffer.allocUnsafe(length);
      if (readFully(this.#dir, this.file, this.#fd, big, length, offset) < length) return null;
      return { bytes: big, at: 0 };
    }
    this.#bufferStart = offset;
    this.#bufferLength = readAtLeast(this.#dir, this.file, this.#fd, this.#buffer, length, this.#buffer.length, offset);
    // Every fill starts at a record: check the whole records it brought in, in one go.
    this.#vouchedAt = offset;
    this.#vouchedEnd = offset + intactFramesLength(this.#buffer, 0, this.#bufferLength);
    if (this.#bufferLength < length) return null;
    return { bytes: this.#buffer, at: 0 };
  }

  #corrupt(offset: number, message: string): QueueError {
    return new QueueError('ERR_CORRUPT', this.#dir, message, { file: this.file, offset });
  }
}

/**
 * Appends framed records to the newest chunk. A failed append is cut back to
 * the previous end, so the file never keeps half of a batch.
 */
export class ChunkWriter {
  readonly chunk: number;
  readonly file: string;
  readonly fd: number;
  #dir: string;
  /** Bytes in the file: the offset the next append lands at. */
  size: number;
  /** Records in the file. */
  count: number;

  private constructor(dir: string, chunk: number, fd: number, size: number, count: number) {
    this.#dir = dir;
    this.chunk = chunk;
    this.file = chunkPath(dir, chunk);
    this.fd = fd;
    this.size = size;
    this.count = count;
  }

  /** Creates chunk `chunk`, which must not exist yet (through `spares`: from a spare file where creating files is dear). */
  static create(dir: string, chunk: number, spares?: SpareChunks): ChunkWriter {
    const file = chunkPath(dir, chunk);
    try {
      return new ChunkWriter(dir, chunk, spares !== undefined ? spares.open(file) : fs.openSync(file, NEW_CHUNK_FLAGS, 0o644), 0, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new QueueError(
          'ERR_CORRUPT',
          dir,
          'the next chunk file already exists: the queue directory was changed behind perq (a chunk may be missing)',
          { file },
        );
      }
      throw ioError(dir, 'creating a chunk', error, file);
    }
  }

  /** Opens an existing chunk to append after its `count` valid records ending at `end`. */
  static resume(dir: string, chunk: number, fd: number, end: number, count: number): ChunkWriter {
    return new ChunkWriter(dir, chunk, fd, end, count);
  }

  /** Appends `bytes[0, length)` holding `records` whole records. */
  append(bytes: Buffer, length: number, records: number): void {
    let done = 0;
    try {
      while (done < length) done += fs.writeSync(this.fd, bytes, done, length - done, this.size + done);
    } catch (error) {
      if (done > 0) this.#cutBack();
      throw ioError(this.#dir, 'appending to a chunk', error, this.file);
    }
    this.size += length;
    this.count += records;
  }

  /** Cuts the file back to `size` bytes holding `count` records (undoing appends). */
  truncate(size: number, count: number): void {
    try {
      fs.ftruncateSync(this.fd, size);
    } catch (error) {
      throw ioError(this.#dir, 'cutting back a chunk', error, this.file);
    }
    this.size = size;
    this.count = count;
  }

  close(): void {
    closeQuietly(this.fd); // data was already handed to the OS by writeSync
  }

  #cutBack(): void {
    try {
      fs.ftruncateSync(this.fd, this.size);
    } catch {
      // The torn tail this leaves is cut off by the scan on the next open.
    }
  }
}

/** Opens chunk `chunk` for appending and cuts off a torn tail; returns the writer. */
export function resumeChunk(dir: string, chunk: number, maxItemBytes: number, firstSeq: number): ChunkWriter {
  const file = chunkPath(dir, chunk);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r+');
  } catch (error) {
    throw ioError(dir, 'opening the newest chunk', error, file);
  }
  try {
    const scan = scanChunk(dir, file, fd, maxItemBytes, firstSeq);
    if (scan.torn) fs.ftruncateSync(fd, scan.end);
    return ChunkWriter.resume(dir, chunk, fd, scan.end, scan.count);
  } catch (error) {
    fs.closeSync(fd);
    if (error instanceof QueueError) throw error;
    throw ioError(dir, 'cutting off a torn tail', error, file);
  }
}
