// The on-disk state of one queue directory as one process sees it, changed
// only under the directory lock (coordination/session.ts decides when that is
// held). The files: chunk files of checksummed records; the cursor (the
// acknowledged prefix, durable); and `state` (state.ts), the hand-out
// bookkeeping that the processes sharing the directory read when they take
// the lock and publish when they let it go. The jobs are in the modules
// beside this one (recovery, appender, item-reader, prefix, consumers); this
// class holds the state and composes them.
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

import { parseChunkFileName } from './chunk.js';
import type { CursorWriter } from './cursor.js';
import type { Durability } from './durability.js';
import type { StoreEvents } from './events.js';
import type { Serializer } from '../serializers.js';
import { Coherence } from './coherence.js';
import type { StoreOptions } from './options.js';
import { damagedChunk } from './repair.js';
import { SpareChunks } from './spares.js';
import { countHandOut, deliveriesOf } from './deliveries.js';
import { HoldChanges } from './hold-changes.js';
import { NO_RANGES, Prefix } from './prefix.js';
import { Consumers } from './consumers.js';
import { ChunkAppender, type AppendHooks } from './appender.js';
import { ItemReader, type WaitingItem } from './item-reader.js';
import {
  alignWithFiles,
  assertSameDirectory,
  lockFileIdentity,
  quarantineChunk,
  newestChunkListed,
  type RepairReport,
} from './recovery.js';
import { appendHeld, forgetDone, insertRange, missingFrom, moveRanges, rangesOf, shiftHeld, type Range } from './ranges.js';
import { delayRanges, returnDue } from './delays.js';
import { statsOf, type StoreStats } from './stats.js';
import type { Inode } from '../fs/files.js';
import type { StoreEntry, StoreSnapshot, TakeMode } from './shapes.js';
import { applyAcknowledged, initialState, waitingIn, type ConsumerRow, type SharedState, type StateFile } from './state.js';

export type { RepairReport };
export type { StoreEntry, StoreSnapshot, TakeMode } from './shapes.js';
export type { StoreStats } from './stats.js';

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
  /** What this hold changed since the last publish. */
  #changes: HoldChanges;
  /** An acknowledgement above the prefix was published at once in this hold (the next go under the dirty mark). */
  #ackPublishedThisHold = false;
  #events: StoreEvents = { added: false, taken: false, acknowledged: false };
  #appender: ChunkAppender;
  /** What an append tells the store besides the state it changes. */
  #appendHooks: AppendHooks;
  #reader: ItemReader;
  #consumers: Consumers;
  /** onCorrupt 'quarantine': moves the damage an error is about away (see #quarantineAt); null otherwise. */
  #quarantine: ((error: unknown) => boolean) | null;
  #spares: SpareChunks;
  /** What a holder does so that hosts sharing the directory through a network file system see each other's writes. */
  #coherence: Coherence;
  /** The inode of the `lock` file this process locks, to notice the directory being replaced. */
  #lockInode: Inode | null;

  /** Made by openStore (open-store.ts), which opens the files it is given. */
  constructor(
    dir: string,
    options: StoreOptions,
    serializer: Serializer,
    chunkSize: number,
    cursor: CursorWriter,
    stateFile: StateFile,
    state: SharedState,
    durability: Durability,
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
    this.#changes = new HoldChanges(() => {
      this.#state.gen++;
      this.#stateFile.write({ ...this.#state, dirty: true });
    });
    this.#reader = new ItemReader(dir, chunkSize, options.maxItemBytes, serializer);
    this.#quarantine = options.onCorrupt === 'quarantine' ? (error) => this.#quarantineAt(error) : null;
    this.#coherence = new Coherence(dir, stateFile.changesLength);
    this.#spares = new SpareChunks(dir, !this.#coherence.enabled);
    this.#prefix = new Prefix(dir, chunkSize, cursor, durability, this.#coherence, this.#spares);
    this.#appender = new ChunkAppender(dir, chunkSize, options.maxItemBytes, serializer, durability, this.#coherence, this.#spares);
    this.#appendHooks = {
      changingFiles: () => this.#changes.changingFiles(),
      createdChunks: (newest) => this.#prefix.newestChunk(this.#state, newest),
    };
    this.#lockInode = lockFileIdentity(dir);
  }

  /**
   * The first look at the files, as open makes it: the newest chunk is
   * scanned whatever the state says (see openStore), orphan leases go, and the
   * items of consumers that died count as waiting from the start.
   */
  startUp(headHint: number): void {
    this.#recover(headHint);
    this.#consumers.removeOrphanLeases(this.#state);
    this.reclaimDead();
    this.publish();
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

  /** Items waiting, counting those held by consumers now gone (their leases probed), as of the cached state. */
  waitingCountingGone(): number {
    return this.#consumers.waitingCountingGone(this.#state);
  }

  /** The shared counters, read without the lock (the newest whole state); `waiting` as waitingCountingGone. */
  snapshot(): StoreSnapshot {
    const state = this.#stateFile.read() ?? this.#state;
    return { waiting: this.#consumers.waitingCountingGone(state), headSeq: state.headSeq, ackSeq: state.ackSeq, readSeq: state.readSeq };
  }

  /** The lock was just taken: bring the cached state up to date, recovering after a holder that died. */
  refresh(): void {
    this.#coherence.refresh(this.#stateFile.fd, this.#reader.fd);
    if (!this.#stateFile.isCurrent()) {
      // `state` was deleted or replaced, or the whole directory was.
      assertSameDirectory(this.dir, this.#lockInode);
      this.#stateFile.reopen();
      this.#reader.invalidate();
    }
    // What is on disk now is the truth: nothing of an earlier hold is pending
    // (a publish that failed left its changes unpublished, and its mark, if
    // any, for this read to find).
    this.#changes.reset();
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
      this.#closeChunks();
    } else if (stored.gen !== this.#state.gen) this.#reader.invalidate();
    this.#state = stored;
    if (stored.dirty) this.#recover(stored.headChunk);
  }

  /** Writes the state back if this holder changed it (before the lock is let go). */
  publish(): void {
    if (this.#changes.kind === 'none') return;
    this.#state.gen++;
    this.#state.dirty = false;
    this.#stateFile.write(this.#state);
    this.#coherence.publish(this.#stateFile.fd);
    this.#changes.reset();
  }

  /** Resolves once everything written so far is durable, as the fsync option asks. */
  settle(): Promise<void> {
    return this.durability.settle();
  }

  /** `settle`, blocking the thread (the sync API). */
  settleSync(): void {
    this.durability.settleSync();
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
    this.#appender.append(items, this.#state, this.#appendHooks);
    this.#events.added = true;
  }

  /**
   * Hands out up to `max` waiting items, returned ones first: `'hold'`, as
   * held by this process's consumer until acknowledged; `'acknowledge'`
   * (autosave), acknowledged at once.
   */
  take(max: number, as: TakeMode, entries?: StoreEntry[]): unknown[] {
    const consumer = as === 'hold';
    const state = this.#state;
    const values: unknown[] = [];
    this.#returnDue();
    if (this.waiting === 0) return values;
    // Handing out to a consumer changes only the state: lost unpublished,
    // the items simply wait again. Autosave moves the cursor, which the
    // dirty mark must cover.
    if (consumer) this.#changes.changedState();
    else this.#changes.changingFiles();
    const row = consumer ? this.#consumers.ensure(state) : undefined;
    while (values.length < max) {
      let next: WaitingItem | null;
      try {
        next = this.#reader.nextWaiting(this.#state, this.#quarantine);
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
      // Autosave acknowledges at once: nothing to count for a later hand-out.
      const deliveries =
        row !== undefined ? countHandOut(state.redelivered, seq, fromReturned) : deliveriesOf(state.redelivered, seq, fromReturned) + 1;
      if (row !== undefined) appendHeld(row.held, seq, 1);
      values.push(value);
      entries?.push({ seq, value, timestamp: next.timestamp, deliveries });
    }
    if (values.length > 0) {
      this.#events.taken = true;
      state.lastSeen = Date.now();
    }
    if (row === undefined) this.#advanceAck();
    return values;
  }

  /** The next item a take would hand out, without taking it, with its number, put time and hand-outs so far; undefined when none waits. */
  peekEntry(): StoreEntry | undefined {
    this.#returnDue();
    const next = this.#reader.nextWaiting(this.#state, this.#quarantine);
    if (next === null) return undefined;
    const { seq, value, timestamp, fromReturned } = next;
    return { seq, value, timestamp, deliveries: deliveriesOf(this.#state.redelivered, seq, fromReturned) };
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
    this.#state.lastSeen = Date.now();
    if (count === 1) {
      const floor = this.#prefix.floor(this.#state);
      if (row.held[0].start > floor && floor === this.#state.ackSeq) {
        this.#acknowledgeAbovePrefix(row, floor);
        return;
      }
    }
    this.#changes.changingFiles();
    const { floor, acked } = this.#prefix.acknowledgeHeld(this.#state, row, count);
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
   * cursor log entry makes the acknowledgement durable (a lost `state` is
   * rebuilt from the log): the call resolves once that entry is durable per
   * `fsync`. Should that write fail (not for a full disk, which folds in
   * place), the call rejects with the acknowledgement already in the state.
   */
  #acknowledgeAbovePrefix(row: ConsumerRow, floor: number): void {
    // One mark for the rest of the hold rather than a publish per item: a
    // consumer acknowledges runs of items while another holds an older one.
    const atOnce = this.#changes.kind !== 'files' && !this.#ackPublishedThisHold;
    if (!atOnce) this.#changes.changingFiles();
    const range = { start: shiftHeld(row.held) as number, count: 1 };
    insertRange(this.#state.acked, range);
    if (atOnce) {
      this.#changes.changedState();
      this.publish();
      this.#ackPublishedThisHold = true;
    }
    this.#advanceAck([range], floor);
  }

  /**
   * Acknowledges items `seqs` (any order), which this process's consumer must
   * all hold: one cursor log entry for all of them, under the dirty mark (as
   * acknowledgeOldest writes). Returns the ones it does not hold, having
   * changed nothing, when there are any.
   */
  acknowledge(seqs: readonly number[]): number[] {
    const row = this.#consumers.mine(this.#state);
    const missing = missingFrom(row?.held, seqs);
    if (missing.length > 0 || row === undefined) return missing;
    this.#changes.changingFiles();
    this.#state.lastSeen = Date.now();
    const { floor, acked } = this.#prefix.acknowledgeSeqs(this.#state, row, seqs);
    this.#advanceAck(acked, floor);
    return missing;
  }

  /**
   * Gives items `seqs` back to wait (nack): out of this consumer's held list
   * into the returned list, handed out again before newer items. Changes
   * `state` alone, as a take does. Returns the ones this consumer does not
   * hold, having changed nothing, when there are any.
   */
  giveBack(seqs: readonly number[], due = 0): number[] {
    const row = this.#consumers.mine(this.#state);
    const missing = missingFrom(row?.held, seqs);
    if (missing.length > 0 || row === undefined) return missing;
    this.#changes.changedState();
    this.#state.lastSeen = Date.now();
    const ranges = rangesOf([...seqs]);
    if (due <= Date.now()) moveRanges(row.held, this.#state.returned, ranges);
    else delayRanges(row.held, this.#state.delayed, ranges, due);
    // Other processes' getters look (and wait for the due time, if there is one).
    this.#events.added = true;
    return missing;
  }

  /** When the earliest item given back with a delay comes due (ms since the epoch; Infinity: none), as of the cached state. */
  get nextDue(): number {
    return this.#state.delayed[0]?.due ?? Infinity;
  }

  /** Delayed items that have come due go back to wait, before newer items (state alone, as a take). */
  #returnDue(): void {
    if (returnDue(this.#state.delayed, this.#state.returned)) this.#changes.changedState();
  }

  /** Counts for `stats()`, from the state (the caller holds the lock) and the chunk files. */
  stats(): StoreStats {
    return statsOf(this.dir, this.#state, this.#consumers);
  }

  /** Without the lock: whether another consumer holds items and looks dead (a waiting getter should reclaim them). */
  deadHolderSuspected(): boolean {
    return this.#consumers.anyDeadHolding(this.#stateFile.read() ?? this.#state);
  }

  /**
   * Hands the items of consumers whose process is gone back for others to
   * take. Returns whether any came back.
   */
  reclaimDead(): boolean {
    const dead = this.#consumers.deadOthers(this.#state);
    if (dead.length === 0) return false;
    this.#changes.changingFiles();
    const returned = this.#consumers.reclaimDead(this.#state, dead);
    if (returned) this.#events.added = true;
    return returned;
  }

  /** Gives this process's held items back and ends its lease (closing). */
  endConsumer(): void {
    if (!this.#consumers.registered) return;
    const row = this.#consumers.mine(this.#state);
    this.#changes.changingFiles();
    if (row !== undefined && this.#consumers.handBack(this.#state, row)) this.#events.added = true;
    this.#consumers.end();
  }

  /** Removes every item, handed out or not, and the files that held them. */
  clear(): void {
    this.#changes.changingFiles();
    this.#closeChunks();
    this.#prefix.clear(this.#state);
    this.#events.acknowledged = true;
    this.#events.taken = true;
  }

  /** Folds the cursor into its file (the caller holds the lock). */
  foldCursor(): void {
    this.#prefix.fold(this.#state);
  }

  /** Closes every file and completes pending syncs (after the last publish). */
  async close(): Promise<void> {
    this.#closeChunks();
    this.#consumers.end();
    try {
      // The last sync round may still need the log's descriptor.
      await this.durability.close();
    } finally {
      this.#cursor.closeLog();
      this.#stateFile.close();
    }
  }

  /** Lets go of the descriptors on chunk files (they may be of replaced or deleted files, or the queue closes). */
  #closeChunks(): void {
    this.#appender.release();
    this.#reader.close();
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
    this.#changes.changingFiles();
    this.#closeChunks();
    const { writer, ackSeq } = alignWithFiles(this.dir, state, this.chunkSize, headHint, this.#options.maxItemBytes);
    if (writer !== null) {
      this.#appender.adopt(writer);
      this.#cursor.setHeadHint(writer.chunk);
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
    forgetDone(this.#state.redelivered, this.#state.ackSeq, this.#state.acked);
  }

  /**
   * `error` is damage in a chunk of this queue: quarantines it (onCorrupt
   * 'quarantine'), with a warning, and brings this process and the others
   * (through `rewrites`) to the new file; false when the error is about
   * something repair cannot move.
   */
  #quarantineAt(error: unknown): boolean {
    const chunk = damagedChunk(error, this.dir, parseChunkFileName);
    if (chunk < 0) return false;
    this.#changes.changingFiles();
    this.#closeChunks();
    const decode = (payload: Uint8Array): unknown => this.serializer.decode(payload);
    if (!quarantineChunk(this.dir, this.#state, chunk, { chunkSize: this.chunkSize, maxItemBytes: this.#options.maxItemBytes, decode }))
      return false;
    this.#recover(this.#state.headChunk);
    return true;
  }
}
