// Appending items to the chunk files: framing them into records in the
// process's staging area, one write per chunk they span, new chunks (from a
// spare when creating files is dear), and rolling a failed append back so the
// queue is exactly as it was. Holds the descriptor of the newest chunk between
// appends, told by its number (a chunk number never names a second file;
// repair, which replaces files, makes the store drop it).

import fs from 'node:fs';
import { ChunkWriter, chunkPath } from './chunk.js';
import { growStaging, releaseStaging, takeStaging } from './crc32c.js';
import type { Durability } from './durability.js';
import { QueueError, ioError } from '../errors.js';
import { HEADER_BYTES, frameSize, sealFrame, writeFrame } from './record.js';
import { encodesInPlace, type InPlaceSerializer, type Serializer } from '../serializers.js';
import type { Coherence } from './coherence.js';
import type { SpareChunks } from './spares.js';
import type { SharedState } from './state.js';

/** The write buffer starts at 64 KiB and grows for larger batches. */
const INITIAL_WRITE_BUFFER = 64 * 1024;
/** #writeBuffer between appends: the staging area is not this appender's to keep. */
const NO_BUFFER = Buffer.alloc(0);
/** Bytes encoded before they are written, for batches within one chunk. */
const WRITE_BATCH_BYTES = 1024 * 1024;

/** What an append tells the store, besides the state it changes. */
export interface AppendHooks {
  /** Called once the first item is encoded, before any file changes (the dirty mark). */
  changingFiles(): void;
  /** The append created chunks up to `newest`. */
  createdChunks(newest: number): void;
}

export class ChunkAppender {
  readonly #dir: string;
  readonly #chunkSize: number;
  readonly #maxItemBytes: number;
  readonly #serializer: Serializer;
  /** The serializer again when it can write items straight into #writeBuffer. */
  readonly #inPlace: InPlaceSerializer | null;
  readonly #durability: Durability;
  readonly #coherence: Coherence;
  readonly #spares: SpareChunks;
  /** The chunk this process last appended to; re-synced with the state before each append. */
  #writer: ChunkWriter | null = null;
  /** Where append builds its records: crc32c.ts's staging area (shared by every queue of the process), taken by each append and given back at its end. */
  #writeBuffer: Buffer = NO_BUFFER;

  constructor(
    dir: string,
    chunkSize: number,
    maxItemBytes: number,
    serializer: Serializer,
    durability: Durability,
    coherence: Coherence,
    spares: SpareChunks,
  ) {
    this.#dir = dir;
    this.#chunkSize = chunkSize;
    this.#maxItemBytes = maxItemBytes;
    this.#serializer = serializer;
    this.#inPlace = encodesInPlace(serializer) ? serializer : null;
    this.#durability = durability;
    this.#coherence = coherence;
    this.#spares = spares;
  }

  /** Lets the newest chunk's descriptor go (the files changed under it, or the queue closes). */
  release(): void {
    if (this.#writer !== null) this.#releaseWriter(this.#writer.fd);
    this.#writer = null;
  }

  /** Takes `writer` (the newest chunk, scanned by recovery) as the one to append to. */
  adopt(writer: ChunkWriter): void {
    this.release();
    this.#writer = writer;
  }

  /**
   * Encodes and appends `items` in order, one write per chunk they span (or
   * per WRITE_BATCH_BYTES). All or nothing: an item that cannot be encoded
   * (ERR_SERIALIZE), is too large, or a failed write rolls back what the call
   * had written, so the queue is exactly as it was.
   */
  append(items: readonly unknown[], state: SharedState, hooks: AppendHooks): void {
    if (items.length === 0) return;
    this.#syncWriter(state);
    this.#writeBuffer = takeStaging(INITIAL_WRITE_BUFFER);
    try {
      this.#appendFramed(items, state, hooks);
    } finally {
      releaseStaging(this.#writeBuffer);
      this.#writeBuffer = NO_BUFFER;
    }
  }

  /** append's body, with the staging area taken. */
  #appendFramed(items: readonly unknown[], state: SharedState, hooks: AppendHooks): void {
    const before = {
      headSeq: state.headSeq,
      headChunk: state.headChunk,
      headBytes: state.headBytes,
      writer: this.#writer,
      size: this.#writer?.size ?? 0,
      count: this.#writer?.count ?? 0,
    };
    const timestamp = Date.now();
    let seq = state.headSeq;
    // Encode the first item before marking anything: a refused item leaves no trace.
    let length = this.#frame(items[0], 0, seq++, timestamp);
    hooks.changingFiles();
    const created: ChunkWriter[] = [];
    let item = 1;
    let framed = 1;
    try {
      for (;;) {
        const writer = this.#writableChunk(state, created);
        const room = this.#chunkSize - writer.count;
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
      this.#rollBack(state, before, created);
      throw error;
    }
    // Every chunk written to needs its sync (a putMany can span several),
    // marked before #retire releases the full ones.
    if (before.writer !== null && before.writer.size !== before.size) {
      this.#durability.touch(before.writer.fd);
      this.#coherence.wrote(before.writer.fd);
    }
    for (const writer of created) {
      this.#durability.touch(writer.fd);
      this.#coherence.wrote(writer.fd);
    }
    if (created.length > 0) this.#retire(before.writer, created, hooks);
  }

  /** Lets a chunk writer's descriptor go: synced first for other hosts (coherence), closed once its sync round is done. */
  #releaseWriter(fd: number): void {
    this.#coherence.closing(fd);
    this.#durability.release(fd);
  }

  /** Points #writer at the chunk the state says is the head (null when the next append starts a chunk). */
  #syncWriter(state: SharedState): void {
    const current = this.#writer;
    const full = state.headChunk < 0 || state.headSeq >= (state.headChunk + 1) * this.#chunkSize;
    if (full) {
      if (current !== null) this.#releaseWriter(current.fd);
      this.#writer = null;
      return;
    }
    const count = state.headSeq - state.headChunk * this.#chunkSize;
    if (current !== null && current.chunk === state.headChunk) {
      // Another process may have appended since: its records end where the state says.
      current.size = state.headBytes;
      current.count = count;
      return;
    }
    if (current !== null) this.#releaseWriter(current.fd);
    this.#writer = null;
    const file = chunkPath(this.#dir, state.headChunk);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r+');
    } catch (error) {
      throw ioError(this.#dir, 'opening the newest chunk', error, file);
    }
    this.#writer = ChunkWriter.resume(this.#dir, state.headChunk, fd, state.headBytes, count);
  }

  /** The chunk to append to: the current one, or a new one once it is full. */
  #writableChunk(state: SharedState, created: ChunkWriter[]): ChunkWriter {
    const current = this.#writer;
    if (current !== null && current.count < this.#chunkSize) return current;
    const chunk = Math.floor(state.headSeq / this.#chunkSize);
    const writer = ChunkWriter.create(this.#dir, chunk, this.#spares);
    created.push(writer);
    this.#writer = writer;
    return writer;
  }

  /** After an append that created chunks: releases the full ones and tells the store the newest. */
  #retire(previous: ChunkWriter | null, created: ChunkWriter[], hooks: AppendHooks): void {
    if (previous !== null) this.#releaseWriter(previous.fd);
    for (const writer of created) if (writer !== this.#writer) this.#releaseWriter(writer.fd);
    this.#durability.touchDirectory();
    hooks.createdChunks(created[created.length - 1].chunk);
  }

  /** Undoes a failed append: deletes the chunks it created and cuts the old one back. */
  #rollBack(
    state: SharedState,
    before: { headSeq: number; headChunk: number; headBytes: number; writer: ChunkWriter | null; size: number; count: number },
    created: ChunkWriter[],
  ): void {
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
    state.headSeq = before.headSeq;
    state.headChunk = before.headChunk;
    state.headBytes = before.headBytes;
  }

  /** Encodes `item` and frames it into the write buffer at `offset`; returns the offset after it. */
  #frame(item: unknown, offset: number, seq: number, timestamp: number): number {
    if (this.#inPlace !== null) {
      const length = this.#inPlace.encodeInto(item, this.#writeBuffer, offset + HEADER_BYTES);
      if (length !== undefined) {
        if (length > this.#maxItemBytes) throw this.#tooLarge(length);
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
      payload = this.#serializer.encode(item);
    } catch (error) {
      throw new QueueError(
        'ERR_SERIALIZE',
        this.#dir,
        `serializer '${this.#serializer.name}' cannot encode the item: ${(error as Error)?.message ?? String(error)}`,
        { cause: error },
      );
    }
    if (!(payload instanceof Uint8Array)) {
      throw new QueueError(
        'ERR_SERIALIZE',
        this.#dir,
        `serializer '${this.#serializer.name}' returned ${typeof payload} instead of a Uint8Array`,
      );
    }
    if (payload.length > this.#maxItemBytes) throw this.#tooLarge(payload.length);
    return payload;
  }

  #tooLarge(length: number): QueueError {
    return new QueueError(
      'ERR_ITEM_TOO_LARGE',
      this.#dir,
      `item encodes to ${length} bytes, more than maxItemBytes (${this.#maxItemBytes})`,
    );
  }

  #growWriteBuffer(needed: number, keep: number): void {
    this.#writeBuffer = growStaging(this.#writeBuffer, Math.max(needed, this.#writeBuffer.length * 2), keep);
  }
}
