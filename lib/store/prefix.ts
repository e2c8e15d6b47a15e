// The acknowledged prefix and its durable record: moving ackSeq up to the
// lowest item still out or waiting, the cursor log entry that makes each move
// (and each acknowledgement above the prefix) survive, folding the log into
// the cursor file, and deleting (or keeping as spares) the chunks a move frees
// once the entry that frees them is durable. Works on the state the store
// passes in, under the lock.

import { chunkPath } from './chunk.js';
import type { Coherence } from './coherence.js';
import type { CursorWriter } from './cursor.js';
import type { Durability } from './durability.js';
import { QueueError } from '../errors.js';
import { dropBelow, insertRange, lowestOf, rangesOf, shiftHeld, subtractRanges, type Range } from './ranges.js';
import type { SpareChunks } from './spares.js';
import { lowestDelayed } from './delays.js';
import type { ConsumerRow, SharedState } from './state.js';

/**
 * Fold the newest chunk number into the cursor file every this many chunks,
 * bounding the probe on open when `state` is lost (a valid `state` names the
 * newest chunk itself). Not more often: a fold creates a file and frees the
 * old cursor's inode, and freed inodes make creating chunks dearer on some
 * file systems (see spares.ts).
 */
export const HINT_EVERY_CHUNKS = 1024;

export const NO_RANGES: readonly Range[] = Object.freeze([]);

export class Prefix {
  readonly #dir: string;
  readonly #chunkSize: number;
  readonly #cursor: CursorWriter;
  readonly #durability: Durability;
  readonly #coherence: Coherence;
  readonly #spares: SpareChunks;

  constructor(dir: string, chunkSize: number, cursor: CursorWriter, durability: Durability, coherence: Coherence, spares: SpareChunks) {
    this.#dir = dir;
    this.#chunkSize = chunkSize;
    this.#cursor = cursor;
    this.#durability = durability;
    this.#coherence = coherence;
    this.#spares = spares;
  }

  /** Where the prefix may end: the lowest item still handed out or waiting (never below ackSeq). */
  floor(state: SharedState): number {
    let floor = Math.min(state.readSeq, lowestOf(state.returned), lowestDelayed(state.delayed));
    for (const row of state.consumers) floor = Math.min(floor, lowestOf(row.held));
    return Math.max(state.ackSeq, floor);
  }

  /**
   * Takes `row`'s `count` oldest held items as acknowledged (fewer when fewer
   * are held: another process's clear() emptied the list): returns the floor
   * the prefix may move to and the ranges acknowledged above it (added to
   * state.acked), for one cursor log entry.
   */
  acknowledgeHeld(state: SharedState, row: ConsumerRow, count: number): { floor: number; acked: readonly Range[] } {
    if (count === 1) {
      // The common call: no arrays unless the item lies above the new prefix.
      const seq = shiftHeld(row.held) as number;
      const floor = this.floor(state);
      if (seq < floor) return { floor, acked: NO_RANGES };
      const acked = [{ start: seq, count: 1 }];
      insertRange(state.acked, acked[0]);
      return { floor, acked };
    }
    const seqs: number[] = [];
    for (let i = 0; i < count; i++) {
      const seq = shiftHeld(row.held);
      if (seq === undefined) break;
      seqs.push(seq);
    }
    // Only what lies above the new prefix needs keeping (one consumer acknowledging in order: nothing).
    const floor = this.floor(state);
    const acked = rangesOf(seqs.filter((seq) => seq >= floor));
    for (const range of acked) insertRange(state.acked, range);
    return { floor, acked };
  }

  /**
   * Takes items `seqs` (all held by `row`, any order) as acknowledged: out of
   * the held list, and those above the floor into state.acked. Returns the
   * floor and the ranges acknowledged above it, for one cursor log entry.
   */
  acknowledgeSeqs(state: SharedState, row: ConsumerRow, seqs: readonly number[]): { floor: number; acked: readonly Range[] } {
    subtractRanges(row.held, rangesOf([...seqs]));
    const floor = this.floor(state);
    const acked = rangesOf(seqs.filter((seq) => seq >= floor));
    for (const range of acked) insertRange(state.acked, range);
    return { floor, acked };
  }

  /**
   * Moves the prefix up to `floorKnown` (-1: the floor of `state`) and records
   * it with `acked` (items just acknowledged above it, which state.acked holds
   * already) in one cursor log entry; true when the prefix moved.
   */
  advance(state: SharedState, acked: readonly Range[] = NO_RANGES, floorKnown = -1): boolean {
    const floor = floorKnown >= 0 ? floorKnown : this.floor(state);
    dropBelow(state.acked, floor);
    if (floor === state.ackSeq && (acked.length === 0 || !acked.some((range) => range.start + range.count > floor))) return false;
    this.log(state, floor, acked);
    const moved = floor > state.ackSeq;
    if (moved) this.move(state, floor);
    if (this.#cursor.wantsFold) this.#cursor.tryFold(state.acked);
    return moved;
  }

  /** Appends the cursor log entry for prefix `floor` and `acked` above it. */
  log(state: SharedState, floor: number, acked: readonly Range[]): void {
    try {
      this.#cursor.advance(floor, acked);
      this.#durability.touch(this.#cursor.logFd);
      this.#coherence.wrote(this.#cursor.logFd);
    } catch (error) {
      // A full disk must not stop acknowledgements, which are what frees space.
      if (!isDiskFull(error)) throw error;
      this.#cursor.foldInPlace(floor, state.acked);
    }
  }

  /** The prefix is at `floor` in the cursor: sets ackSeq and deletes the chunks it frees once that is durable. */
  move(state: SharedState, floor: number): void {
    const firstChunk = Math.floor(state.ackSeq / this.#chunkSize);
    const pastChunk = Math.floor(floor / this.#chunkSize);
    state.ackSeq = floor;
    if (pastChunk > firstChunk) {
      this.#durability.afterDurable(() => this.#deleteChunks(firstChunk, pastChunk));
    }
  }

  /**
   * clear(): every item goes, handed out or not. The numbers go on in the
   * chunk after the last one deleted, even when the head sits at the start
   * of an empty newest chunk: a chunk number never names a second file,
   * since other processes tell their writer's file by number.
   */
  clear(state: SharedState): void {
    const lastChunk = state.headChunk >= 0 ? state.headChunk : Math.floor(state.headSeq / this.#chunkSize) - 1;
    const next = Math.max(Math.ceil(state.headSeq / this.#chunkSize), lastChunk + 1) * this.#chunkSize;
    const firstChunk = Math.floor(state.ackSeq / this.#chunkSize);
    Object.assign(state, {
      ackSeq: next,
      headSeq: next,
      readSeq: next,
      readOffset: 0,
      headChunk: -1,
      headBytes: 0,
      returned: [],
      acked: [],
      redelivered: [],
      delayed: [],
    });
    for (const row of state.consumers) row.held = [];
    this.#clearTo(next, firstChunk, lastChunk + 1);
  }

  /**
   * The prefix jumps to `next` (state is already there) and chunks
   * [firstChunk, pastChunk) go. The cursor moves first, so a crash mid-clear
   * leaves only stale chunks below it, which the next open deletes.
   */
  #clearTo(next: number, firstChunk: number, pastChunk: number): void {
    this.#cursor.advance(next);
    this.#coherence.wrote(this.#cursor.logFd);
    this.#cursor.setHeadHint(next / this.#chunkSize);
    if (this.#cursor.tryFold([])) this.#deleteChunks(firstChunk, pastChunk);
    else {
      // The entry in the log is what clears: the chunks go once it is durable.
      this.#durability.touch(this.#cursor.logFd);
      this.#durability.afterDurable(() => this.#deleteChunks(firstChunk, pastChunk));
    }
  }

  /** An append created chunks up to `newest`: the cursor's head hint follows, folded every HINT_EVERY_CHUNKS. */
  newestChunk(state: SharedState, newest: number): void {
    this.#cursor.setHeadHint(newest);
    if (newest - this.#cursor.foldedHeadHint >= HINT_EVERY_CHUNKS) this.fold(state);
  }

  /** Folds the cursor log into the cursor file. */
  fold(state: SharedState): void {
    this.#cursor.advance(state.ackSeq);
    this.#cursor.tryFold(state.acked);
  }

  #deleteChunks(from: number, to: number): void {
    for (let chunk = from; chunk < to; chunk++) {
      try {
        this.#spares.recycle(chunkPath(this.#dir, chunk));
      } catch {
        // Already gone (another process deleted it) is fine; anything else is swept up by the next open.
      }
    }
    this.#durability.touchDirectory();
  }
}

/** Whether `error` (a QueueError from an I/O call, or the call's own) says the disk is full. */
function isDiskFull(error: unknown): boolean {
  const cause = error instanceof QueueError ? error.cause : error;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
