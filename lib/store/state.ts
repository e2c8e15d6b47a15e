// The shared state of a queue directory that several processes use at once:
// where the head is, which items are handed out and to whom. It lives in the
// file `state`, read and written only under the directory lock, in one of two
// slots (A/B): a write goes to the slot not holding the newest valid state, so
// a torn write (power loss) only ever loses that newest update, and a reader
// without the lock (`size`, a poll) sees one whole state or the one before.
//
// The durable record of what is done stays the cursor (cursor.ts): `state` is
// the hand-out bookkeeping, and everything in it can be rebuilt conservatively
// (items handed out again, never skipped) when it is lost.

import fs from 'node:fs';
import path from 'node:path';
import { crc32c } from './crc32c.js';
import { ioError } from '../errors.js';
import { closeQuietly, isFileAt, startsWithMagic, type Inode } from '../fs/files.js';
import { countOf, dropBelow, endOf, forgetDone, gapsBetween, insertRange, subtractRanges, type Range } from './ranges.js';
import type { Delivery } from './deliveries.js';
import { countDue, type Delayed } from './delays.js';

export const STATE_FILE = 'state';
/**
 * Layout: an 8-byte header (magic, the slot size) and two slots. Slots start
 * at 4 KiB and grow (doubling, both rewritten) when a state does not fit, so
 * the file stays small while a handful of items are handed out.
 */
const HEADER_BYTES = 8;
const FILE_MAGIC = 0x46535150; // 'PQSF' little-endian
export const INITIAL_SLOT_BYTES = 4096;
/** One read takes the fixed fields and typical tables at once. */
const FIRST_READ_BYTES = 4096;
/** 'PQS3' little-endian (format 2's 'PQS2' and format 1's 'PQST' slots count as no state: rebuilt). */
const MAGIC = 0x33535150;
/** magic, length, gen, flags, ackSeq, headSeq, headChunk, headBytes, readSeq, readOffset, nextConsumer, rewrites, lastSeen, five counts, crc */
const FIXED_BYTES = 4 + 4 + 8 + 4 + 8 + 8 + 8 + 8 + 8 + 8 + 8 + 8 + 8 + 20 + 4;
const RANGE_BYTES = 12;
/** A delayed item: f64 seq, f64 due time. */
const DELAYED_BYTES = 16;

export interface ConsumerRow {
  id: number;
  /** Items handed out to this consumer and not yet acknowledged, in hand-out order. */
  held: Range[];
}

export interface SharedState {
  /** Bumped by every write: a process whose cached copy has this gen need not re-read. */
  gen: number;
  /** Set while a holder has changed files it has not yet published: its death needs recovery. */
  dirty: boolean;
  /** The acknowledged prefix, as the cursor holds it: items before it are done. */
  ackSeq: number;
  /** The next sequence number to append. */
  headSeq: number;
  /** The chunk holding the newest records and its size in bytes (-1 and 0: none). */
  headChunk: number;
  headBytes: number;
  /** The next item never handed out, and its byte offset in its chunk (valid while readSeq < headSeq). */
  readSeq: number;
  readOffset: number;
  nextConsumer: number;
  /**
   * Bumped when a chunk file is replaced (repair): every process drops the
   * descriptors it holds on chunks, which may be the old files.
   */
  rewrites: number;
  /** When a consumer last took, acknowledged or gave back an item, ms since the epoch (0: not since the state was made). */
  lastSeen: number;
  /** Items handed out to consumers that are gone: handed out again before readSeq, lowest first. */
  returned: Range[];
  consumers: ConsumerRow[];
  /**
   * Items above ackSeq already acknowledged (a lower item is still out),
   * sorted. Durable in the cursor log; here so that a fold can write them
   * into the cursor file and a reader skips them.
   */
  acked: Range[];
  /** Items handed out more than once and not yet acknowledged, with their counts, sorted (deliveries.ts). */
  redelivered: Delivery[];
  /** Items given back with a delay (nack): handed out again once due, sorted by due time (delays.ts). */
  delayed: Delayed[];
}

/** A state rebuilt from the cursor alone: readSeq's offset is not known (it may lie inside a chunk). */
export function initialState(ackSeq: number): SharedState {
  return {
    gen: 0,
    dirty: false,
    ackSeq,
    headSeq: ackSeq,
    headChunk: -1,
    headBytes: 0,
    readSeq: ackSeq,
    readOffset: -1,
    nextConsumer: 1,
    rewrites: 0,
    lastSeen: 0,
    returned: [],
    consumers: [],
    acked: [],
    redelivered: [],
    delayed: [],
  };
}

/** Items not yet handed out: after the read position, and handed back. */
export function waitingIn(state: SharedState): number {
  return state.headSeq - state.readSeq + countOf(state.returned) + countDue(state.delayed, Date.now());
}

/** Items handed out and not yet acknowledged, by every consumer. */
export function heldIn(state: SharedState): number {
  let held = 0;
  for (const row of state.consumers) held += countOf(row.held);
  return held;
}

/** Whether `file` is a state file perq wrote (its header's magic). */
export function isStateFile(file: string): boolean {
  return startsWithMagic(file, FILE_MAGIC);
}

/**
 * Makes `state` agree with its `acked` list (items above the prefix that are
 * acknowledged, perhaps by a process that died before it published): none of
 * them is held or waits any longer, and where they reach past readSeq the
 * items in between that are not acknowledged wait again, handed back.
 */
export function applyAcknowledged(state: SharedState): void {
  dropBelow(state.acked, state.ackSeq);
  dropBelow(state.returned, state.ackSeq);
  subtractRanges(state.returned, state.acked);
  for (const row of state.consumers) {
    dropBelow(row.held, state.ackSeq);
    subtractRanges(row.held, state.acked);
  }
  forgetDone(state.redelivered, state.ackSeq, state.acked);
  forgetDone(state.delayed, state.ackSeq, state.acked);
  const top = Math.min(endOf(state.acked), state.headSeq);
  if (top > state.readSeq) {
    for (const gap of gapsBetween(state.readSeq, top, state.acked)) insertRange(state.returned, gap);
    state.readSeq = top;
    state.readOffset = -1;
  }
}

/** The `state` file of one directory, kept open. */
export class StateFile {
  readonly file: string;
  #dir: string;
  #fd: number;
  /** The inode `#fd` is open on, to tell whether `state` is still that file. */
  #inode: Inode;
  /** The slot holding the newest state read or written (0 or 1). */
  #slot = 1;
  #slotBytes = INITIAL_SLOT_BYTES;
  /** One per slot: both are read before either is decoded. */
  #slotBuffers = [Buffer.allocUnsafe(FIRST_READ_BYTES), Buffer.allocUnsafe(FIRST_READ_BYTES)];
  /** The header and both slots while they are INITIAL_SLOT_BYTES. */
  #whole = Buffer.allocUnsafe(HEADER_BYTES + 2 * INITIAL_SLOT_BYTES);

  /**
   * Every write changes the file's length by one byte (on a network file
   * system: another client drops its cached pages of a file at once only
   * when its length changes; see coherence.ts).
   */
  readonly changesLength: boolean;

  constructor(dir: string, changesLength = false) {
    this.changesLength = changesLength;
    this.#dir = dir;
    this.file = path.join(dir, STATE_FILE);
    this.#fd = this.#open();
    this.#inode = fs.fstatSync(this.#fd);
  }

  /**
   * Whether `state` in the directory is the file this process has open. The
   * open descriptor keeps its inode from being reused, so a match also tells
   * that the directory is still the one this process opened.
   */
  isCurrent(): boolean {
    return isFileAt(this.file, this.#inode);
  }

  /**
   * Under the lock, when `state` was deleted or replaced since this process
   * opened it: opens the file now there (creating it when absent). Without
   * this, a process would go on reading and writing a deleted inode while the
   * others share a new file, each with its own idea of where the head is:
   * appends would overwrite each other.
   */
  reopen(): void {
    // Open the new file before closing the old: should the open fail (the
    // directory is gone), #fd must not keep a closed number the process may
    // reuse for another file, which later writes would then damage.
    const fd = this.#open();
    this.close();
    this.#fd = fd;
    this.#inode = fs.fstatSync(this.#fd);
    this.#slot = 1;
    this.#slotBytes = INITIAL_SLOT_BYTES;
  }

  /** The newest valid state, or null when the file holds none (new, or both slots damaged). */
  read(): SharedState | null {
    // Small slots (the usual case): the header and both slots in one read.
    if (this.#slotBytes === INITIAL_SLOT_BYTES) {
      const got = this.#pread(this.#whole, this.#whole.length, 0);
      if (got < HEADER_BYTES || this.#whole.readUInt32LE(0) !== FILE_MAGIC) return null;
      if (this.#whole.readUInt32LE(4) === INITIAL_SLOT_BYTES) {
        return this.#newestOf((slot) =>
          slotIn(this.#whole, this.#slotOffset(slot), Math.min(got, this.#slotOffset(slot + 1)), INITIAL_SLOT_BYTES),
        );
      }
    }
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    if (this.#pread(header, HEADER_BYTES, 0) < HEADER_BYTES || header.readUInt32LE(0) !== FILE_MAGIC) return null;
    const slotBytes = header.readUInt32LE(4);
    if (slotBytes < INITIAL_SLOT_BYTES || slotBytes > 0x4000_0000) return null;
    this.#slotBytes = slotBytes;
    return this.#newestOf((slot) => this.#readSlot(slot));
  }

  /**
   * The valid state with the higher gen of the two slots (and remembers its
   * slot). The slot whose gen field is higher is decoded first, and when it
   * is whole the other need not be: its state is older.
   */
  #newestOf(slotState: (slot: number) => SlotState): SharedState | null {
    const slots = [slotState(0), slotState(1)];
    const first = slots[1].gen > slots[0].gen ? 1 : 0;
    for (const slot of [first, 1 - first]) {
      const state = slots[slot].decode();
      if (state !== null) {
        this.#slot = slot;
        return state;
      }
    }
    return null;
  }

  /** Writes `state` into the other slot; it becomes the newest. */
  write(state: SharedState): void {
    const bytes = encodeState(state);
    if (bytes.length > this.#slotBytes) return this.#grow(bytes);
    const slot = 1 - this.#slot;
    this.#pwrite(bytes, this.#slotOffset(slot));
    this.#slot = slot;
    if (this.changesLength) {
      try {
        fs.ftruncateSync(this.#fd, this.#slotOffset(2) + (state.gen % 2));
      } catch (error) {
        throw ioError(this.#dir, 'writing the state file', error, this.file);
      }
    }
  }

  /** The descriptor (for coherence.ts's syncs and fstats). */
  get fd(): number {
    return this.#fd;
  }

  close(): void {
    closeQuietly(this.#fd); // nothing unwritten is held by a descriptor we only pwrite through
  }

  #open(): number {
    try {
      return fs.openSync(this.file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    } catch (error) {
      throw ioError(this.#dir, 'opening the state file', error, this.file);
    }
  }

  /** Moves to slots big enough for `bytes`: both slots first, then the header that points at them. */
  #grow(bytes: Buffer): void {
    let slotBytes = this.#slotBytes;
    while (slotBytes < bytes.length) slotBytes *= 2;
    this.#slotBytes = slotBytes;
    this.#pwrite(bytes, this.#slotOffset(1));
    this.#pwrite(bytes, this.#slotOffset(0));
    this.#writeHeader();
    this.#slot = 0;
  }

  /**
   * A new file gets its header before its first state, and its full length
   * (two slots), so that reading both slots takes one read: a file that ends
   * inside the read costs a second one to find its end.
   */
  #writeHeader(): void {
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    header.writeUInt32LE(FILE_MAGIC, 0);
    header.writeUInt32LE(this.#slotBytes, 4);
    this.#pwrite(header, 0);
    try {
      if (fs.fstatSync(this.#fd).size < this.#slotOffset(2)) fs.ftruncateSync(this.#fd, this.#slotOffset(2));
    } catch (error) {
      throw ioError(this.#dir, 'writing the state file', error, this.file);
    }
  }

  #slotOffset(slot: number): number {
    return HEADER_BYTES + slot * this.#slotBytes;
  }

  #readSlot(slot: number): SlotState {
    const at = this.#slotOffset(slot);
    const got = this.#pread(this.#slotBuffers[slot], Math.min(FIRST_READ_BYTES, this.#slotBytes), at);
    const first = slotIn(this.#slotBuffers[slot], 0, got, this.#slotBytes);
    if (first === NO_SLOT_STATE) return first;
    const length = this.#slotBuffers[slot].readUInt32LE(4);
    if (length <= got) return first;
    // Longer than the first read: read whole, once it is wanted.
    return {
      gen: first.gen,
      decode: () => {
        if (length > this.#slotBuffers[slot].length) this.#slotBuffers[slot] = Buffer.allocUnsafe(length);
        const buffer = this.#slotBuffers[slot];
        return this.#pread(buffer, length, at) < length ? null : decodeState(buffer.subarray(0, length));
      },
    };
  }

  #pwrite(bytes: Buffer, position: number): void {
    let done = 0;
    try {
      while (done < bytes.length) done += fs.writeSync(this.#fd, bytes, done, bytes.length - done, position + done);
    } catch (error) {
      throw ioError(this.#dir, 'writing the state file', error, this.file);
    }
  }

  #pread(buffer: Buffer, length: number, position: number): number {
    let done = 0;
    try {
      while (done < length) {
        const n = fs.readSync(this.#fd, buffer, done, length - done, position + done);
        if (n === 0) break;
        done += n;
      }
    } catch (error) {
      throw ioError(this.#dir, 'reading the state file', error, this.file);
    }
    return done;
  }

  /** Makes sure the file has its header (a new or damaged file). */
  ensureHeader(): void {
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    if (this.#pread(header, HEADER_BYTES, 0) === HEADER_BYTES && header.readUInt32LE(0) === FILE_MAGIC) return;
    this.#slotBytes = INITIAL_SLOT_BYTES;
    this.#writeHeader();
  }
}

/** A slot as read: its gen field (to choose which to decode first) and its decoding. */
interface SlotState {
  gen: number;
  /** The whole state, or null when the slot is damaged or holds none. */
  decode(): SharedState | null;
}

const NO_SLOT_STATE: SlotState = { gen: -1, decode: () => null };

/**
 * The slot that starts at `at` in `b`, whose bytes are valid up to `end`
 * (a slot holds at most `slotBytes`).
 * Its gen is not trusted until decode checks the CRC.
 */
function slotIn(b: Buffer, at: number, end: number, slotBytes: number): SlotState {
  if (end - at < FIXED_BYTES || b.readUInt32LE(at) !== MAGIC) return NO_SLOT_STATE;
  const length = b.readUInt32LE(at + 4);
  if (length < FIXED_BYTES || length > slotBytes) return NO_SLOT_STATE;
  const gen = b.readDoubleLE(at + 8);
  if (length > end - at) return { gen, decode: () => null };
  return { gen, decode: () => decodeState(b.subarray(at, at + length)) };
}

export function encodeState(state: SharedState): Buffer {
  const ranges =
    state.returned.length + state.acked.length + state.redelivered.length + state.consumers.reduce((sum, row) => sum + row.held.length, 0);
  const length = FIXED_BYTES + ranges * RANGE_BYTES + state.consumers.length * 8 + state.delayed.length * DELAYED_BYTES;
  const b = Buffer.allocUnsafe(length);
  let at = 0;
  at = b.writeUInt32LE(MAGIC, at);
  at = b.writeUInt32LE(length, at);
  at = b.writeDoubleLE(state.gen, at);
  at = b.writeUInt32LE(state.dirty ? 1 : 0, at);
  at = b.writeDoubleLE(state.ackSeq, at);
  at = b.writeDoubleLE(state.headSeq, at);
  at = b.writeDoubleLE(state.headChunk, at);
  at = b.writeDoubleLE(state.headBytes, at);
  at = b.writeDoubleLE(state.readSeq, at);
  at = b.writeDoubleLE(state.readOffset, at);
  at = b.writeDoubleLE(state.nextConsumer, at);
  at = b.writeDoubleLE(state.rewrites, at);
  at = b.writeDoubleLE(state.lastSeen, at);
  at = b.writeUInt32LE(state.returned.length, at);
  at = b.writeUInt32LE(state.consumers.length, at);
  at = b.writeUInt32LE(state.acked.length, at);
  at = b.writeUInt32LE(state.redelivered.length, at);
  at = b.writeUInt32LE(state.delayed.length, at);
  for (const range of state.returned) at = writeRange(b, at, range);
  for (const range of state.acked) at = writeRange(b, at, range);
  for (const { seq, deliveries } of state.redelivered) at = writeRange(b, at, { start: seq, count: deliveries });
  for (const { seq, due } of state.delayed) {
    at = b.writeDoubleLE(seq, at);
    at = b.writeDoubleLE(due, at);
  }
  for (const row of state.consumers) {
    at = b.writeUInt32LE(row.id, at);
    at = b.writeUInt32LE(row.held.length, at);
    for (const range of row.held) at = writeRange(b, at, range);
  }
  b.writeUInt32LE(crc32c(b, 0, at), at);
  return b;
}

export function decodeState(b: Buffer): SharedState | null {
  const length = b.length;
  if (length < FIXED_BYTES || crc32c(b, 0, length - 4) !== b.readUInt32LE(length - 4)) return null;
  let at = 8;
  const next = (): number => {
    const value = b.readDoubleLE(at);
    at += 8;
    return value;
  };
  const gen = next();
  const dirty = b.readUInt32LE(at) === 1;
  at += 4;
  const state: SharedState = {
    gen,
    dirty,
    ackSeq: next(),
    headSeq: next(),
    headChunk: next(),
    headBytes: next(),
    readSeq: next(),
    readOffset: next(),
    nextConsumer: next(),
    rewrites: next(),
    lastSeen: next(),
    returned: [],
    consumers: [],
    acked: [],
    redelivered: [],
    delayed: [],
  };
  const returned = b.readUInt32LE(at);
  const consumers = b.readUInt32LE(at + 4);
  const acked = b.readUInt32LE(at + 8);
  const redelivered = b.readUInt32LE(at + 12);
  const delayed = b.readUInt32LE(at + 16);
  at += 20;
  try {
    for (let i = 0; i < returned; i++) at = readRange(b, at, state.returned);
    for (let i = 0; i < acked; i++) at = readRange(b, at, state.acked);
    const counts: Range[] = [];
    for (let i = 0; i < redelivered; i++) at = readRange(b, at, counts);
    for (const { start, count } of counts) state.redelivered.push({ seq: start, deliveries: count });
    if (at + delayed * DELAYED_BYTES > length - 4) return null;
    for (let i = 0; i < delayed; i++, at += DELAYED_BYTES) state.delayed.push({ seq: b.readDoubleLE(at), due: b.readDoubleLE(at + 8) });
    for (let i = 0; i < consumers; i++) {
      const row: ConsumerRow = { id: b.readUInt32LE(at), held: [] };
      const held = b.readUInt32LE(at + 4);
      at += 8;
      for (let j = 0; j < held; j++) at = readRange(b, at, row.held);
      state.consumers.push(row);
    }
  } catch {
    return null;
  }
  return at === length - 4 ? state : null;
}

function writeRange(b: Buffer, at: number, range: Range): number {
  at = b.writeDoubleLE(range.start, at);
  return b.writeUInt32LE(range.count, at);
}

function readRange(b: Buffer, at: number, into: Range[]): number {
  if (at + RANGE_BYTES > b.length - 4) throw new RangeError('range past the end');
  into.push({ start: b.readDoubleLE(at), count: b.readUInt32LE(at + 8) });
  return at + RANGE_BYTES;
}
