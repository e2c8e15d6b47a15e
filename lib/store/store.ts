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
import { chunkPath, parseChunkFileName } from './chunk.js';
import { CursorWriter, acknowledgedIn, loadCursor } from './cursor.js';
import { Durability } from './durability.js';
import type { StoreEvents } from './events.js';
import { QueueError, ioError } from '../errors.js';
import { FLOCK_FILE } from '../coordination/lock.js';
import { type Serializer } from '../serializers.js';
import { Coherence, isNetworkFileSystem } from './coherence.js';
import type { StoreOptions } from './options.js';
import { damagedChunk, repairChunk, type QuarantinedStretch } from './repair.js';
import { SpareChunks } from './spares.js';
import { NO_RANGES, Prefix } from './prefix.js';
import { Consumers } from './consumers.js';
import { ChunkAppender, type AppendTarget } from './appender.js';
import { ItemReader, type ItemRead } from './item-reader.js';
import { repairQueue, type RepairReport } from './recovery.js';
import { findHead, listDirectory, newestChunkListed, openInfo, recoverCursor, removeAcknowledgedChunks, warnLost, warnQuarantined } from './recovery.js';
import {
  appendHeld, countFrom, countOf, dropBelow, endOf, gapsBetween, insertRange, shiftHeld, subtractRanges, type Range,
} from './ranges.js';
import { isFileAt, type Inode } from '../fs/files.js';
import { StateFile, applyAcknowledged, initialState, type ConsumerRow, type SharedState } from './state.js';

/** A waiting item read by #nextWaiting: where it comes from and where its record ends. */
interface NextItem {
  seq: number;
  fromReturned: boolean;
  value: unknown;
  end: number;
}

/** A lock-free look at the shared counters. */
export interface StoreSnapshot {
  waiting: number;
  headSeq: number;
  ackSeq: number;
  readSeq: number;
}

export type { RepairReport };

/**
 * What a hold of the lock has changed, and so what letting it go must do:
 * 'none', nothing to publish; 'state', the hand-out bookkeeping in memory
 * only (a holder that dies loses hand-outs, whose items simply wait again);
 * 'files', files too, under the dirty mark already on disk (a holder that
 * dies is recovered from the files by the next).
 */
type HoldChanges = 'none' | 'state' | 'files';

export class QueueStore {
  readonly dir: string;
  readonly chunkSize: number;
  readonly serializer: Serializer;
  readonly durability: Durability;
  #options: StoreOptions;
  #cursor: CursorWriter;
  #prefix: Prefix;
  #stateFile: StateFile;
  /** The shared state: authoritative while the lock is held, a cache otherwise. */
  #state: SharedState;
  /** What this hold changed since the last publish (see HoldChanges). */
  #changes: HoldChanges = 'none';
  /** An acknowledgement above the prefix was published at once in this hold (the next go under the dirty mark). */
  #ackPublishedThisHold = false;
  #events: StoreEvents = { added: false, taken: false, acknowledged: false };
  #appender: ChunkAppender;
  /** What each append changes besides the files. */
  #appendTarget: AppendTarget;
  #reader: ItemReader;
  #consumers: Consumers;
  #spares: SpareChunks;
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
    this.durability = durability;
    this.#options = options;
    this.#cursor = cursor;
    this.#stateFile = stateFile;
    this.#consumers = new Consumers(dir, options);
    this.#state = state;
    this.#reader = new ItemReader(dir, chunkSize, options.maxItemBytes, serializer);
    this.#coherence = new Coherence(dir, stateFile.changesLength);
    this.#spares = new SpareChunks(dir, !this.#coherence.enabled);
    this.#prefix = new Prefix(dir, chunkSize, cursor, durability, this.#coherence, this.#spares);
    this.#appender = new ChunkAppender(dir, chunkSize, options.maxItemBytes, serializer, durability, this.#coherence, this.#spares);
    const store = this;
    this.#appendTarget = {
      get state() {
        return store.#state;
      },
      changingFiles: () => this.#changingFiles(),
      createdChunks: (newest) => {
        this.#prefix.newestChunk(this.#state, newest);
      },
    };
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
      store.#consumers.removeOrphanLeases(store.#state);
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

  /** See repairQueue (recovery.ts). */
  static repair(dir: string, options: StoreOptions): RepairReport {
    return repairQueue(dir, options);
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
      if (row.held.length > 0 && this.#consumers.isDeadOther(row)) waiting += countFrom(row.held, state.ackSeq);
    }
    return waiting;
  }

  /** The lock was just taken: bring the cached state up to date, recovering after a holder that died. */
  refresh(): void {
    this.#coherence.refresh(this.#stateFile.fd, this.#reader.fd);
    if (!this.#stateFile.isCurrent()) {
      // `state` was deleted or replaced, or the whole directory was.
      this.#assertSameDirectory();
      this.#stateFile.reopen();
      this.#reader.invalidate();
    }
    // What is on disk now is the truth: nothing of an earlier hold is pending
    // (a publish that failed left its changes unpublished, and its mark, if
    // any, for this read to find).
    this.#changes = 'none';
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
      this.#appender.release();
      this.#reader.close();
    } else if (stored.gen !== this.#state.gen) this.#reader.invalidate();
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
    if (this.#changes === 'none') return;
    this.#state.gen++;
    this.#state.dirty = false;
    this.#stateFile.write(this.#state);
    this.#coherence.publish(this.#stateFile.fd);
    this.#changes = 'none';
  }

  /** What changed since the last call. */
  takeEvents(): StoreEvents {
    const events = this.#events;
    this.#events = { added: false, taken: false, acknowledged: false };
    return events;
  }

  /**
   * Encodes and appends `items` in order, one write per chunk they span. All
   * or nothing: an item that cannot be encoded (ERR_SERIALIZE), is too large,
   * or a failed write rolls back what the call had written, so the queue is
   * exactly as it was.
   */
  append(items: readonly unknown[]): void {
    if (items.length === 0) return;
    this.#appender.append(items, this.#appendTarget);
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
    if (consumer) this.#changedState();
    else this.#changingFiles();
    const row = consumer ? this.#consumers.ensure(state) : undefined;
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
    const row = this.#consumers.mine(this.#state);
    if (row === undefined || row.held.length === 0) return;
    if (count === 1) {
      const oldest = row.held[0].start;
      const floor = this.#prefix.floor(this.#state);
      if (oldest > floor && floor === this.#state.ackSeq) {
        this.#acknowledgeAbovePrefix(row, floor);
        return;
      }
      // The common call: no arrays unless the item lies above the new prefix.
      this.#changingFiles();
      const seq = shiftHeld(row.held) as number;
      const newFloor = this.#prefix.floor(this.#state);
      if (seq < newFloor) this.#advanceAck(NO_RANGES, newFloor);
      else {
        const acked = [{ start: seq, count: 1 }];
        insertRange(this.#state.acked, acked[0]);
        this.#advanceAck(acked, newFloor);
      }
      return;
    }
    this.#changingFiles();
    // Fewer may be held than counted (another process's clear()): those go.
    const seqs: number[] = [];
    for (let i = 0; i < count; i++) {
      const seq = shiftHeld(row.held);
      if (seq === undefined) break;
      seqs.push(seq);
    }
    // Only what lies above the new prefix needs keeping (one consumer acknowledging in order: nothing).
    const floor = this.#prefix.floor(this.#state);
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
    const atOnce = this.#changes !== 'files' && !this.#ackPublishedThisHold;
    if (!atOnce) this.#changingFiles();
    const range = { start: shiftHeld(row.held) as number, count: 1 };
    insertRange(this.#state.acked, range);
    if (atOnce) {
      this.#changedState();
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
    return state.consumers.some((row) => row.held.length > 0 && this.#consumers.isDeadOther(row));
  }

  /**
   * Hands the items of consumers whose process is gone back for others to
   * take. Returns whether any came back.
   */
  reclaimDead(): boolean {
    const dead = this.#state.consumers.filter((row) => this.#consumers.isDeadOther(row));
    if (dead.length === 0) return false;
    this.#changingFiles();
    const returned = this.#consumers.reclaimDead(this.#state, dead);
    if (returned) this.#events.added = true;
    return returned;
  }

  /** Gives this process's held items back and ends its lease (closing). */
  endConsumer(): void {
    if (!this.#consumers.registered) return;
    const row = this.#consumers.mine(this.#state);
    this.#changingFiles();
    if (row !== undefined && this.#consumers.handBack(this.#state, row)) this.#events.added = true;
    this.#consumers.end();
  }

  /** Removes every item, handed out or not, and the files that held them. */
  clear(): void {
    const state = this.#state;
    this.#changingFiles();
    this.#reader.close();
    this.#appender.release();
    const lastChunk = state.headChunk >= 0 ? state.headChunk : Math.floor(state.headSeq / this.chunkSize) - 1;
    // Go on in the chunk after the last one deleted, even when the head sits
    // at the start of an empty newest chunk: a chunk number never names a
    // second file, since other processes tell their writer's file by number.
    const next = Math.max(Math.ceil(state.headSeq / this.chunkSize), lastChunk + 1) * this.chunkSize;
    const firstChunk = Math.floor(state.ackSeq / this.chunkSize);
    Object.assign(state, { ackSeq: next, headSeq: next, readSeq: next, readOffset: 0, headChunk: -1, headBytes: 0, returned: [], acked: [] });
    for (const row of state.consumers) row.held = [];
    this.#prefix.clearTo(next, firstChunk, lastChunk + 1);
    this.#events.acknowledged = true;
    this.#events.taken = true;
  }

  /** Folds the cursor into its file (the caller holds the lock). */
  foldCursor(): void {
    this.#prefix.fold(this.#state);
  }

  /** Closes every file and completes pending syncs (after the last publish). */
  async close(): Promise<void> {
    this.#reader.close();
    this.#appender.release();
    this.#consumers.end();
    try {
      // The last sync round may still need the log's descriptor.
      await this.durability.close();
    } finally {
      this.#cursor.closeLog();
      this.#stateFile.close();
    }
  }

  /** The hand-out bookkeeping changed, in memory only: publish it before the lock goes. */
  #changedState(): void {
    if (this.#changes === 'none') this.#changes = 'state';
  }

  /** Before the first file change of a hold: mark the state dirty on disk, so a death from here on is recovered. */
  #changingFiles(): void {
    if (this.#changes === 'files') return;
    this.#state.gen++;
    this.#stateFile.write({ ...this.#state, dirty: true });
    this.#changes = 'files';
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
    this.#changingFiles();
    this.#appender.release();
    this.#reader.close();
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
      this.#appender.adopt(writer);
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
      this.#prefix.log(state, ackSeq, []);
      this.#prefix.move(state, ackSeq);
      this.#events.acknowledged = true;
    }
    applyAcknowledged(state);
    this.#events.added = true;
    this.#advanceAck();
  }

  /** Moves the prefix (see Prefix.advance), telling waiters when it moved. */
  #advanceAck(acked: readonly Range[] = NO_RANGES, floorKnown = -1): void {
    if (this.#prefix.advance(this.#state, acked, floorKnown)) this.#events.acknowledged = true;
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
        read = this.#reader.read(seq, fromReturned ? -1 : state.readOffset);
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
    this.#changingFiles();
    this.#appender.release();
    this.#reader.close();
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

}

/** Items not yet handed out: after the read position, and handed back. */
function waitingIn(state: SharedState): number {
  return state.headSeq - state.readSeq + countOf(state.returned);
}


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

