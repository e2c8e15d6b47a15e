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
import { CURSOR_FILE, CURSOR_LOG_FILE, CursorWriter, acknowledgedIn, isCursorFile, loadCursor, writeCursorFile, type CursorState } from './cursor.js';
import { Durability } from './durability.js';
import type { StoreEvents } from './events.js';
import { QueueError, ioError } from '../errors.js';
import { INFO_FILE, readInfo, writeInfo } from './info.js';
import { CONSUMERS_DIR, Lease, isLeaseFile, leaseAlive, leasePath, prepareLeases, removeLease } from '../coordination/lease.js';
import { FLOCK_FILE, LOCKFILE_DIR } from '../coordination/lock.js';
import { HEADER_BYTES, frameSize, sealFrame, writeFrame } from './record.js';
import { growStaging, releaseStaging, takeStaging } from './crc32c.js';
import { BUILTIN_SERIALIZERS, encodesInPlace, resolveSerializer, type InPlaceSerializer, type Serializer } from '../serializers.js';
import { Coherence, isNetworkFileSystem } from './coherence.js';
import type { StoreOptions } from './options.js';
import { damagedChunk, repairChunk, type QuarantinedStretch } from './repair.js';
import { SpareChunks } from './spares.js';
import {
  appendHeld, countFrom, countOf, dropBelow, endOf, gapsBetween, insertRange, lowestOf, shiftHeld, subtractRanges, type Range,
} from './ranges.js';
import { fileSize, isFileAt, type Inode } from '../fs/files.js';
import { STATE_FILE, StateFile, applyAcknowledged, initialState, isStateFile, type ConsumerRow, type SharedState } from './state.js';

/** The write buffer starts at 64 KiB and grows for larger batches. */
const INITIAL_WRITE_BUFFER = 64 * 1024;
/** #writeBuffer between appends: the staging area is not this store's to keep. */
const NO_BUFFER = Buffer.alloc(0);
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

/** What #readItem finds where an item should be. */
type ItemRead = { kind: 'item'; value: unknown; next: number } | { kind: 'quarantined'; next: number } | { kind: 'missing' };
const MISSING_ITEM: ItemRead = { kind: 'missing' };

/** A waiting item read by #nextWaiting: where it comes from and where its record ends. */
interface NextItem {
  seq: number;
  fromReturned: boolean;
  value: unknown;
  end: number;
}

/** What Queue.repair did. */
export interface RepairReport {
  dir: string;
  /** Chunk files checked (from the acknowledged prefix to the newest). */
  chunks: number;
  /** Each damaged stretch moved into quarantine/ (or missing chunk made again of stand-ins), in order. */
  moved: QuarantinedStretch[];
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
  #options: StoreOptions;
  #cursor: CursorWriter;
  #stateFile: StateFile;
  /** The shared state: authoritative while the lock is held, a cache otherwise. */
  #state: SharedState;
  /** Changed since the last publish. */
  #changed = false;
  /** The dirty mark is on disk for the changes since the last publish. */
  #marked = false;
  /** An acknowledgement above the prefix was published at once in this hold (the next go under the dirty mark). */
  #ackPublishedThisHold = false;
  #events: StoreEvents = { added: false, taken: false, acknowledged: false };
  /** The chunk this process last appended to; re-synced with the state before each append. */
  #writer: ChunkWriter | null = null;
  #reader: ChunkReader | null = null;
  /** Where the record after the last one read starts, to read a run of returned items without a hop each. */
  #nextSeq = -1;
  #nextOffset = 0;
  #lease: Lease | null = null;
  #spares: SpareChunks;
  /** Where append builds its records: crc32c.ts's staging area (shared by every queue of the process), taken by each append and given back at its end. */
  #writeBuffer: Buffer = NO_BUFFER;
  /** The serializer again when it can write items straight into #writeBuffer. */
  #inPlace: InPlaceSerializer | null;
  /** What a holder does so that hosts sharing the directory through a network file system see each other's writes. */
  #coherence: Coherence;
  /** The inode of the `lock` file this process locks, to notice the directory being replaced. */
  #lockInode: Inode | null;

  private constructor(
    dir: string, options: StoreOptions, serializer: Serializer, chunkSize: number,
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
    this.#coherence = new Coherence(dir, stateFile.changesLength);
    this.#spares = new SpareChunks(dir, !this.#coherence.enabled);
    try {
      this.#lockInode = fs.statSync(path.join(dir, FLOCK_FILE));
    } catch {
      // Opened without the lock file (a store used on its own, as in specs): nothing to compare.
      this.#lockInode = null;
    }
  }

  /**
   * Opens (creating when absent) the queue in `dir`; the caller holds the
   * directory lock. With onCorrupt 'quarantine', damage that stops the open
   * (in the newest chunk, a missing newest chunk) is repaired first.
   */
  static open(dir: string, options: StoreOptions): QueueStore {
    try {
      return QueueStore.#openOnce(dir, options);
    } catch (error) {
      if (options.onCorrupt !== 'quarantine' || !(error instanceof QueueError) || error.code !== 'ERR_CORRUPT') throw error;
      const report = QueueStore.repair(dir, options);
      if (report.moved.length === 0) throw error;
      warnQuarantined(dir, report.moved);
      return QueueStore.#openOnce(dir, options);
    }
  }

  static #openOnce(dir: string, options: StoreOptions): QueueStore {
    const network = isNetworkFileSystem(dir);
    // Another host's writes: sizes and small files this client cached are refreshed by a listing.
    if (network) listDirectory(dir);
    const { chunkSize, serializer } = openInfo(dir, options);
    const cursorState = recoverCursor(dir, chunkSize, options);
    const durable = options.fsync !== 'never' || network;
    removeAcknowledgedChunks(dir, Math.floor(cursorState.ackSeq / chunkSize), durable);
    const stateFile = new StateFile(dir, network);
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
      store.#recover(Math.max(cursorState.headHint, stored === null ? newestChunkListed(dir) : state.headChunk));
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

  /**
   * Quarantines every damaged record of the queue in `dir` (the caller holds
   * the lock): the chunks from the acknowledged prefix to the newest, and the
   * chunks missing between them; the processes that have the queue open move
   * to the new files at their next hold. Works where open itself fails.
   */
  static repair(dir: string, options: StoreOptions): RepairReport {
    if (readInfo(dir) === null) throw new QueueError('ERR_FORMAT', dir, 'there is no queue here to repair (no info file)');
    const { chunkSize, serializer } = openInfo(dir, options);
    const cursor = recoverCursor(dir, chunkSize, options, true);
    const tail = Math.floor(cursor.ackSeq / chunkSize);
    const listed = listedChunks(dir).filter((chunk) => chunk >= tail);
    const newest = listed.at(-1) ?? tail - 1;
    const stateFile = new StateFile(dir);
    try {
      const state = stateFile.read();
      let told = false;
      // Before the first file changes, every process that has the queue open
      // is told to drop its descriptors on chunks and scan the head again:
      // a repair cut short must not leave a writer appending to a replaced file.
      const tellOthers = (): void => {
        if (told || state === null) return;
        told = true;
        state.gen++;
        state.rewrites++;
        state.dirty = true;
        stateFile.write(state);
      };
      const check = { chunkSize, maxItemBytes: options.maxItemBytes, decode: (payload: Uint8Array) => serializer.decode(payload), beforeChange: tellOthers };
      const moved: QuarantinedStretch[] = [];
      for (let chunk = tail; chunk <= newest; chunk++) moved.push(...repairChunk(dir, chunk, { ...check, newest: chunk === newest }));
      const lostHead = Math.max(cursor.headHint, state?.headChunk ?? -1);
      if (lostHead > Math.max(newest, tail)) {
        // The newest chunk (or more) is gone: its items are lost, and the queue goes on after the newest there is.
        tellOthers();
        moved.push({ file: chunkPath(dir, lostHead), offset: 0, bytes: 0, firstSeq: (newest + 1) * chunkSize, lastSeq: Math.max((newest + 1) * chunkSize, (state?.headSeq ?? 0) - 1), movedTo: null, reason: 'the newest chunk file was missing' });
        writeCursorFile(dir, { ...cursor, headHint: Math.max(newest, tail) }, options.fsync !== 'never');
        if (state !== null) {
          state.gen++;
          state.headChunk = newest;
          stateFile.write(state);
        }
      }
      return { dir, chunks: newest - tail + 1, moved };
    } finally {
      stateFile.close();
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
    this.#coherence.refresh(this.#stateFile.fd, this.#reader?.fd);
    if (!this.#stateFile.isCurrent()) {
      // `state` was deleted or replaced, or the whole directory was.
      this.#assertSameDirectory();
      this.#stateFile.reopen();
      this.#reader?.invalidate();
    }
    // What is on disk now is the truth: nothing of an earlier hold is pending
    // (a publish that failed left its changes unpublished, and its mark, if
    // any, for this read to find).
    this.#changed = false;
    this.#marked = false;
    this.#ackPublishedThisHold = false;
    const stored = this.#stateFile.read();
    if (stored === null) {
      // Removed or damaged behind our back: rebuild it from the files.
      this.#stateFile.ensureHeader();
      this.#state = initialState(this.#cursor.ackSeq);
      this.#recover(Math.max(this.#cursor.headHint, newestChunkListed(this.dir)));
      return;
    }
    if (stored.rewrites !== this.#state.rewrites) {
      // A chunk was replaced (repair): the descriptors held may be of the old files.
      if (this.#writer !== null) this.#releaseWriter(this.#writer.fd);
      this.#writer = null;
      this.#closeReader();
    } else if (stored.gen !== this.#state.gen) this.#reader?.invalidate();
    this.#state = stored;
    if (stored.dirty) this.#recover(stored.headChunk);
  }

  /**
   * Whether the `lock` file is still the one this queue locks. When the
   * directory was removed (or removed and made again by another queue), the
   * kernel lock no longer excludes anyone, and the descriptors held point at
   * deleted files or, worse, at the new queue's: every call fails instead.
   */
  #assertSameDirectory(): void {
    if (this.#lockInode === null || isFileAt(path.join(this.dir, FLOCK_FILE), this.#lockInode)) return;
    throw new QueueError('ERR_IO', this.dir, 'the queue directory was removed or replaced while this queue had it open (its lock file is not the one this queue locked); nothing more is written through this queue: close it and open the directory again', {
      file: path.join(this.dir, FLOCK_FILE),
    });
  }

  /** Writes the state back if this holder changed it (before the lock is let go). */
  publish(): void {
    if (!this.#changed) return;
    this.#state.gen++;
    this.#state.dirty = false;
    this.#stateFile.write(this.#state);
    this.#coherence.publish(this.#stateFile.fd);
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
    this.#syncWriter();
    this.#writeBuffer = takeStaging(INITIAL_WRITE_BUFFER);
    try {
      this.#appendFramed(items);
    } finally {
      releaseStaging(this.#writeBuffer);
      this.#writeBuffer = NO_BUFFER;
    }
  }

  /** append's body, with the staging area taken. */
  #appendFramed(items: readonly unknown[]): void {
    const state = this.#state;
    const before = {
      headSeq: state.headSeq, headChunk: state.headChunk, headBytes: state.headBytes,
      writer: this.#writer, size: this.#writer?.size ?? 0, count: this.#writer?.count ?? 0,
    };
    const timestamp = Date.now();
    let seq = state.headSeq;
    // Encode the first item before marking anything: a refused item leaves no trace.
    let length = this.#frame(items[0], 0, seq++, timestamp);
    this.#markChanged();
    const created: ChunkWriter[] = [];
    let item = 1;
    let framed = 1;
    try {
      for (;;) {
        const writer = this.#writableChunk(created);
        const room = this.chunkSize - writer.count;
        while (framed < room && item < items.length && length < WRITE_BATCH_BYTES) {
          length = this.#frame(items[item], length, seq++, timestamp);
          framed++;
          item++;
        }
        writer.append(this.#writeBuffer, length, framed);
        state.headSeq += framed;
        state.headChunk = writer.chunk;
        state.headBytes = writer.size;
        if (item >= items.length) break;
        length = this.#frame(items[item], 0, seq++, timestamp);
        framed = 1;
        item++;
      }
    } catch (error) {
      this.#rollBack(before, created);
      throw error;
    }
    // Every chunk written to needs its sync (a putMany can span several),
    // marked before #retire releases the full ones.
    if (before.writer !== null && before.writer.size !== before.size) {
      this.durability.touch(before.writer.fd);
      this.#coherence.wrote(before.writer.fd);
    }
    for (const writer of created) {
      this.durability.touch(writer.fd);
      this.#coherence.wrote(writer.fd);
    }
    if (created.length > 0) this.#retire(before.writer, created);
    this.#events.added = true;
  }

  /**
   * Hands out up to `max` waiting items, returned ones first. `consumer`:
   * record them as held by this process's consumer (false: autosave, they
   * count as acknowledged at once).
   */
  take(max: number, consumer: boolean): unknown[] {
    const state = this.#state;
    const values: unknown[] = [];
    if (this.waiting === 0) return values;
    // Handing out to a consumer changes only the state: lost unpublished,
    // the items simply wait again. Autosave moves the cursor, which the
    // dirty mark must cover.
    if (consumer) this.#changed = true;
    else this.#markChanged();
    const row = consumer ? this.#ensureConsumer() : undefined;
    while (values.length < max) {
      let next: NextItem | null;
      try {
        next = this.#nextWaiting();
      } catch (error) {
        // Hand out what was read; the damaged record fails again on the next call.
        if (values.length > 0) break;
        throw error;
      }
      if (next === null) break;
      const { seq, fromReturned, value, end } = next;
      if (fromReturned) shiftHeld(state.returned);
      else {
        state.readSeq++;
        state.readOffset = state.readSeq % this.chunkSize === 0 ? 0 : end;
      }
      if (row !== undefined) appendHeld(row.held, seq, 1);
      values.push(value);
    }
    if (values.length > 0) this.#events.taken = true;
    if (row === undefined) this.#advanceAck();
    return values;
  }

  /** The next item a take would hand out, without taking it; undefined when none waits. */
  peek(): unknown {
    return this.#nextWaiting()?.value;
  }

  /**
   * Acknowledges this consumer's `count` oldest held items and persists them:
   * a log entry with the new acknowledged prefix and the items acknowledged
   * above it, under the dirty mark (a holder that dies before it publishes
   * leaves the entry for the next one to apply). A consumer that holds
   * nothing (its items were cleared, or returned after it was taken for
   * dead) has nothing to acknowledge: the call counts for the queue alone.
   */
  acknowledgeOldest(count = 1): void {
    const row = this.#myRow();
    if (row === undefined || row.held.length === 0) return;
    if (count === 1) {
      const oldest = row.held[0].start;
      const floor = Math.max(this.#state.ackSeq, this.#ackFloor());
      if (oldest > floor && floor === this.#state.ackSeq) {
        this.#acknowledgeAbovePrefix(row, floor);
        return;
      }
      // The common call: no arrays unless the item lies above the new prefix.
      this.#markChanged();
      const seq = shiftHeld(row.held) as number;
      const newFloor = Math.max(this.#state.ackSeq, this.#ackFloor());
      if (seq < newFloor) this.#advanceAck(NO_RANGES, newFloor);
      else {
        const acked = [{ start: seq, count: 1 }];
        insertRange(this.#state.acked, acked[0]);
        this.#advanceAck(acked, newFloor);
      }
      return;
    }
    this.#markChanged();
    // Fewer may be held than counted (another process's clear()): those go.
    const seqs: number[] = [];
    for (let i = 0; i < count; i++) {
      const seq = shiftHeld(row.held);
      if (seq === undefined) break;
      seqs.push(seq);
    }
    // Only what lies above the new prefix needs keeping (one consumer acknowledging in order: nothing).
    const floor = Math.max(this.#state.ackSeq, this.#ackFloor());
    const acked = rangesOf(seqs.filter((seq) => seq >= floor));
    for (const range of acked) insertRange(this.#state.acked, range);
    this.#advanceAck(acked, floor);
  }

  /**
   * Acknowledges `row`'s oldest item, which lies above the prefix (`floor`,
   * which it leaves where it is: a lower item is still out). The first of a
   * hold publishes the state at once, so no dirty mark is needed: until that
   * write the old state stands, and it is whole; after it the item is
   * neither held nor waiting for any process. Later ones in the same hold
   * write the dirty mark once, before their log entries, as other changes do
   * (a holder that dies leaves the entries for the next one to apply). The
   * cursor log entry makes the
   * acknowledgement durable (a lost `state` is rebuilt from the log): the
   * call resolves once that entry is durable per `fsync`. Should that write
   * fail (not for a full disk, which folds in place), the call rejects with
   * the acknowledgement already in the state: it holds while the state does.
   */
  #acknowledgeAbovePrefix(row: ConsumerRow, floor: number): void {
    // One mark for the rest of the hold rather than a publish per item: a
    // consumer acknowledges runs of items while another holds an older one.
    const atOnce = !this.#marked && !this.#ackPublishedThisHold;
    if (!atOnce) this.#markChanged();
    const range = { start: shiftHeld(row.held) as number, count: 1 };
    insertRange(this.#state.acked, range);
    if (atOnce) {
      this.#changed = true;
      this.publish();
      this.#ackPublishedThisHold = true;
    }
    this.#advanceAck([range], floor);
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
    if (this.#writer !== null) this.#releaseWriter(this.#writer.fd);
    this.#writer = null;
    const lastChunk = state.headChunk >= 0 ? state.headChunk : Math.floor(state.headSeq / this.chunkSize) - 1;
    // Go on in the chunk after the last one deleted, even when the head sits
    // at the start of an empty newest chunk: a chunk number never names a
    // second file, since other processes tell their writer's file by number.
    const next = Math.max(Math.ceil(state.headSeq / this.chunkSize), lastChunk + 1) * this.chunkSize;
    const firstChunk = Math.floor(state.ackSeq / this.chunkSize);
    Object.assign(state, { ackSeq: next, headSeq: next, readSeq: next, readOffset: 0, headChunk: -1, headBytes: 0, returned: [], acked: [] });
    for (const row of state.consumers) row.held = [];
    // The cursor moves first, so a crash mid-clear leaves only stale chunks
    // below it, which the next open deletes.
    this.#cursor.advance(next);
    this.#coherence.wrote(this.#cursor.logFd);
    this.#cursor.setHeadHint(next / this.chunkSize);
    if (this.#cursor.tryFold([])) this.#deleteChunks(firstChunk, lastChunk + 1);
    else {
      // The entry in the log is what clears: the chunks go once it is durable.
      this.durability.touch(this.#cursor.logFd);
      this.durability.afterDurable(() => this.#deleteChunks(firstChunk, lastChunk + 1));
    }
    this.#events.acknowledged = true;
    this.#events.taken = true;
  }

  /** Folds the cursor into its file (the caller holds the lock). */
  foldCursor(): void {
    this.#cursor.advance(this.#state.ackSeq);
    this.#cursor.tryFold(this.#state.acked);
  }

  /** Closes every file and completes pending syncs (after the last publish). */
  async close(): Promise<void> {
    this.#closeReader();
    if (this.#writer !== null) this.#releaseWriter(this.#writer.fd);
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
   * Brings the state in line with the durable files: when it is new or may
   * lag the files (open, a power loss), or after a holder that died in the
   * middle of its section (dirty). The head is found by scanning the newest
   * chunk, and the acknowledgements in the cursor and its log are applied, so
   * an item acknowledged by a process that died before it published is never
   * handed out again.
   */
  #recover(headHint: number): void {
    const state = this.#state;
    this.#markChanged();
    if (this.#writer !== null) this.#releaseWriter(this.#writer.fd);
    this.#writer = null;
    this.#closeReader();
    const durable = acknowledgedIn(loadCursor(this.dir));
    const head = findHead(this.dir, this.chunkSize, Math.max(state.ackSeq, durable.ackSeq), Math.max(0, headHint), this.#options.maxItemBytes);
    const { writer } = head;
    const ackSeq = head.ackSeq;
    for (const range of durable.acked) insertRange(state.acked, range);
    dropBelow(state.acked, ackSeq);
    let headSeq = head.headSeq;
    const needed = Math.max(ackSeq, endOf(state.acked));
    if (headSeq < needed) {
      // Acknowledged items are missing from the head (a power cut kept the
      // cursor log but not the chunk): go on at the next chunk boundary, so
      // that a new item never takes the number of one acknowledged.
      const boundary = Math.ceil(needed / this.chunkSize) * this.chunkSize;
      const lost = countOf(gapsBetween(headSeq, needed, state.acked));
      if (lost > 0) warnLost(this.dir, lost, headSeq, needed, writer?.file ?? chunkPath(this.dir, Math.floor(headSeq / this.chunkSize)));
      insertRange(state.acked, { start: headSeq, count: boundary - headSeq });
      headSeq = boundary;
    }
    state.headSeq = headSeq;
    state.headChunk = writer?.chunk ?? -1;
    state.headBytes = writer?.size ?? 0;
    if (writer !== null) {
      this.#writer = writer;
      this.#cursor.setHeadHint(writer.chunk);
    }
    if (state.readSeq < ackSeq || state.readSeq > headSeq) {
      // The hand-out record is older than the prefix, or names items the
      // files no longer hold: everything after the prefix waits again.
      state.readSeq = ackSeq;
      state.readOffset = -1;
      state.returned = [];
      for (const row of state.consumers) row.held = [];
    }
    if (ackSeq > state.ackSeq) {
      this.#logAcknowledged(ackSeq, []);
      this.#movePrefix(ackSeq);
    }
    applyAcknowledged(state);
    this.#events.added = true;
    this.#advanceAck();
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
      if (known.has(name) || !Number.isSafeInteger(id) || String(id) !== name) continue;
      // Never remove a file perq did not write, whatever its name.
      if (!isLeaseFile(leasePath(this.dir, id))) continue;
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
    this.#lease = Lease.take(this.dir, id, this.#options.locking, this.#options.staleAfter, this.#options.fsync !== 'never');
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

  /**
   * Moves the acknowledged prefix up to the lowest item still handed out or
   * waiting, and records it with `acked` (items just acknowledged above it)
   * in one cursor log entry.
   */
  #advanceAck(acked: readonly Range[] = NO_RANGES, floorKnown = -1): void {
    const state = this.#state;
    const floor = floorKnown >= 0 ? floorKnown : Math.max(state.ackSeq, this.#ackFloor());
    dropBelow(state.acked, floor);
    if (floor === state.ackSeq && (acked.length === 0 || !acked.some((range) => range.start + range.count > floor))) return;
    this.#logAcknowledged(floor, acked);
    if (floor > state.ackSeq) this.#movePrefix(floor);
    if (this.#cursor.wantsFold) this.#cursor.tryFold(state.acked);
  }

  /** Appends the cursor log entry for prefix `floor` and `acked` above it (which state.acked holds already). */
  #logAcknowledged(floor: number, acked: readonly Range[]): void {
    try {
      this.#cursor.advance(floor, acked);
      this.durability.touch(this.#cursor.logFd);
      this.#coherence.wrote(this.#cursor.logFd);
    } catch (error) {
      // A full disk must not stop acknowledgements, which are what frees space.
      if (!isDiskFull(error)) throw error;
      this.#cursor.foldInPlace(floor, this.#state.acked);
    }
  }

  /** Lets a chunk writer's descriptor go: synced first for other hosts (coherence), closed once its sync round is done. */
  #releaseWriter(fd: number): void {
    this.#coherence.closing(fd);
    this.durability.release(fd);
  }

  /** The prefix is at `floor` in the cursor: deletes the chunks it frees once that is durable. */
  #movePrefix(floor: number): void {
    const state = this.#state;
    const firstChunk = Math.floor(state.ackSeq / this.chunkSize);
    const pastChunk = Math.floor(floor / this.chunkSize);
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
      if (current !== null) this.#releaseWriter(current.fd);
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
    if (current !== null) this.#releaseWriter(current.fd);
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
    if (previous !== null) this.#releaseWriter(previous.fd);
    for (const writer of created) if (writer !== this.#writer) this.#releaseWriter(writer.fd);
    this.durability.touchDirectory();
    const newest = created[created.length - 1].chunk;
    this.#cursor.setHeadHint(newest);
    if (newest - this.#cursor.foldedHeadHint >= HINT_EVERY_CHUNKS) this.foldCursor();
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
  #frame(item: unknown, offset: number, seq: number, timestamp: number): number {
    if (this.#inPlace !== null) {
      const length = this.#inPlace.encodeInto(item, this.#writeBuffer, offset + HEADER_BYTES);
      if (length !== undefined) {
        if (length > this.#options.maxItemBytes) throw this.#tooLarge(length);
        return sealFrame(this.#writeBuffer, offset, length, seq, timestamp);
      }
    }
    const payload = this.#encode(item);
    const needed = offset + frameSize(payload.length);
    if (needed > this.#writeBuffer.length) this.#growWriteBuffer(needed, offset);
    return writeFrame(this.#writeBuffer, offset, payload, seq, timestamp);
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
    this.#writeBuffer = growStaging(this.#writeBuffer, Math.max(needed, this.#writeBuffer.length * 2), keep);
  }

  /**
   * The next waiting item (returned ones first), read and decoded; null when
   * none waits. Records a power cut took from a chunk below the newest are
   * passed over, with a warning.
   */
  #nextWaiting(): NextItem | null {
    const state = this.#state;
    for (let repairs = 0; ; ) {
      const fromReturned = state.returned.length > 0;
      if (!fromReturned && state.readSeq >= state.headSeq) return null;
      const seq = fromReturned ? state.returned[0].start : state.readSeq;
      let read: ItemRead;
      try {
        read = this.#readItem(seq, fromReturned ? -1 : state.readOffset);
      } catch (error) {
        // With onCorrupt 'quarantine', move the damage away and read on (once per chunk and call).
        if (this.#options.onCorrupt !== 'quarantine' || repairs++ > 2 || !this.#quarantineAt(error)) throw error;
        continue;
      }
      if (read.kind === 'item') return { seq, fromReturned, value: read.value, end: read.next };
      if (read.kind === 'missing') this.#skipLost(seq);
      else if (fromReturned) shiftHeld(state.returned);
      else {
        // A quarantined item's stand-in: passed over like an item acknowledged at once.
        state.readSeq++;
        state.readOffset = state.readSeq % this.chunkSize === 0 ? 0 : read.next;
      }
    }
  }

  /**
   * `error` is damage in a chunk of this queue: quarantines it (onCorrupt
   * 'quarantine'), with a warning; false when the error is about something
   * repair cannot move.
   */
  #quarantineAt(error: unknown): boolean {
    const chunk = damagedChunk(error, this.dir, parseChunkFileName);
    if (chunk < 0) return false;
    const moved = this.#repairChunks([chunk]);
    if (moved.length === 0) return false;
    warnQuarantined(this.dir, moved);
    return true;
  }

  /**
   * Quarantines the damage of `chunks` (the caller holds the lock) and brings
   * this process and the others (through `rewrites`) to the new files.
   */
  #repairChunks(chunks: readonly number[]): QuarantinedStretch[] {
    const state = this.#state;
    this.#markChanged();
    if (this.#writer !== null) this.#releaseWriter(this.#writer.fd);
    this.#writer = null;
    this.#closeReader();
    const moved: QuarantinedStretch[] = [];
    for (const chunk of chunks) {
      moved.push(...repairChunk(this.dir, chunk, {
        chunkSize: this.chunkSize, maxItemBytes: this.#options.maxItemBytes, newest: chunk >= state.headChunk,
        decode: (payload) => this.serializer.decode(payload),
      }));
    }
    if (moved.length > 0) {
      state.rewrites++;
      this.#recover(state.headChunk);
    }
    return moved;
  }

  /**
   * Item `seq` is not in its chunk, and the records after it in that chunk
   * cannot be found either. Below the newest chunk that is data a power cut
   * took (the chunk was written after, or while, a newer one began): those
   * items are passed over. In the newest chunk the state and the file
   * disagree, which is damage.
   */
  #skipLost(seq: number): void {
    const state = this.#state;
    const chunk = Math.floor(seq / this.chunkSize);
    const file = chunkPath(this.dir, chunk);
    if (chunk >= state.headChunk) {
      throw new QueueError('ERR_CORRUPT', this.dir, `the newest chunk holds no whole record of item ${seq}, which the shared state says is there`, { file });
    }
    const end = (chunk + 1) * this.chunkSize;
    const before = countOf(state.returned);
    subtractRanges(state.returned, [{ start: seq, count: end - seq }]);
    let lost = before - countOf(state.returned);
    if (state.readSeq >= seq && state.readSeq < end) {
      lost += end - state.readSeq;
      state.readSeq = end;
      state.readOffset = 0;
    }
    warnLost(this.dir, lost, seq, end, file);
  }

  /**
   * Reads and decodes item `seq`, whose offset in its chunk is `offset` (-1:
   * not known, found by hopping): the item, its quarantined stand-in, or
   * `missing` when the chunk holds no such record. Before it calls a record
   * missing or damaged, it reads the file afresh: a cached read-ahead, an old
   * descriptor of a chunk that repair replaced, or a network file system's
   * cached pages must not make an item look lost or damaged.
   */
  #readItem(seq: number, offset: number): ItemRead {
    const chunk = Math.floor(seq / this.chunkSize);
    for (let attempt = 0; ; attempt++) {
      try {
        const read = this.#readItemOnce(seq, chunk, attempt === 0 ? offset : -1, attempt === 0);
        if (read.kind !== 'missing' || attempt > 0) return read;
      } catch (error) {
        if (attempt > 0 || !(error instanceof QueueError) || error.code !== 'ERR_CORRUPT') throw error;
      }
      this.#closeReader();
    }
  }

  #readItemOnce(seq: number, chunk: number, offset: number, useCached: boolean): ItemRead {
    if (this.#reader === null || this.#reader.chunk !== chunk) {
      this.#closeReader();
      this.#reader = new ChunkReader(this.dir, chunk, this.#options.maxItemBytes);
    }
    const reader = this.#reader;
    let at = offset;
    if (at < 0) at = this.#nextSeq === seq && useCached ? this.#nextOffset : reader.offsetAfterRecords(0, chunk * this.chunkSize, seq % this.chunkSize);
    if (at < 0) return MISSING_ITEM;
    const record = reader.readAt(at, seq);
    if (record.kind === 'missing') return MISSING_ITEM;
    this.#nextSeq = (seq + 1) % this.chunkSize === 0 ? -1 : seq + 1;
    this.#nextOffset = record.next;
    if (record.kind === 'quarantined') return record;
    try {
      return { kind: 'item', value: this.serializer.decode(record.payload), next: record.next };
    } catch (error) {
      throw new QueueError('ERR_CORRUPT', this.dir, `serializer '${this.serializer.name}' cannot decode an intact record: ${(error as Error)?.message ?? String(error)}`, {
        file: reader.file, offset: at, cause: error,
      });
    }
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
function openInfo(dir: string, options: StoreOptions): { chunkSize: number; serializer: Serializer } {
  const info = readInfo(dir);
  if (info === null) {
    assertFreshDirectory(dir);
    writeInfo(dir, options.chunkSize, options.serializer.name);
    prepareLeases(dir, true);
    writeCursorFile(dir, { ackSeq: 0, headHint: 0, acked: [] }, true);
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

/**
 * A directory without an info file may become a queue only if it holds
 * nothing else (an empty lock file and temporary files perq makes first are
 * fine). Files that are perq's by their names and first bytes mean a queue
 * lost its info file (ERR_CORRUPT); anything else is someone else's
 * (ERR_FORMAT). Either way nothing is changed.
 */
function assertFreshDirectory(dir: string): void {
  const names = listDirectory(dir).filter((name) => !ATOMIC_TEMP.test(name) && name !== LOCKFILE_DIR && !(name === FLOCK_FILE && fileSize(path.join(dir, name)) === 0));
  if (names.length === 0) return;
  const queueData = names.filter((name) => isQueueData(dir, name));
  if (queueData.length > 0) {
    throw new QueueError('ERR_CORRUPT', dir, `the info file is missing but the directory holds queue data (${queueData.slice(0, 3).join(', ')}); restore the info file rather than start over`, { file: path.join(dir, INFO_FILE) });
  }
  throw new QueueError('ERR_FORMAT', dir, `the directory is not a perq queue and is not empty (it holds ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''}); choose an empty or new directory`);
}

/** Whether `name` in `dir` is one of perq's data files, by its name and content. */
function isQueueData(dir: string, name: string): boolean {
  const file = path.join(dir, name);
  if (parseChunkFileName(name) >= 0) return true;
  if (name === CURSOR_FILE || name === CURSOR_LOG_FILE) return isCursorFile(file, name === CURSOR_LOG_FILE);
  if (name === STATE_FILE) return isStateFile(file);
  if (name === CONSUMERS_DIR) {
    try {
      const leases = fs.readdirSync(file);
      return leases.length > 0 && leases.every((lease) => isLeaseFile(path.join(file, lease)));
    } catch {
      return false;
    }
  }
  return false;
}

/**
 * The persisted cursor: the larger of the cursor file and its log. When the
 * cursor file is missing or damaged, the cursor is rebuilt from the chunk files
 * and the log, erring towards handing items out again rather than skipping any.
 */
function recoverCursor(dir: string, chunkSize: number, options: StoreOptions, gapsAllowed = false): CursorState {
  const loaded = loadCursor(dir);
  if (loaded.file !== null) return { ...acknowledgedIn(loaded), headHint: loaded.file.headHint };
  const chunks = listedChunks(dir);
  // Repair fills the gaps with stand-ins; an open must not guess past one.
  for (let i = 1; i < chunks.length && !gapsAllowed; i++) {
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
  const acked = loaded.logAcked.map((range) => ({ ...range }));
  dropBelow(acked, ackSeq);
  const state = { ackSeq, headHint: chunks.length > 0 ? chunks[chunks.length - 1] : Math.floor(ackSeq / chunkSize), acked };
  writeCursorFile(dir, state, options.fsync !== 'never');
  process.emitWarning(`perq queue ${dir}: the cursor file was ${loaded.fileStatus}; rebuilt it from the chunk files (items from sequence ${ackSeq} on are handed out, some perhaps again)`, { code: 'PERQ_CURSOR_RECOVERED' });
  return state;
}

/** Deletes chunks below the cursor's chunk that a crash left behind. */
function removeAcknowledgedChunks(dir: string, tailChunk: number, durable: boolean): void {
  // Listed, not probed down from the tail: deferred deletions cut short by a
  // crash can leave chunks with gaps between them and the oldest one kept.
  const acknowledged = listedChunks(dir).filter((chunk) => chunk < tailChunk);
  if (acknowledged.length === 0) return;
  // The cursor that frees them may be another process's entry not yet synced: sync it first.
  if (durable) syncFile(dir, path.join(dir, CURSOR_LOG_FILE));
  for (const chunk of acknowledged) {
    try {
      fs.unlinkSync(chunkPath(dir, chunk));
    } catch (error) {
      // Another process's deferred deletion took it meanwhile: what was wanted.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw ioError(dir, 'deleting an acknowledged chunk', error, chunkPath(dir, chunk));
    }
  }
}

/** fdatasyncs `file` if it exists. */
function syncFile(dir: string, file: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return;
  }
  try {
    fs.fdatasyncSync(fd);
  } catch (error) {
    throw ioError(dir, 'fsync', error, file);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Finds the newest chunk (probing forward from `headHint`) and scans it,
 * cutting off a torn tail: a writer for it and the head sequence. The prefix
 * comes back moved up when the chunks it points into are gone but newer ones
 * are there: a chunk is deleted only once all its items are acknowledged, so
 * a prefix behind the oldest chunk lost its newest cursor entries in a power
 * cut (under fsync 'never'), or the files were removed by hand; either way
 * the queue goes on at the oldest item there is, with a warning.
 */
function findHead(dir: string, chunkSize: number, ackSeq: number, headHint: number, maxItemBytes: number): { writer: ChunkWriter | null; headSeq: number; ackSeq: number } {
  let tailChunk = Math.floor(ackSeq / chunkSize);
  if (!chunkExists(dir, tailChunk) && (ackSeq % chunkSize !== 0 || chunkExists(dir, tailChunk + 1) || headHint > tailChunk)) {
    const later = listedChunks(dir).filter((chunk) => chunk > tailChunk);
    const next = (later.length > 0 ? later[0] : Math.max(tailChunk, headHint) + 1) * chunkSize;
    warnLost(dir, next - ackSeq, ackSeq, next, chunkPath(dir, tailChunk));
    ackSeq = next;
    tailChunk = next / chunkSize;
  }
  let newest = Math.max(tailChunk, headHint);
  if (!chunkExists(dir, newest)) {
    // A chunk that was the newest is gone while older ones are there: deleted behind perq's back.
    if (newest > tailChunk) throw new QueueError('ERR_CORRUPT', dir, 'the newest chunk file is missing (its items are lost); run perq repair to go on without it', { file: chunkPath(dir, newest) });
    return { writer: null, headSeq: ackSeq, ackSeq };
  }
  while (chunkExists(dir, newest + 1)) newest++;
  const writer = resumeChunk(dir, newest, maxItemBytes, newest * chunkSize);
  if (writer.count > chunkSize) {
    writer.close();
    throw new QueueError('ERR_CORRUPT', dir, `the newest chunk holds ${writer.count} records, more than chunkSize ${chunkSize}`, { file: writer.file });
  }
  return { writer, headSeq: newest * chunkSize + writer.count, ackSeq };
}

const NO_RANGES: readonly Range[] = Object.freeze([]);

/** `seqs` as sorted, merged ranges. */
function rangesOf(seqs: number[]): Range[] {
  if (seqs.length === 0) return [];
  if (seqs.length > 1) seqs.sort((a, b) => a - b);
  const ranges: Range[] = [{ start: seqs[0], count: 1 }];
  for (let i = 1; i < seqs.length; i++) {
    const last = ranges[ranges.length - 1];
    if (seqs[i] === last.start + last.count) last.count++;
    else if (seqs[i] >= last.start + last.count) ranges.push({ start: seqs[i], count: 1 });
  }
  return ranges;
}

/** Whether `error` (a QueueError from an I/O call, or the call's own) says the disk is full. */
function isDiskFull(error: unknown): boolean {
  const cause = error instanceof QueueError ? error.cause : error;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Says what quarantining moved where. */
function warnQuarantined(dir: string, moved: readonly QuarantinedStretch[]): void {
  const what = moved.map((m) => `${m.bytes} bytes at offset ${m.offset} of ${m.file} (items ${m.firstSeq}..${m.lastSeq}: ${m.reason}) to ${m.movedTo ?? 'nowhere (no bytes)'}`).join('; ');
  process.emitWarning(`perq queue ${dir}: quarantined damaged records: ${what}`, { code: 'PERQ_QUARANTINED' });
}

/** Says that items [from, to) (`count` of them not acknowledged) cannot be handed out: their records are gone. */
function warnLost(dir: string, count: number, from: number, to: number, file: string): void {
  process.emitWarning(
    `perq queue ${dir}: ${count} item(s) between ${from} and ${to - 1} are not in ${file}: written shortly before a power cut and never synced, or removed; going on with item ${to}`,
    { code: 'PERQ_RECORDS_LOST' },
  );
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
