// The on-disk state of one queue directory as one process sees it, changed
// only under the directory lock (hold.ts decides when that is held). The
// files: chunk files of checksummed records; the cursor (the acknowledged
// prefix, durable); and `state` (state.ts), the hand-out bookkeeping that the
// processes sharing the directory read when they take the lock and publish
// when they let it go. All I/O of the queue happens here or below; the public
// class above only waits, validates and wakes.
//
// Sequence numbers: item s lives in chunk floor(s / chunkSize). Invariant:
// ackSeq <= every item handed out and not acknowledged, every returned item,
// and readSeq <= headSeq. [readSeq, headSeq) and the returned items wait.
//
// A holder marks the state dirty before it first changes a file and clean
// when it publishes. A dirty state found on taking the lock means its last
// holder died in between: the next holder adopts the whole records that holder
// appended (scanning on from the published head, cutting a torn tail), and
// hands out again the items it took, so a put that resolved is never lost.

import fs from 'node:fs';
import path from 'node:path';
import { ChunkReader, ChunkWriter, chunkExists, chunkPath, parseChunkFileName, resumeChunk } from './chunk.js';
import { CURSOR_FILE, CURSOR_LOG_FILE, CursorWriter, loadCursor, writeCursorFile, type CursorState } from './cursor.js';
import { Durability } from './durability.js';
import { QueueError, ioError } from './errors.js';
import { INFO_FILE, readInfo, writeInfo } from './info.js';
import { CONSUMERS_DIR, Lease, leaseAlive, leasePath, removeLease } from './lease.js';
import { FLOCK_FILE, LOCKFILE_DIR } from './lock.js';
import type { ResolvedOptions } from './options.js';
import { HEADER_BYTES, frameSize, sealFrame, writeFrame } from './record.js';
import { BUILTIN_SERIALIZERS, encodesInPlace, resolveSerializer, type InPlaceSerializer, type Serializer } from './serializers.js';
import { SpareChunks } from './spares.js';
import {
  STATE_FILE, StateFile, appendHeld, countFrom, countOf, dropBelow, initialState, insertRange, lowestOf, shiftHeld,
  type ConsumerRow, type SharedState,
} from './state.js';

/** The write buffer starts at 64 KiB and grows for larger batches. */
const INITIAL_WRITE_BUFFER = 64 * 1024;
/** Bytes encoded before they are written, for batches within one chunk. */
const WRITE_BATCH_BYTES = 1024 * 1024;
/**
 * Fold the newest chunk number into the cursor file every this many chunks,
 * bounding the probe on open when `state` is lost (a valid `state` names the
 * newest chunk itself). Not more often: a fold creates a file and frees the
 * old cursor's inode, and freed inodes make creating chunks dearer on some
 * file systems (see spares.ts).
 */
export const HINT_EVERY_CHUNKS = 1024;
/** write-file-atomic's temporary files (name + '.' + a murmur hash), left behind only by a crash mid-write. */
const ATOMIC_TEMP = /^(info|cursor)\.\d+$/;

/** What a holder changed, for the wake-ups of other processes. */
export interface StoreEvents {
  /** Items became available: appended, or returned from a consumer that is gone. */
  added: boolean;
  /** Items were handed out (room for a put waiting at maxSize). */
  taken: boolean;
  /** The acknowledged prefix moved (for join). */
  acknowledged: boolean;
}

/** A lock-free look at the shared counters. */
export interface StoreSnapshot {
  waiting: number;
  headSeq: number;
  ackSeq: number;
  readSeq: number;
}

export class QueueStore {
  readonly dir: string;
  readonly chunkSize: number;
  readonly serializer: Serializer;
  readonly durability: Durability;
  #options: ResolvedOptions;
  #cursor: CursorWriter;
  #stateFile: StateFile;
  /** The shared state: authoritative while the lock is held, a cache otherwise. */
  #state: SharedState;
  /** Changed since the last publish. */
  #changed = false;
  /** The dirty mark is on disk for the changes since the last publish. */
  #marked = false;
  #events: StoreEvents = { added: false, taken: false, acknowledged: false };
  /** The chunk this process last appended to; re-synced with the state before each append. */
  #writer: ChunkWriter | null = null;
  #reader: ChunkReader | null = null;
  /** Where the record after the last one read starts, to read a run of returned items without a hop each. */
  #nextSeq = -1;
  #nextOffset = 0;
  #lease: Lease | null = null;
  #spares: SpareChunks;
  #writeBuffer = Buffer.allocUnsafe(INITIAL_WRITE_BUFFER);
  /** The serializer again when it can write items straight into #writeBuffer. */
  #inPlace: InPlaceSerializer | null;

  private constructor(
    dir: string, options: ResolvedOptions, serializer: Serializer, chunkSize: number,
    cursor: CursorWriter, stateFile: StateFile, state: SharedState, durability: Durability,
  ) {
    this.dir = dir;
    this.chunkSize = chunkSize;
    this.serializer = serializer;
    this.#inPlace = encodesInPlace(serializer) ? serializer : null;
    this.durability = durability;
    this.#options = options;
    this.#cursor = cursor;
    this.#stateFile = stateFile;
    this.#state = state;
    this.#spares = new SpareChunks(dir);
  }

  /** Opens (creating when absent) the queue in `dir`; the caller holds the directory lock. */
  static open(dir: string, options: ResolvedOptions): QueueStore {
    const { chunkSize, serializer } = openInfo(dir, options);
    const cursorState = recoverCursor(dir, chunkSize, options);
    const durable = options.fsync !== 'never';
    removeAcknowledgedChunks(dir, Math.floor(cursorState.ackSeq / chunkSize));
    const stateFile = new StateFile(dir);
    let cursor: CursorWriter | undefined;
    try {
      cursor = new CursorWriter(dir, cursorState, durable);
      const durability = new Durability(options.fsync, dir, (error) => ioError(dir, 'fsync', error));
      const stored = stateFile.read();
      if (stored === null) stateFile.ensureHeader();
      const state = stored ?? initialState(cursorState.ackSeq);
      const store = new QueueStore(dir, options, serializer, chunkSize, cursor, stateFile, state, durability);
      // Open scans the newest chunk whatever the state says, as a queue without
      // one would: a state from before a crash or power loss may lag the files,
      // and damage near the head is found now rather than at a later get.
      // Without a state, the newest chunk is looked up in a listing: probing
      // forward from the cursor's hint would stop at the first missing chunk
      // and take the chunks past it for absent.
      store.#recover(true, Math.max(cursorState.headHint, stored === null ? newestChunkListed(dir) : state.headChunk));
      store.#removeOrphanLeases();
      // Items of consumers that died count as waiting from the start (size, peek).
      store.reclaimDead();
      store.publish();
      return store;
    } catch (error) {
      cursor?.closeLog();
      stateFile.close();
      throw error;
    }
  }

  get headSeq(): number {
    return this.#state.headSeq;
  }

  get readSeq(): number {
    return this.#state.readSeq;
  }

  get ackSeq(): number {
    return this.#state.ackSeq;
  }

  /** Items waiting to be handed out, as of the cached state. */
  get waiting(): number {
    return waitingIn(this.#state);
  }

  /**
   * Items waiting, counting those that consumers now gone still hold (they
   * will be handed out again, to whoever asks next), as of the cached state.
   * Probes the lease of each other consumer that holds items.
   */
  waitingCountingGone(): number {
    return this.#waitingCountingGone(this.#state);
  }

  /** The shared counters, read without the lock (the newest whole state); `waiting` as waitingCountingGone. */
  snapshot(): StoreSnapshot {
    const state = this.#stateFile.read() ?? this.#state;
    return { waiting: this.#waitingCountingGone(state), headSeq: state.headSeq, ackSeq: state.ackSeq, readSeq: state.readSeq };
  }

  #waitingCountingGone(state: SharedState): number {
    let waiting = waitingIn(state);
    for (const row of state.consumers) {
      if (row.held.length > 0 && this.#isDeadOther(row)) waiting += countFrom(row.held, state.ackSeq);
    }
    return waiting;
  }

  /** The lock was just taken: bring the cached state up to date, recovering after a holder that died. */
  refresh(): void {
    // What is on disk now is the truth: nothing of an earlier hold is pending
    // (a publish that failed left its changes unpublished, and its mark, if
    // any, for this read to find).
    this.#changed = false;
    this.#marked = false;
    if (this.#stateFile.reopenIfReplaced()) this.#reader?.invalidate();
    const stored = this.#stateFile.read();
    if (stored === null) {
      // Removed or damaged behind our back: rebuild it from the files.
      this.#stateFile.ensureHeader();
      this.#state = initialState(this.#cursorAckSeq());
      this.#recover(true, Math.max(this.#cursor.state.headHint, newestChunkListed(this.dir)));
      return;
    }
    if (stored.gen !== this.#state.gen) this.#reader?.invalidate();
    this.#state = stored;
    if (stored.dirty) this.#recover(false, stored.headChunk);
  }

  /** Writes the state back if this holder changed it (before the lock is let go). */
  publish(): void {
    if (!this.#changed) return;
    this.#state.gen++;
    this.#state.dirty = false;
    this.#stateFile.write(this.#state);
    this.#changed = false;
    this.#marked = false;
  }

  /** What changed since the last call. */
  takeEvents(): StoreEvents {
    const events = this.#events;
    this.#events = { added: false, taken: false, acknowledged: false };
    return events;
  }

  /**
   * Encodes and appends `items` in order, one write per chunk they span (or
   * per WRITE_BATCH_BYTES). All or nothing: an item that cannot be encoded
   * (ERR_SERIALIZE), is too large, or a failed write rolls back what the call
   * had written, so the queue is exactly as it was.
   */
  append(items: readonly unknown[]): void {
    if (items.length === 0) return;
    const state = this.#state;
    this.#syncWriter();
    const before = {
      headSeq: state.headSeq, headChunk: state.headChunk, headBytes: state.headBytes,
      writer: this.#writer, size: this.#writer?.size ?? 0, count: this.#writer?.count ?? 0,
    };
    // Encode the first item before marking anything: a refused item leaves no trace.
    let length = this.#frame(items[0], 0);
    this.#markChanged();
    const created: ChunkWriter[] = [];
    let item = 1;
    let framed = 1;
    try {
      for (;;) {
        const writer = this.#writableChunk(created);
        const room = this.chunkSize - writer.count;
        while (framed < room && item < items.length && length < WRITE_BATCH_BYTES) {
          length = this.#frame(items[item], length);
          framed++;
          item++;
        }
        writer.append(this.#writeBuffer, length, framed);
        state.headSeq += framed;
        state.headChunk = writer.chunk;
        state.headBytes = writer.size;
        if (item >= items.length) break;
        length = this.#frame(items[item], 0);
        framed = 1;
        item++;
      }
    } catch (error) {
      this.#rollBack(before, created);
      throw error;
    }
    // Every chunk written to needs its sync (a putMany can span several),
    // marked before #retire releases the full ones.
    if (before.writer !== null && before.writer.size !== before.size) this.durability.touch(before.writer.fd);
    for (const writer of created) this.durability.touch(writer.fd);
    if (created.length > 0) this.#retire(before.writer, created);
    this.#events.added = true;
  }

  /**
   * Hands out up to `max` waiting items, returned ones first. `consumer`:
   * record them as held by this process's consumer (false: autosave, they
   * count as acknowledged at once).
   */
  take(max: number, consumer: boolean): { values: unknown[]; seqs: number[] } {
    const state = this.#state;
    const values: unknown[] = [];
    const seqs: number[] = [];
    if (this.waiting === 0) return { values, seqs };
    // Handing out to a consumer changes only the state: lost unpublished,
    // the items simply wait again. Autosave moves the cursor, which the
    // dirty mark must cover.
    if (consumer) this.#changed = true;
    else this.#markChanged();
    const row = consumer ? this.#ensureConsumer() : undefined;
    while (values.length < max) {
      const fromReturned = state.returned.length > 0;
      if (!fromReturned && state.readSeq >= state.headSeq) break;
      const seq = fromReturned ? state.returned[0].start : state.readSeq;
      let value: unknown;
      let next: number;
      try {
        ({ value, next } = this.#readItem(seq, fromReturned ? -1 : state.readOffset));
      } catch (error) {
        // Hand out what was read; the damaged record fails again on the next call.
        if (values.length > 0) break;
        throw error;
      }
      if (fromReturned) shiftHeld(state.returned);
      else {
        state.readSeq++;
        state.readOffset = state.readSeq % this.chunkSize === 0 ? 0 : next;
      }
      if (row !== undefined) appendHeld(row.held, seq, 1);
      values.push(value);
      seqs.push(seq);
    }
    if (values.length > 0) this.#events.taken = true;
    if (row === undefined) this.#advanceAck();
    return { values, seqs };
  }

  /** The next item a take would hand out, without taking it; undefined when none waits. */
  peek(): unknown {
    const state = this.#state;
    if (state.returned.length > 0) return this.#readItem(state.returned[0].start, -1).value;
    if (state.readSeq >= state.headSeq) return undefined;
    return this.#readItem(state.readSeq, state.readOffset).value;
  }

  /**
   * Acknowledges this consumer's `count` oldest held items and persists the
   * new acknowledged prefix, if it moved. False when this consumer holds
   * nothing (its items were cleared, or returned after it was taken for dead).
   */
  acknowledgeOldest(count = 1): boolean {
    const row = this.#myRow();
    if (row === undefined || row.held.length === 0) return false;
    const floor = this.#ackFloor();
    // The prefix moves: the cursor is written, under the dirty mark. Above the
    // prefix (a lower item is still out) the acknowledgement lives only in the
    // state: published now, so that a resolved taskDone survives this process
    // dying before the hold ends. No dirty mark is needed there: until this
    // write the old state stands, and it is whole.
    const movesPrefix = row.held[0].start <= floor || floor > this.#state.ackSeq;
    if (movesPrefix) this.#markChanged();
    else this.#changed = true;
    // Fewer may be held than counted (another process's clear()): those go.
    for (let i = 0; i < count; i++) if (shiftHeld(row.held) === undefined) break;
    if (movesPrefix) this.#advanceAck();
    else this.publish();
    return true;
  }

  /**
   * Without the lock: whether another consumer holds items and looks dead, so
   * that a waiting getter should take the lock and reclaim them.
   */
  deadHolderSuspected(): boolean {
    const state = this.#stateFile.read() ?? this.#state;
    return state.consumers.some((row) => row.held.length > 0 && this.#isDeadOther(row));
  }

  /**
   * Hands the items of consumers whose process is gone back for others to
   * take. Returns whether any came back.
   */
  reclaimDead(): boolean {
    const dead = this.#state.consumers.filter((row) => this.#isDeadOther(row));
    if (dead.length === 0) return false;
    this.#markChanged();
    let returned = false;
    for (const row of dead) {
      returned = this.#handBack(row) || returned;
      removeLease(this.dir, row.id);
    }
    return returned;
  }

  /** Gives this process's held items back and ends its lease (closing). */
  endConsumer(): void {
    if (this.#lease === null) return;
    const row = this.#myRow();
    this.#markChanged();
    if (row !== undefined) this.#handBack(row);
    this.#lease.end();
    this.#lease = null;
  }

  /** Removes every item, handed out or not, and the files that held them. */
  clear(): void {
    const state = this.#state;
    this.#markChanged();
    this.#closeReader();
    if (this.#writer !== null) this.durability.release(this.#writer.fd);
    this.#writer = null;
    const lastChunk = state.headChunk >= 0 ? state.headChunk : Math.floor(state.headSeq / this.chunkSize) - 1;
    // Continue at the next chunk boundary: the chunk that held the head is deleted.
    const next = Math.ceil(state.headSeq / this.chunkSize) * this.chunkSize;
    const firstChunk = Math.floor(state.ackSeq / this.chunkSize);
    Object.assign(state, { ackSeq: next, headSeq: next, readSeq: next, readOffset: 0, headChunk: -1, headBytes: 0, returned: [] });
    for (const row of state.consumers) row.held = [];
    // The cursor moves first, so a crash mid-clear leaves only stale chunks
    // below it, which the next open deletes.
    this.#cursor.advance(next);
    this.#cursor.setHeadHint(next / this.chunkSize);
    this.#cursor.fold();
    this.#deleteChunks(firstChunk, lastChunk + 1);
    this.#events.acknowledged = true;
    this.#events.taken = true;
  }

  /** Folds the cursor into its file (the caller holds the lock). */
  foldCursor(): void {
    this.#cursor.advance(this.#state.ackSeq);
    this.#cursor.fold();
  }

  /** Closes every file and completes pending syncs (after the last publish). */
  async close(): Promise<void> {
    this.#closeReader();
    if (this.#writer !== null) this.durability.release(this.#writer.fd);
    this.#writer = null;
    this.#lease?.end();
    this.#lease = null;
    try {
      // The last sync round may still need the log's descriptor.
      await this.durability.close();
    } finally {
      this.#cursor.closeLog();
      this.#stateFile.close();
    }
  }

  /** Before the first change of a hold: mark the state dirty on disk, so a death from here on is recovered. */
  #markChanged(): void {
    this.#changed = true;
    if (this.#marked) return;
    this.#state.gen++;
    this.#stateFile.write({ ...this.#state, dirty: true });
    this.#marked = true;
  }

  /**
   * Brings the head and the cursor in line with the files: after a holder
   * died (dirty), when the state is new, or lags the files after a power loss.
   */
  #recover(rebuild: boolean, headHint: number): void {
    const state = this.#state;
    const ackSeq = Math.max(state.ackSeq, this.#cursorAckSeq());
    if (!rebuild && !state.dirty && this.#headMatchesFiles()) {
      state.ackSeq = ackSeq;
      return;
    }
    this.#markChanged();
    if (this.#writer !== null) this.durability.release(this.#writer.fd);
    this.#writer = null;
    this.#closeReader();
    const { writer, headSeq } = findHead(this.dir, this.chunkSize, { ackSeq, headHint: Math.max(0, headHint) }, this.#options.maxItemBytes);
    state.ackSeq = ackSeq;
    state.headSeq = headSeq;
    state.headChunk = writer?.chunk ?? -1;
    state.headBytes = writer?.size ?? 0;
    if (writer !== null) {
      this.#writer = writer;
      this.#cursor.setHeadHint(writer.chunk);
    }
    if (state.readSeq < ackSeq || state.readSeq > headSeq) {
      state.readSeq = ackSeq;
      state.readOffset = -1;
    }
    dropBelow(state.returned, ackSeq);
    for (const row of state.consumers) dropBelow(row.held, ackSeq);
    this.#events.added = true;
  }

  /** Whether the newest chunk is exactly as long as the state says, and none follows it. */
  #headMatchesFiles(): boolean {
    const state = this.#state;
    const next = state.headChunk >= 0 ? state.headChunk + 1 : Math.floor(state.headSeq / this.chunkSize);
    if (chunkExists(this.dir, next)) return false;
    if (state.headChunk < 0) return true;
    try {
      return fs.statSync(chunkPath(this.dir, state.headChunk)).size === state.headBytes;
    } catch {
      return false;
    }
  }

  #cursorAckSeq(): number {
    const loaded = loadCursor(this.dir);
    return Math.max(loaded.file?.ackSeq ?? 0, loaded.logAckSeq ?? 0);
  }

  /** Lease files with no row: consumers that died before they were registered. */
  #removeOrphanLeases(): void {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(this.dir, CONSUMERS_DIR));
    } catch {
      return;
    }
    const known = new Set(this.#state.consumers.map((row) => String(row.id)));
    for (const name of names) {
      const id = Number(name);
      if (known.has(name) || !Number.isSafeInteger(id)) continue;
      if (!this.#leaseAlive(id)) removeLease(this.dir, id);
    }
  }

  /** Another consumer's row whose lease shows its process gone. */
  #isDeadOther(row: ConsumerRow): boolean {
    return row.id !== this.#lease?.id && !this.#leaseAlive(row.id);
  }

  #leaseAlive(id: number): boolean {
    return leaseAlive(this.dir, id, this.#options.locking, this.#options.staleAfter);
  }

  /** Drops a consumer's row, its unacknowledged items going back to wait; true if there were any. */
  #handBack(row: ConsumerRow): boolean {
    const state = this.#state;
    dropBelow(row.held, state.ackSeq);
    for (const range of row.held) insertRange(state.returned, range);
    state.consumers.splice(state.consumers.indexOf(row), 1);
    if (row.held.length === 0) return false;
    this.#events.added = true;
    return true;
  }

  #myRow(): ConsumerRow | undefined {
    const id = this.#lease?.id;
    if (id === undefined) return undefined;
    return this.#state.consumers.find((row) => row.id === id);
  }

  /** This process's consumer row, registering it (with its lease) on first use. */
  #ensureConsumer(): ConsumerRow {
    const existing = this.#myRow();
    if (existing !== undefined) return existing;
    if (this.#lease !== null) {
      // Our row is gone: another process took us for dead (a lease not touched in time).
      process.emitWarning(`perq queue ${this.dir}: this consumer was taken for dead and its items were handed out again; registering anew`, { code: 'PERQ_LEASE_LOST' });
      this.#lease.end();
      this.#lease = null;
    }
    const state = this.#state;
    // Skip ids with a lease file: after the state was rebuilt, the counter
    // restarts while consumers from before may still live.
    let id = state.nextConsumer++;
    while (fs.existsSync(leasePath(this.dir, id))) id = state.nextConsumer++;
    this.#lease = Lease.take(this.dir, id, this.#options.locking, this.#options.staleAfter);
    const row: ConsumerRow = { id, held: [] };
    state.consumers.push(row);
    return row;
  }

  /** The lowest item still handed out or waiting: where the acknowledged prefix may end. */
  #ackFloor(): number {
    const state = this.#state;
    let floor = Math.min(state.readSeq, lowestOf(state.returned));
    for (const row of state.consumers) floor = Math.min(floor, lowestOf(row.held));
    return floor;
  }

  /** Moves the acknowledged prefix up to the lowest item still handed out or waiting. */
  #advanceAck(): void {
    const state = this.#state;
    const floor = this.#ackFloor();
    if (floor <= state.ackSeq) return;
    const firstChunk = Math.floor(state.ackSeq / this.chunkSize);
    const pastChunk = Math.floor(floor / this.chunkSize);
    this.#cursor.advance(floor);
    this.durability.touch(this.#cursor.logFd);
    state.ackSeq = floor;
    this.#events.acknowledged = true;
    if (pastChunk > firstChunk) {
      this.durability.afterDurable(() => this.#deleteChunks(firstChunk, pastChunk));
    }
  }

  /** Points #writer at the chunk the state says is the head (null when the next append starts a chunk). */
  #syncWriter(): void {
    const state = this.#state;
    const current = this.#writer;
    const full = state.headChunk < 0 || state.headSeq >= (state.headChunk + 1) * this.chunkSize;
    if (full) {
      if (current !== null) this.durability.release(current.fd);
      this.#writer = null;
      return;
    }
    const count = state.headSeq - state.headChunk * this.chunkSize;
    if (current !== null && current.chunk === state.headChunk) {
      // Another process may have appended since: its records end where the state says.
      current.size = state.headBytes;
      current.count = count;
      return;
    }
    if (current !== null) this.durability.release(current.fd);
    this.#writer = null;
    const file = chunkPath(this.dir, state.headChunk);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r+');
    } catch (error) {
      throw ioError(this.dir, 'opening the newest chunk', error, file);
    }
    this.#writer = ChunkWriter.resume(this.dir, state.headChunk, fd, state.headBytes, count);
  }

  /** The chunk to append to: the current one, or a new one once it is full. */
  #writableChunk(created: ChunkWriter[]): ChunkWriter {
    const current = this.#writer;
    if (current !== null && current.count < this.chunkSize) return current;
    const chunk = Math.floor(this.#state.headSeq / this.chunkSize);
    const writer = ChunkWriter.create(this.dir, chunk, this.#spares);
    created.push(writer);
    this.#writer = writer;
    return writer;
  }

  /** After an append that created chunks: release the full ones and move the head hint. */
  #retire(previous: ChunkWriter | null, created: ChunkWriter[]): void {
    if (previous !== null) this.durability.release(previous.fd);
    for (const writer of created) if (writer !== this.#writer) this.durability.release(writer.fd);
    this.durability.touchDirectory();
    const newest = created[created.length - 1].chunk;
    this.#cursor.setHeadHint(newest);
    if (newest - this.#cursor.foldedHeadHint >= HINT_EVERY_CHUNKS) {
      this.#cursor.advance(this.#state.ackSeq);
      this.#cursor.fold();
    }
  }

  /** Undoes a failed append: deletes the chunks it created and cuts the old one back. */
  #rollBack(before: { headSeq: number; headChunk: number; headBytes: number; writer: ChunkWriter | null; size: number; count: number }, created: ChunkWriter[]): void {
    for (const writer of created) {
      writer.close();
      try {
        fs.unlinkSync(writer.file);
      } catch {
        // Left behind, it is an empty or partial chunk past the head; the next create reports it.
      }
    }
    if (before.writer !== null && before.writer.size !== before.size) before.writer.truncate(before.size, before.count);
    this.#writer = before.writer;
    const state = this.#state;
    state.headSeq = before.headSeq;
    state.headChunk = before.headChunk;
    state.headBytes = before.headBytes;
  }

  /** Encodes `item` and frames it into the write buffer at `offset`; returns the offset after it. */
  #frame(item: unknown, offset: number): number {
    if (this.#inPlace !== null) {
      const length = this.#inPlace.encodeInto(item, this.#writeBuffer, offset + HEADER_BYTES);
      if (length !== undefined) {
        if (length > this.#options.maxItemBytes) throw this.#tooLarge(length);
        return sealFrame(this.#writeBuffer, offset, length);
      }
    }
    const payload = this.#encode(item);
    const needed = offset + frameSize(payload.length);
    if (needed > this.#writeBuffer.length) this.#growWriteBuffer(needed, offset);
    return writeFrame(this.#writeBuffer, offset, payload);
  }

  #encode(item: unknown): Uint8Array {
    let payload: Uint8Array;
    try {
      payload = this.serializer.encode(item);
    } catch (error) {
      throw new QueueError('ERR_SERIALIZE', this.dir, `serializer '${this.serializer.name}' cannot encode the item: ${(error as Error)?.message ?? String(error)}`, { cause: error });
    }
    if (!(payload instanceof Uint8Array)) {
      throw new QueueError('ERR_SERIALIZE', this.dir, `serializer '${this.serializer.name}' returned ${typeof payload} instead of a Uint8Array`);
    }
    if (payload.length > this.#options.maxItemBytes) throw this.#tooLarge(payload.length);
    return payload;
  }

  #tooLarge(length: number): QueueError {
    return new QueueError('ERR_ITEM_TOO_LARGE', this.dir, `item encodes to ${length} bytes, more than maxItemBytes (${this.#options.maxItemBytes})`);
  }

  #growWriteBuffer(needed: number, keep: number): void {
    const grown = Buffer.allocUnsafe(Math.max(needed, this.#writeBuffer.length * 2));
    this.#writeBuffer.copy(grown, 0, 0, keep);
    this.#writeBuffer = grown;
  }

  /** Reads and decodes item `seq`, whose offset in its chunk is `offset` (-1: not known, found by hopping). */
  #readItem(seq: number, offset: number): { value: unknown; next: number } {
    const chunk = Math.floor(seq / this.chunkSize);
    if (this.#reader === null || this.#reader.chunk !== chunk) {
      this.#closeReader();
      this.#reader = new ChunkReader(this.dir, chunk, this.#options.maxItemBytes);
    }
    const reader = this.#reader;
    if (offset < 0) offset = this.#nextSeq === seq ? this.#nextOffset : reader.offsetAfterRecords(0, seq % this.chunkSize);
    const record = reader.readAt(offset);
    let value: unknown;
    try {
      value = this.serializer.decode(record.payload);
    } catch (error) {
      throw new QueueError('ERR_CORRUPT', this.dir, `serializer '${this.serializer.name}' cannot decode an intact record: ${(error as Error)?.message ?? String(error)}`, {
        file: reader.file, offset, cause: error,
      });
    }
    this.#nextSeq = (seq + 1) % this.chunkSize === 0 ? -1 : seq + 1;
    this.#nextOffset = record.next;
    return { value, next: record.next };
  }

  #closeReader(): void {
    this.#reader?.close();
    this.#reader = null;
    this.#nextSeq = -1;
  }

  #deleteChunks(from: number, to: number): void {
    for (let chunk = from; chunk < to; chunk++) {
      try {
        this.#spares.recycle(chunkPath(this.dir, chunk));
      } catch {
        // Already gone (another process deleted it) is fine; anything else is swept up by the next open.
      }
    }
    this.durability.touchDirectory();
  }
}

/** Reads the info file, creating the queue when the directory is new. */
function openInfo(dir: string, options: ResolvedOptions): { chunkSize: number; serializer: Serializer } {
  const info = readInfo(dir);
  if (info === null) {
    assertFreshDirectory(dir);
    writeInfo(dir, options.chunkSize, options.serializer.name);
    writeCursorFile(dir, { ackSeq: 0, headHint: 0 }, true);
    return { chunkSize: options.chunkSize, serializer: options.serializer };
  }
  const file = path.join(dir, INFO_FILE);
  if (options.chunkSizeExplicit && options.chunkSize !== info.chunkSize) {
    throw new QueueError('ERR_FORMAT', dir, `the queue was created with chunkSize ${info.chunkSize}, not ${options.chunkSize}; omit chunkSize to use the stored one`, { file });
  }
  let serializer = options.serializer;
  if (options.serializerExplicit) {
    if (serializer.name !== info.serializer) {
      throw new QueueError('ERR_FORMAT', dir, `the queue was created with serializer '${info.serializer}', not '${serializer.name}'`, { file });
    }
  } else if (info.serializer !== serializer.name) {
    if (!(BUILTIN_SERIALIZERS as readonly string[]).includes(info.serializer)) {
      throw new QueueError('ERR_FORMAT', dir, `the queue was created with the custom serializer '${info.serializer}'; pass it as the serializer option`, { file });
    }
    serializer = resolveSerializer(info.serializer, () => new Error('unreachable'));
  }
  return { chunkSize: info.chunkSize, serializer };
}

/** Items not yet handed out: after the read position, and handed back. */
function waitingIn(state: SharedState): number {
  return state.headSeq - state.readSeq + countOf(state.returned);
}

/** A directory without an info file may become a queue only if it holds nothing else. */
function assertFreshDirectory(dir: string): void {
  const names = listDirectory(dir).filter((name) => name !== FLOCK_FILE && name !== LOCKFILE_DIR && name !== STATE_FILE && name !== CONSUMERS_DIR && !ATOMIC_TEMP.test(name));
  if (names.length === 0) return;
  const queueData = names.filter((name) => parseChunkFileName(name) >= 0 || name === CURSOR_FILE || name === CURSOR_LOG_FILE);
  if (queueData.length > 0) {
    throw new QueueError('ERR_CORRUPT', dir, `the info file is missing but the directory holds queue data (${queueData.slice(0, 3).join(', ')}); restore the info file rather than start over`);
  }
  throw new QueueError('ERR_FORMAT', dir, `the directory is not a perq queue and is not empty (it holds ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''}); choose an empty or new directory`);
}

/**
 * The persisted cursor: the larger of the cursor file and its log. When the
 * cursor file is missing or damaged, the cursor is rebuilt from the chunk files
 * and the log, erring towards handing items out again rather than skipping any.
 */
function recoverCursor(dir: string, chunkSize: number, options: ResolvedOptions): CursorState {
  const loaded = loadCursor(dir);
  if (loaded.file !== null) {
    return { ackSeq: Math.max(loaded.file.ackSeq, loaded.logAckSeq ?? 0), headHint: loaded.file.headHint };
  }
  const chunks = listedChunks(dir);
  for (let i = 1; i < chunks.length; i++) {
    if (chunks[i] !== chunks[i - 1] + 1) {
      throw new QueueError('ERR_CORRUPT', dir, `the cursor file is ${loaded.fileStatus} and chunk ${chunks[i - 1] + 1} is missing between others`, { file: chunkPath(dir, chunks[i - 1] + 1) });
    }
  }
  let ackSeq: number;
  if (chunks.length === 0) {
    // No items are left: continue numbering at a chunk boundary after the log's value.
    ackSeq = Math.ceil((loaded.logAckSeq ?? 0) / chunkSize) * chunkSize;
  } else {
    const first = chunks[0] * chunkSize;
    const last = (chunks[chunks.length - 1] + 1) * chunkSize;
    const logged = loaded.logAckSeq;
    ackSeq = logged !== null && logged >= first && logged <= last ? logged : first;
  }
  const state = { ackSeq, headHint: chunks.length > 0 ? chunks[chunks.length - 1] : ackSeq / chunkSize };
  writeCursorFile(dir, state, options.fsync !== 'never');
  process.emitWarning(`perq queue ${dir}: the cursor file was ${loaded.fileStatus}; rebuilt it from the chunk files (items from sequence ${ackSeq} on are handed out, some perhaps again)`, { code: 'PERQ_CURSOR_RECOVERED' });
  return state;
}

/** Deletes chunks below the cursor's chunk that a crash left behind. */
function removeAcknowledgedChunks(dir: string, tailChunk: number): void {
  for (let chunk = tailChunk - 1; chunk >= 0 && chunkExists(dir, chunk); chunk--) {
    try {
      fs.unlinkSync(chunkPath(dir, chunk));
    } catch (error) {
      throw ioError(dir, 'deleting an acknowledged chunk', error, chunkPath(dir, chunk));
    }
  }
}

/**
 * Finds the newest chunk by probing forward from the cursor's hint, scans it
 * (cutting off a torn tail) and returns a writer for it and the head sequence.
 */
function findHead(dir: string, chunkSize: number, state: CursorState, maxItemBytes: number): { writer: ChunkWriter | null; headSeq: number } {
  const tailChunk = Math.floor(state.ackSeq / chunkSize);
  const start = Math.max(tailChunk, state.headHint);
  if (!chunkExists(dir, start)) {
    const missingData = start > tailChunk || state.ackSeq % chunkSize !== 0 || chunkExists(dir, start + 1);
    if (missingData) {
      throw new QueueError('ERR_CORRUPT', dir, 'a chunk file that holds unacknowledged items is missing', { file: chunkPath(dir, start) });
    }
    return { writer: null, headSeq: state.ackSeq };
  }
  let newest = start;
  while (chunkExists(dir, newest + 1)) newest++;
  const writer = resumeChunk(dir, newest, maxItemBytes);
  const headSeq = newest * chunkSize + writer.count;
  if (writer.count > chunkSize) {
    writer.close();
    throw new QueueError('ERR_CORRUPT', dir, `the newest chunk holds ${writer.count} records, more than chunkSize ${chunkSize}`, { file: writer.file });
  }
  if (headSeq < state.ackSeq) {
    writer.close();
    throw new QueueError('ERR_CORRUPT', dir, `the cursor (${state.ackSeq}) points past the last item (${headSeq}): the newest chunk lost records`, { file: writer.file });
  }
  return { writer, headSeq };
}

/** The numbers of the chunk files in `dir`, in order. */
function listedChunks(dir: string): number[] {
  return listDirectory(dir).map(parseChunkFileName).filter((n) => n >= 0).sort((a, b) => a - b);
}

/** The highest chunk number among the files of `dir`; -1 when there is none. */
function newestChunkListed(dir: string): number {
  return listedChunks(dir).at(-1) ?? -1;
}

function listDirectory(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (error) {
    throw ioError(dir, 'listing the queue directory', error);
  }
}
