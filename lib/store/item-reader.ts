// Reading items out of chunk files: one open chunk at a time, with its
// read-ahead, and where the record after the last one read starts (a run of
// returned items is read without hopping from the chunk's start each time).
// Whatever looks missing or damaged is read again from a fresh descriptor
// before it is believed.

import { ChunkReader } from './chunk.js';
import { QueueError } from '../errors.js';
import type { Serializer } from '../serializers.js';
import { passOverLost } from './recovery.js';
import { shiftHeld } from './ranges.js';
import type { SharedState } from './state.js';

/** What a read finds where an item should be. */
export type ItemRead =
  { kind: 'item'; value: unknown; timestamp: number; next: number } | { kind: 'quarantined'; next: number } | { kind: 'missing' };
const MISSING_ITEM: ItemRead = { kind: 'missing' };

/** A waiting item read by nextWaiting: where it comes from and where its record ends. */
export interface WaitingItem {
  seq: number;
  fromReturned: boolean;
  value: unknown;
  /** When it was put (ms since the epoch, from its record). */
  timestamp: number;
  end: number;
}

export class ItemReader {
  readonly #dir: string;
  readonly #chunkSize: number;
  readonly #maxItemBytes: number;
  readonly #serializer: Serializer;
  #reader: ChunkReader | null = null;
  /** Where the record after the last one read starts (-1: not known). */
  #nextSeq = -1;
  #nextOffset = 0;

  constructor(dir: string, chunkSize: number, maxItemBytes: number, serializer: Serializer) {
    this.#dir = dir;
    this.#chunkSize = chunkSize;
    this.#maxItemBytes = maxItemBytes;
    this.#serializer = serializer;
  }

  /** The descriptor of the chunk open for reading, if any. */
  get fd(): number | undefined {
    return this.#reader?.fd;
  }

  /** Forgets the read-ahead (another process may have changed bytes past what it had published); keeps the descriptor. */
  invalidate(): void {
    this.#reader?.invalidate();
  }

  /** Closes the chunk: the next read opens its file afresh. */
  close(): void {
    this.#reader?.close();
    this.#reader = null;
    this.#nextSeq = -1;
  }

  /**
   * The next waiting item (returned ones first), read and decoded; null when
   * none waits. Records a power cut took from a chunk below the newest are
   * passed over, with a warning. `quarantine` (onCorrupt 'quarantine')
   * moves the damage an error is about away and says whether to read again.
   */
  nextWaiting(state: SharedState, quarantine: ((error: unknown) => boolean) | null): WaitingItem | null {
    for (let repairs = 0; ;) {
      const fromReturned = state.returned.length > 0;
      if (!fromReturned && state.readSeq >= state.headSeq) return null;
      const seq = fromReturned ? state.returned[0].start : state.readSeq;
      let read: ItemRead;
      try {
        read = this.read(seq, fromReturned ? -1 : state.readOffset);
      } catch (error) {
        // With onCorrupt 'quarantine', move the damage away and read on (once per chunk and call).
        if (quarantine === null || repairs++ > 2 || !quarantine(error)) throw error;
        continue;
      }
      if (read.kind === 'item') return { seq, fromReturned, value: read.value, timestamp: read.timestamp, end: read.next };
      if (read.kind === 'missing') passOverLost(this.#dir, state, this.#chunkSize, seq);
      else if (fromReturned) shiftHeld(state.returned);
      else {
        // A quarantined item's stand-in: passed over like an item acknowledged at once.
        state.readSeq++;
        state.readOffset = state.readSeq % this.#chunkSize === 0 ? 0 : read.next;
      }
    }
  }

  /**
   * Reads and decodes item `seq`, whose offset in its chunk is `offset` (-1:
   * not known, found by hopping): the item, its quarantined stand-in, or
   * `missing` when the chunk holds no such record. Before it calls a record
   * missing or damaged, it reads the file afresh: a cached read-ahead, an old
   * descriptor of a chunk that repair replaced, or a network file system's
   * cached pages must not make an item look lost or damaged.
   */
  read(seq: number, offset: number): ItemRead {
    const chunk = Math.floor(seq / this.#chunkSize);
    for (let attempt = 0; ; attempt++) {
      try {
        const read = this.#readOnce(seq, chunk, attempt === 0 ? offset : -1, attempt === 0);
        if (read.kind !== 'missing' || attempt > 0) return read;
      } catch (error) {
        if (attempt > 0 || !(error instanceof QueueError) || error.code !== 'ERR_CORRUPT') throw error;
      }
      this.close();
    }
  }

  #readOnce(seq: number, chunk: number, offset: number, useCached: boolean): ItemRead {
    if (this.#reader === null || this.#reader.chunk !== chunk) {
      this.close();
      this.#reader = new ChunkReader(this.#dir, chunk, this.#maxItemBytes);
    }
    const reader = this.#reader;
    let at = offset;
    if (at < 0)
      at =
        this.#nextSeq === seq && useCached
          ? this.#nextOffset
          : reader.offsetAfterRecords(0, chunk * this.#chunkSize, seq % this.#chunkSize);
    if (at < 0) return MISSING_ITEM;
    const record = reader.readAt(at, seq);
    if (record.kind === 'missing') return MISSING_ITEM;
    this.#nextSeq = (seq + 1) % this.#chunkSize === 0 ? -1 : seq + 1;
    this.#nextOffset = record.next;
    if (record.kind === 'quarantined') return record;
    try {
      return { kind: 'item', value: this.#serializer.decode(record.payload), timestamp: record.timestamp, next: record.next };
    } catch (error) {
      throw new QueueError(
        'ERR_CORRUPT',
        this.#dir,
        `serializer '${this.#serializer.name}' cannot decode an intact record: ${(error as Error)?.message ?? String(error)}`,
        {
          file: reader.file,
          offset: at,
          cause: error,
        },
      );
    }
  }
}
