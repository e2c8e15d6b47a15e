// The on-disk state of one queue directory, kept consistent by synchronous
// steps: where the items start (the persisted cursor), where reading stands,
// and where the next item is appended. Opening finds the newest chunk from the
// cursor's hint (never by listing the directory), scans only that chunk and
// cuts off a torn tail. All I/O of the queue happens here or below; the public
// class above only waits, validates and wakes.
//
// Sequence numbers: item s lives in chunk floor(s / chunkSize). Invariant:
// ackSeq <= readSeq <= headSeq, where [ackSeq, readSeq) is handed out and not
// yet acknowledged, and [readSeq, headSeq) is waiting.

import fs from 'node:fs';
import path from 'node:path';
import { ChunkReader, ChunkWriter, chunkExists, chunkPath, parseChunkFileName, resumeChunk } from './chunk.js';
import { CURSOR_FILE, CURSOR_LOG_FILE, CursorWriter, loadCursor, writeCursorFile, type CursorState } from './cursor.js';
import { Durability } from './durability.js';
import { QueueError, ioError } from './errors.js';
import { INFO_FILE, readInfo, writeInfo } from './info.js';
import { FLOCK_FILE, LOCKFILE_DIR } from './lock.js';
import type { ResolvedOptions } from './options.js';
import { frameSize, writeFrame } from './record.js';
import { BUILTIN_SERIALIZERS, resolveSerializer, type Serializer } from './serializers.js';

/** The write buffer starts at 64 KiB and grows for larger batches. */
const INITIAL_WRITE_BUFFER = 64 * 1024;
/** Bytes encoded before they are written, for batches within one chunk. */
const WRITE_BATCH_BYTES = 1024 * 1024;
/** Fold the newest chunk number into the cursor file every this many chunks, bounding the probe on open. */
const HINT_EVERY_CHUNKS = 64;
/** write-file-atomic's temporary files (name + '.' + a murmur hash), left behind only by a crash mid-write. */
const ATOMIC_TEMP = /^(info|cursor)\.\d+$/;

export class QueueStore {
  readonly dir: string;
  readonly chunkSize: number;
  readonly serializer: Serializer;
  readonly durability: Durability;
  #maxItemBytes: number;
  #cursor: CursorWriter;
  /** The newest chunk; null when the next append must create one. */
  #writer: ChunkWriter | null;
  #reader: ChunkReader | null = null;
  /** Byte offset of item readSeq in #reader's chunk. */
  #readOffset = 0;
  #writeBuffer = Buffer.allocUnsafe(INITIAL_WRITE_BUFFER);
  #headSeq: number;
  #readSeq: number;
  #ackSeq: number;

  private constructor(
    dir: string, options: ResolvedOptions, serializer: Serializer, chunkSize: number,
    cursor: CursorWriter, writer: ChunkWriter | null, headSeq: number, durability: Durability,
  ) {
    this.dir = dir;
    this.chunkSize = chunkSize;
    this.serializer = serializer;
    this.durability = durability;
    this.#maxItemBytes = options.maxItemBytes;
    this.#cursor = cursor;
    this.#writer = writer;
    this.#headSeq = headSeq;
    this.#ackSeq = cursor.state.ackSeq;
    this.#readSeq = this.#ackSeq;
  }

  /** Opens (creating when absent) the queue in `dir`; the caller holds the directory lock. */
  static open(dir: string, options: ResolvedOptions): QueueStore {
    const { chunkSize, serializer } = openInfo(dir, options);
    const state = recoverCursor(dir, chunkSize, options);
    const durable = options.fsync !== 'never';
    removeAcknowledgedChunks(dir, Math.floor(state.ackSeq / chunkSize));
    const { writer, headSeq } = findHead(dir, chunkSize, state, options.maxItemBytes);
    const cursor = new CursorWriter(dir, state, durable);
    if (writer !== null) cursor.setHeadHint(writer.chunk);
    const durability = new Durability(options.fsync, dir, (error) => ioError(dir, 'fsync', error));
    return new QueueStore(dir, options, serializer, chunkSize, cursor, writer, headSeq, durability);
  }

  get headSeq(): number {
    return this.#headSeq;
  }

  get readSeq(): number {
    return this.#readSeq;
  }

  get ackSeq(): number {
    return this.#ackSeq;
  }

  /** Items waiting to be handed out. */
  get waiting(): number {
    return this.#headSeq - this.#readSeq;
  }

  /**
   * Encodes and appends `items` in order, one write per chunk they span (or
   * per WRITE_BATCH_BYTES). All or nothing: an item that cannot be encoded
   * (ERR_SERIALIZE), is too large, or a failed write rolls back what the call
   * had written, so the queue is exactly as it was.
   */
  append(items: readonly unknown[]): void {
    const before = { headSeq: this.#headSeq, writer: this.#writer, size: this.#writer?.size ?? 0, count: this.#writer?.count ?? 0 };
    const created: ChunkWriter[] = [];
    let item = 0;
    try {
      while (item < items.length) {
        const writer = this.#writableChunk(created);
        const room = this.chunkSize - writer.count;
        let length = 0;
        let framed = 0;
        while (framed < room && item < items.length && length < WRITE_BATCH_BYTES) {
          length = this.#frame(items[item], length);
          framed++;
          item++;
        }
        writer.append(this.#writeBuffer, length, framed);
        this.#headSeq += framed;
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
  }

  /** Decodes the next `max` waiting items and marks them handed out. */
  take(max: number): unknown[] {
    const count = Math.min(max, this.waiting);
    const values: unknown[] = [];
    for (let i = 0; i < count; i++) {
      let value: unknown;
      try {
        const record = this.#readRecord();
        value = this.#decode(record.payload, record.offset);
        this.#readOffset = record.next;
      } catch (error) {
        // Hand out what was read; the damaged record fails again on the next call.
        if (values.length > 0) break;
        throw error;
      }
      this.#readSeq++;
      values.push(value);
    }
    return values;
  }

  /** The next waiting item without handing it out, or undefined when none waits. */
  peek(): unknown {
    if (this.waiting === 0) return undefined;
    const record = this.#readRecord();
    return this.#decode(record.payload, record.offset);
  }

  /**
   * Persists that every item before `ackSeq` is acknowledged, and deletes the
   * chunks that leaves fully acknowledged once the cursor is durable.
   */
  acknowledgeUpTo(ackSeq: number): void {
    if (ackSeq <= this.#ackSeq) return;
    if (ackSeq > this.#readSeq) throw new Error('perq bug: acknowledging an item not handed out');
    const firstChunk = Math.floor(this.#ackSeq / this.chunkSize);
    const pastChunk = Math.floor(ackSeq / this.chunkSize);
    this.#cursor.advance(ackSeq);
    this.durability.touch(this.#cursor.logFd);
    this.#ackSeq = ackSeq;
    if (pastChunk > firstChunk) {
      this.durability.afterDurable(() => this.#deleteChunks(firstChunk, pastChunk));
    }
  }

  /** Removes every item, handed out or not, and the files that held them. */
  clear(): void {
    this.#closeReader();
    const lastChunk = this.#writer?.chunk ?? Math.floor(this.#headSeq / this.chunkSize) - 1;
    if (this.#writer !== null) this.durability.release(this.#writer.fd);
    this.#writer = null;
    // Continue at the next chunk boundary: the chunk that held the head is deleted.
    const next = Math.ceil(this.#headSeq / this.chunkSize) * this.chunkSize;
    const firstChunk = Math.floor(this.#ackSeq / this.chunkSize);
    this.#headSeq = this.#readSeq = this.#ackSeq = next;
    // The cursor moves first, so a crash mid-clear leaves only stale chunks
    // below it, which the next open deletes.
    this.#cursor.advance(next);
    this.#cursor.setHeadHint(next / this.chunkSize);
    this.#cursor.fold();
    this.#deleteChunks(firstChunk, lastChunk + 1);
  }

  /** Folds the cursor, closes every file and completes pending syncs. */
  async close(): Promise<void> {
    this.#closeReader();
    try {
      this.#cursor.fold();
    } finally {
      if (this.#writer !== null) this.durability.release(this.#writer.fd);
      this.#writer = null;
      try {
        // The last sync round may still need the log's descriptor.
        await this.durability.close();
      } finally {
        this.#cursor.closeLog();
      }
    }
  }

  /** The chunk to append to: the current one, or a new one once it is full. */
  #writableChunk(created: ChunkWriter[]): ChunkWriter {
    const current = this.#writer;
    if (current !== null && current.count < this.chunkSize) return current;
    const chunk = current === null ? Math.floor(this.#headSeq / this.chunkSize) : current.chunk + 1;
    const writer = ChunkWriter.create(this.dir, chunk);
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
    if (newest - this.#cursor.foldedHeadHint >= HINT_EVERY_CHUNKS) this.#cursor.fold();
  }

  /** Undoes a failed append: deletes the chunks it created and cuts the old one back. */
  #rollBack(before: { headSeq: number; writer: ChunkWriter | null; size: number; count: number }, created: ChunkWriter[]): void {
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
    this.#headSeq = before.headSeq;
  }

  /** Encodes `item` and frames it into the write buffer at `offset`; returns the offset after it. */
  #frame(item: unknown, offset: number): number {
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
    if (payload.length > this.#maxItemBytes) {
      throw new QueueError('ERR_ITEM_TOO_LARGE', this.dir, `item encodes to ${payload.length} bytes, more than maxItemBytes (${this.#maxItemBytes})`);
    }
    return payload;
  }

  #decode(payload: Uint8Array, offset: number): unknown {
    try {
      return this.serializer.decode(payload);
    } catch (error) {
      throw new QueueError('ERR_CORRUPT', this.dir, `serializer '${this.serializer.name}' cannot decode an intact record: ${(error as Error)?.message ?? String(error)}`, {
        file: chunkPath(this.dir, Math.floor(this.#readSeq / this.chunkSize)), offset, cause: error,
      });
    }
  }

  #growWriteBuffer(needed: number, keep: number): void {
    const grown = Buffer.allocUnsafe(Math.max(needed, this.#writeBuffer.length * 2));
    this.#writeBuffer.copy(grown, 0, 0, keep);
    this.#writeBuffer = grown;
  }

  /** Reads the record of item readSeq (without handing it out). */
  #readRecord(): { payload: Buffer; next: number; offset: number } {
    const chunk = Math.floor(this.#readSeq / this.chunkSize);
    if (this.#reader === null || this.#reader.chunk !== chunk) {
      this.#closeReader();
      const reader = new ChunkReader(this.dir, chunk, this.#maxItemBytes);
      try {
        this.#readOffset = reader.skip(0, this.#readSeq % this.chunkSize);
      } catch (error) {
        reader.close();
        throw error;
      }
      this.#reader = reader;
    }
    const offset = this.#readOffset;
    return { ...this.#reader.readAt(offset), offset };
  }

  #closeReader(): void {
    this.#reader?.close();
    this.#reader = null;
  }

  #deleteChunks(from: number, to: number): void {
    for (let chunk = from; chunk < to; chunk++) {
      try {
        fs.unlinkSync(chunkPath(this.dir, chunk));
      } catch {
        // Already gone is fine; anything else is swept up by the next open.
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

/** A directory without an info file may become a queue only if it holds nothing else. */
function assertFreshDirectory(dir: string): void {
  const names = listDirectory(dir).filter((name) => name !== FLOCK_FILE && name !== LOCKFILE_DIR && !ATOMIC_TEMP.test(name));
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
  const chunks = listDirectory(dir).map(parseChunkFileName).filter((n) => n >= 0).sort((a, b) => a - b);
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

function listDirectory(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (error) {
    throw ioError(dir, 'listing the queue directory', error);
  }
}
