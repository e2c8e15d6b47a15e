// lib/store/chunk.ts: chunk file names, appending, scanning for the end of valid
// data (torn tails, zero tails and stale records versus damage), resuming a
// chunk, and reading records back through the read-ahead buffer. Real files in
// real temporary directories.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import {
  ChunkReader,
  ChunkWriter,
  READ_AHEAD_BYTES,
  chunkExists,
  chunkFileName,
  chunkPath,
  parseChunkFileName,
  resumeChunk,
  scanChunk,
  type ChunkScan,
  type RecordRead,
} from '../lib/store/chunk.js';
import { QueueError } from '../lib/errors.js';
import { HEADER_BYTES, frameSize, writeFrame } from '../lib/store/record.js';
import { tempDir } from './helpers.js';

const MAX_ITEM = 64 * 1024 * 1024;
/** The chunk size these tests assume: chunk n starts at item n * CHUNK_SIZE. */
const CHUNK_SIZE = 1000;

/** The first item of chunk `n`. */
function firstSeqOf(n: number): number {
  return n * CHUNK_SIZE;
}

/** The put time the helpers give item `seq`. */
function timeOf(seq: number): number {
  return 1_700_000_000_000 + seq * 3;
}

/** A payload of `length` bytes whose content depends on `seed`. */
function payload(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 13 + seed * 101 + 7) & 0xff);
}

/** The framed records of `payloads`, back to back, as items `firstSeq`, `firstSeq + 1`, ... */
function frames(payloads: Uint8Array[], firstSeq = 0): Buffer {
  const out = Buffer.alloc(payloads.reduce((sum, p) => sum + frameSize(p.length), 0));
  let at = 0;
  payloads.forEach((p, i) => {
    at = writeFrame(out, at, p, firstSeq + i, timeOf(firstSeq + i));
  });
  return out;
}

/** Offsets at which each record of `payloads` starts, plus the end. */
function offsets(payloads: Uint8Array[]): number[] {
  const result = [0];
  for (const p of payloads) result.push(result[result.length - 1] + frameSize(p.length));
  return result;
}

/** Writes chunk `n` of `dir` with exactly `bytes`. */
function writeChunk(dir: string, n: number, bytes: Uint8Array): string {
  const file = chunkPath(dir, n);
  fs.writeFileSync(file, bytes);
  return file;
}

/** Runs scanChunk on `file` (whose first item is `firstSeq`) with a descriptor it opens and closes. */
function scan(dir: string, file: string, firstSeq: number, maxItemBytes = MAX_ITEM, limit?: number): ChunkScan {
  const fd = fs.openSync(file, 'r');
  try {
    return limit === undefined ? scanChunk(dir, file, fd, maxItemBytes, firstSeq) : scanChunk(dir, file, fd, maxItemBytes, firstSeq, limit);
  } finally {
    fs.closeSync(fd);
  }
}

function flipByte(file: string, offset: number): void {
  const bytes = fs.readFileSync(file);
  bytes[offset] ^= 0x10;
  fs.writeFileSync(file, bytes);
}

function isCorrupt(dir: string, file: string, offset?: number) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof QueueError, String(error));
    assert.equal(error.code, 'ERR_CORRUPT');
    assert.equal(error.dir, dir);
    assert.equal(error.file, file);
    assert.ok(error.message.includes(dir), error.message);
    assert.ok(error.message.includes(file), error.message);
    if (offset !== undefined) {
      assert.equal(error.offset, offset);
      assert.ok(error.message.includes(`offset ${offset}`), error.message);
    }
    return true;
  };
}

function openReader(t: TestContext, dir: string, chunk: number, maxItemBytes = MAX_ITEM): ChunkReader {
  const reader = new ChunkReader(dir, chunk, maxItemBytes);
  t.after(() => reader.close());
  return reader;
}

/** Asserts that `read` is a record with exactly `expected` as payload, item `seq`'s put time and `next`; returns `next`. */
function assertRecord(read: RecordRead, expected: Uint8Array, seq: number, next: number | undefined, what = `item ${seq}`): number {
  assert.equal(read.kind, 'record', what);
  if (read.kind !== 'record') throw new Error('unreachable');
  assert.equal(read.payload.length, expected.length, what);
  assert.ok(Buffer.from(expected).equals(read.payload), what);
  assert.equal(read.timestamp, timeOf(seq), what);
  if (next !== undefined) assert.equal(read.next, next, what);
  return read.next;
}

describe('chunk file names', () => {
  test('are chunk- and a 16-digit zero-padded number, and parse back', () => {
    assert.equal(chunkFileName(0), 'chunk-0000000000000000');
    assert.equal(chunkFileName(42), 'chunk-0000000000000042');
    for (const n of [0, 1, 9, 10, 99_999, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
      assert.equal(parseChunkFileName(chunkFileName(n)), n, String(n));
    }
  });

  test('names sort in chunk order', () => {
    const numbers = [3, 100, 20, 1, 1_000_000, 0];
    const sorted = numbers.map(chunkFileName).sort().map(parseChunkFileName);
    assert.deepEqual(
      sorted,
      [...numbers].sort((a, b) => a - b),
    );
  });

  test('other names are not chunks', () => {
    for (const name of [
      'info',
      'cursor',
      'cursor.log',
      'lock',
      'chunk-',
      'chunk-1',
      'chunk-000000000000001',
      'chunk-00000000000000001',
      'chunk-000000000000000a',
      'chunk-0000000000000001.tmp',
      'xchunk-0000000000000001',
      'CHUNK-0000000000000001',
      'chunk-0000000000000001/',
      ' chunk-0000000000000001',
    ]) {
      assert.equal(parseChunkFileName(name), -1, name);
    }
  });

  test('chunkPath joins the directory and chunkExists sees the file', (t) => {
    const dir = tempDir(t);
    assert.equal(chunkPath(dir, 7), path.join(dir, 'chunk-0000000000000007'));
    assert.equal(chunkExists(dir, 7), false);
    fs.writeFileSync(chunkPath(dir, 7), '');
    assert.equal(chunkExists(dir, 7), true);
    assert.equal(chunkExists(dir, 8), false);
  });
});

describe('ChunkWriter', () => {
  test('create makes an empty file; append writes the bytes and counts records', (t) => {
    const dir = tempDir(t);
    const writer = ChunkWriter.create(dir, 3);
    t.after(() => writer.close());
    assert.equal(writer.chunk, 3);
    assert.equal(writer.file, chunkPath(dir, 3));
    assert.equal(writer.size, 0);
    assert.equal(writer.count, 0);
    assert.equal(fs.statSync(writer.file).size, 0);

    const first = [payload(10, 1), payload(0, 2)];
    const second = [payload(300, 3)];
    const a = frames(first, firstSeqOf(3));
    const b = frames(second, firstSeqOf(3) + 2);
    writer.append(a, a.length, 2);
    assert.equal(writer.size, a.length);
    assert.equal(writer.count, 2);
    // Only the first `length` bytes of the buffer are written.
    const padded = Buffer.concat([b, Buffer.alloc(50, 0xee)]);
    writer.append(padded, b.length, 1);
    assert.equal(writer.size, a.length + b.length);
    assert.equal(writer.count, 3);
    assert.deepEqual(fs.readFileSync(writer.file), Buffer.concat([a, b]));
    assert.deepEqual(scan(dir, writer.file, firstSeqOf(3)), { count: 3, end: a.length + b.length, torn: false });
  });

  test('create of a chunk that already exists is ERR_CORRUPT naming the file, and leaves the file alone', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 5, frames([payload(4, 1)], firstSeqOf(5)));
    const before = fs.readFileSync(file);
    assert.throws(() => ChunkWriter.create(dir, 5), isCorrupt(dir, file));
    assert.deepEqual(fs.readFileSync(file), before);
  });

  test('create in a directory that does not exist is ERR_IO naming the directory and the code', (t) => {
    const dir = path.join(tempDir(t), 'absent');
    assert.throws(
      () => ChunkWriter.create(dir, 0),
      (error: unknown) => {
        assert.ok(error instanceof QueueError);
        assert.equal(error.code, 'ERR_IO');
        assert.ok(error.message.includes(dir) && error.message.includes('ENOENT'), error.message);
        return true;
      },
    );
  });

  test('truncate cuts the file back and the next append lands at the new end', (t) => {
    const dir = tempDir(t);
    const writer = ChunkWriter.create(dir, 0);
    t.after(() => writer.close());
    const records = [payload(5, 1), payload(6, 2), payload(7, 3)];
    const bytes = frames(records);
    writer.append(bytes, bytes.length, 3);
    const at = offsets(records);
    writer.truncate(at[1], 1);
    assert.equal(writer.size, at[1]);
    assert.equal(writer.count, 1);
    assert.equal(fs.statSync(writer.file).size, at[1]);
    // The replacement is item 1 again: the items cut off are written anew.
    const replacement = frames([payload(20, 9)], 1);
    writer.append(replacement, replacement.length, 1);
    assert.deepEqual(fs.readFileSync(writer.file), Buffer.concat([bytes.subarray(0, at[1]), replacement]));
    assert.deepEqual(scan(dir, writer.file, 0), { count: 2, end: at[1] + replacement.length, torn: false });
  });
});

describe('scanChunk', () => {
  const records = [payload(10, 1), payload(0, 2), payload(200, 3), payload(33, 4)];
  const at = offsets(records);
  const end = at[records.length];
  const FIRST = firstSeqOf(2);

  test('a clean file: every record counted, not torn', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 2, frames(records, FIRST));
    assert.deepEqual(scan(dir, file, FIRST), { count: 4, end, torn: false });
  });

  test('an empty file holds no records and is not torn', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 0, new Uint8Array(0));
    assert.deepEqual(scan(dir, file, 0), { count: 0, end: 0, torn: false });
  });

  test('limit stops the count early', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 2, frames(records, FIRST));
    assert.deepEqual(scan(dir, file, FIRST, MAX_ITEM, 2), { count: 2, end: at[2], torn: false });
    assert.deepEqual(scan(dir, file, FIRST, MAX_ITEM, 0), { count: 0, end: 0, torn: false });
  });

  test('a partial header at the end is a torn tail, at every cut inside the header', (t) => {
    const dir = tempDir(t);
    const bytes = frames(records, FIRST);
    for (let cut = 1; cut < HEADER_BYTES; cut++) {
      const file = writeChunk(dir, 2, bytes.subarray(0, at[3] + cut));
      assert.deepEqual(scan(dir, file, FIRST), { count: 3, end: at[3], torn: true }, `cut ${cut}`);
    }
  });

  test('a partial payload at the end is a torn tail, at every cut inside the payload', (t) => {
    const dir = tempDir(t);
    const bytes = frames(records, FIRST);
    for (let cut = at[2] + HEADER_BYTES; cut < at[3]; cut += 7) {
      const file = writeChunk(dir, 2, bytes.subarray(0, cut));
      assert.deepEqual(scan(dir, file, FIRST), { count: 2, end: at[2], torn: true }, `cut at ${cut}`);
    }
  });

  test('a tail of zero bytes (size updated, data lost) is a torn tail, short or long', (t) => {
    const dir = tempDir(t);
    for (const zeros of [1, HEADER_BYTES - 1, HEADER_BYTES, 100, 70_000]) {
      const file = writeChunk(dir, 2, Buffer.concat([frames(records, FIRST), Buffer.alloc(zeros)]));
      assert.deepEqual(scan(dir, file, FIRST), { count: 4, end, torn: true }, `${zeros} zero bytes`);
    }
  });

  test('a last record whose header reached the disk but whose payload is zeros is a torn tail', (t) => {
    const dir = tempDir(t);
    const bytes = frames(records, FIRST);
    bytes.fill(0, at[3] + HEADER_BYTES, at[4]);
    const file = writeChunk(dir, 2, bytes);
    assert.deepEqual(scan(dir, file, FIRST), { count: 3, end: at[3], torn: true });
  });

  // A power cut can keep a header's page and lose the pages after it: the
  // payload and everything after it read as zeros. ChunkReader.readAt calls
  // that record missing, so the scan must end the valid data before it;
  // counting it lets the writer append after an item with no data, which then
  // reads as ERR_CORRUPT instead of missing.
  test('a sound header followed by zeros to the end of the file (payload and beyond) is a torn tail', (t) => {
    const dir = tempDir(t);
    for (const extraZeros of [1, HEADER_BYTES, 500]) {
      const bytes = Buffer.concat([frames(records, FIRST), Buffer.alloc(extraZeros)]);
      bytes.fill(0, at[3] + HEADER_BYTES);
      const file = writeChunk(dir, 2, bytes);
      assert.deepEqual(scan(dir, file, FIRST), { count: 3, end: at[3], torn: true }, `${extraZeros} zeros after the payload`);
    }
  });

  test('a file that is all zeros is torn from offset 0', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 0, Buffer.alloc(4096));
    assert.deepEqual(scan(dir, file, 0), { count: 0, end: 0, torn: true });
  });

  test('a damaged header in the middle of the file is ERR_CORRUPT with the file and offset, at every header byte', (t) => {
    const dir = tempDir(t);
    for (let byte = 0; byte < HEADER_BYTES; byte++) {
      const file = writeChunk(dir, 2, frames(records, FIRST));
      flipByte(file, at[2] + byte);
      assert.throws(() => scan(dir, file, FIRST), isCorrupt(dir, file, at[2]), `header byte ${byte}`);
    }
  });

  test('a damaged header in the last record (not all zeros) is ERR_CORRUPT, not a torn tail', (t) => {
    const dir = tempDir(t);
    for (const byte of [1, 9, 17, 25]) {
      const file = writeChunk(dir, 2, frames(records, FIRST));
      flipByte(file, at[3] + byte);
      assert.throws(() => scan(dir, file, FIRST), isCorrupt(dir, file, at[3]), `header byte ${byte}`);
    }
  });

  test('zero bytes followed by more data are damage, not a torn tail', (t) => {
    const dir = tempDir(t);
    const bytes = frames(records, FIRST);
    bytes.fill(0, at[1], at[2]);
    const file = writeChunk(dir, 2, bytes);
    assert.throws(() => scan(dir, file, FIRST), isCorrupt(dir, file, at[1]));
  });

  test('a record longer than maxItemBytes is ERR_CORRUPT naming the file, offset and limit', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 2, frames(records, FIRST));
    // records[2] has 200 bytes; the others fit under 100.
    assert.throws(
      () => scan(dir, file, FIRST, 100),
      (error: unknown) => {
        isCorrupt(dir, file, at[2])(error);
        assert.ok((error as Error).message.includes('maxItemBytes (100)'), (error as Error).message);
        return true;
      },
    );
    assert.deepEqual(scan(dir, file, FIRST, 200), { count: 4, end, torn: false });
  });

  test("a damaged payload is not the scan's business: headers alone are checked", (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 2, frames(records, FIRST));
    flipByte(file, at[2] + HEADER_BYTES + 50);
    assert.deepEqual(scan(dir, file, FIRST), { count: 4, end, torn: false });
  });

  test('a sound record of an earlier item (a stale record) ends the valid data like a torn tail', (t) => {
    const dir = tempDir(t);
    // Two records of this chunk, then records of the file's earlier life: items of
    // an older chunk (a spare's), or numbers below the one expected.
    for (const staleFirst of [firstSeqOf(0) + 2, FIRST + 1, FIRST - 1]) {
      const bytes = Buffer.concat([frames(records.slice(0, 2), FIRST), frames(records.slice(2), staleFirst)]);
      const file = writeChunk(dir, 2, bytes);
      assert.deepEqual(scan(dir, file, FIRST), { count: 2, end: at[2], torn: true }, `stale records from ${staleFirst}`);
      // With a limit that stops before the stale record, nothing is torn yet.
      assert.deepEqual(scan(dir, file, FIRST, MAX_ITEM, 2), { count: 2, end: at[2], torn: false }, `stale from ${staleFirst}, limit 2`);
    }
  });

  test("a sound record of a later item where an item's should be is damage (records cut out), not the end", (t) => {
    const dir = tempDir(t);
    // No earlier life of a file holds higher numbers: chunk numbers only grow.
    for (const laterFirst of [FIRST + 3, FIRST + 2 + CHUNK_SIZE]) {
      const bytes = Buffer.concat([frames(records.slice(0, 2), FIRST), frames(records.slice(2), laterFirst)]);
      const file = writeChunk(dir, 2, bytes);
      assert.throws(
        () => scan(dir, file, FIRST),
        (error: unknown) =>
          error instanceof QueueError &&
          error.code === 'ERR_CORRUPT' &&
          error.offset === at[2] &&
          error.message.includes(`the record of item ${laterFirst} is where item ${FIRST + 2}'s should be`),
        `later records from ${laterFirst}`,
      );
      assert.deepEqual(scan(dir, file, FIRST, MAX_ITEM, 2), { count: 2, end: at[2], torn: false }, `later from ${laterFirst}, limit 2`);
    }
  });

  test("a file holding only another chunk's records holds nothing of this one", (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 2, frames(records, firstSeqOf(1)));
    assert.deepEqual(scan(dir, file, FIRST), { count: 0, end: 0, torn: true });
    // The same bytes are whole for the chunk they were written as.
    assert.deepEqual(scan(dir, file, firstSeqOf(1)), { count: 4, end, torn: false });
  });

  test('a stale record in the middle ends the data even though sound records of this chunk follow', (t) => {
    const dir = tempDir(t);
    const bytes = Buffer.concat([frames(records.slice(0, 1), FIRST), frames(records.slice(1, 2), 7), frames(records.slice(2), FIRST + 2)]);
    const file = writeChunk(dir, 2, bytes);
    assert.deepEqual(scan(dir, file, FIRST), { count: 1, end: at[1], torn: true });
  });
});

describe('resumeChunk', () => {
  const records = [payload(10, 1), payload(20, 2), payload(30, 3)];
  const at = offsets(records);

  test('a clean chunk: the writer continues after the last record', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 2, frames(records, firstSeqOf(2)));
    const writer = resumeChunk(dir, 2, MAX_ITEM, firstSeqOf(2));
    t.after(() => writer.close());
    assert.equal(writer.chunk, 2);
    assert.equal(writer.size, at[3]);
    assert.equal(writer.count, 3);
    const more = frames([payload(5, 4)], firstSeqOf(2) + 3);
    writer.append(more, more.length, 1);
    assert.deepEqual(fs.readFileSync(file), Buffer.concat([frames(records, firstSeqOf(2)), more]));
    assert.deepEqual(scan(dir, file, firstSeqOf(2)), { count: 4, end: at[3] + more.length, torn: false });
  });

  test('a torn tail is cut off the file, and the next append follows the last whole record', (t) => {
    const dir = tempDir(t);
    const bytes = frames(records);
    const file = writeChunk(dir, 0, bytes.subarray(0, at[2] + HEADER_BYTES + 4));
    const writer = resumeChunk(dir, 0, MAX_ITEM, 0);
    t.after(() => writer.close());
    assert.equal(writer.size, at[2]);
    assert.equal(writer.count, 2);
    assert.equal(fs.statSync(file).size, at[2]);
    const more = frames([payload(7, 5)], 2);
    writer.append(more, more.length, 1);
    assert.deepEqual(fs.readFileSync(file), Buffer.concat([bytes.subarray(0, at[2]), more]));
    assert.deepEqual(scan(dir, file, 0), { count: 3, end: at[2] + more.length, torn: false });
  });

  test('a zero-filled tail is cut off', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 0, Buffer.concat([frames(records), Buffer.alloc(500)]));
    const writer = resumeChunk(dir, 0, MAX_ITEM, 0);
    t.after(() => writer.close());
    assert.equal(fs.statSync(file).size, at[3]);
    assert.equal(writer.size, at[3]);
    assert.equal(writer.count, 3);
  });

  test('stale records after the valid ones are cut off, and the next append takes their place', (t) => {
    const dir = tempDir(t);
    const first = firstSeqOf(4);
    // A spare reused as chunk 4 that still holds records of chunk 1 after the first two of its own.
    const own = frames(records.slice(0, 2), first);
    const file = writeChunk(dir, 4, Buffer.concat([own, frames(records.slice(2), firstSeqOf(1) + 2)]));
    const writer = resumeChunk(dir, 4, MAX_ITEM, first);
    t.after(() => writer.close());
    assert.equal(writer.size, at[2]);
    assert.equal(writer.count, 2);
    assert.equal(fs.statSync(file).size, at[2]);
    const more = frames([payload(9, 9)], first + 2);
    writer.append(more, more.length, 1);
    assert.deepEqual(fs.readFileSync(file), Buffer.concat([own, more]));
    assert.deepEqual(scan(dir, file, first), { count: 3, end: at[2] + more.length, torn: false });
  });

  test('damage in the middle is ERR_CORRUPT and the file is left as it was', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 0, frames(records));
    flipByte(file, at[1] + 2);
    const before = fs.readFileSync(file);
    assert.throws(() => resumeChunk(dir, 0, MAX_ITEM, 0), isCorrupt(dir, file, at[1]));
    assert.deepEqual(fs.readFileSync(file), before);
  });

  test('a missing chunk is ERR_IO naming the file', (t) => {
    const dir = tempDir(t);
    assert.throws(
      () => resumeChunk(dir, 9, MAX_ITEM, firstSeqOf(9)),
      (error: unknown) => {
        assert.ok(error instanceof QueueError);
        assert.equal(error.code, 'ERR_IO');
        assert.equal(error.file, chunkPath(dir, 9));
        return true;
      },
    );
  });
});

describe('ChunkReader', () => {
  test('a read at an offset that is not a record start is checked, even inside records the read-ahead vouched for', (t) => {
    const dir = tempDir(t);
    const records = Array.from({ length: 50 }, (_, i) => payload(60 + i, i));
    const at = offsets(records);
    writeChunk(dir, 0, frames(records));
    const reader = openReader(t, dir, 0);
    assertRecord(reader.readAt(0, 0), records[0], 0, at[1]);
    for (const wrong of [at[1] + 1, at[1] + 4, at[3] - 1, at[10] + HEADER_BYTES]) {
      assert.throws(
        () => reader.readAt(wrong, 1),
        (error: unknown) => isCorrupt(dir, chunkPath(dir, 0), wrong)(error) && (error as Error).message.includes('damaged record header'),
      );
    }
    // And the records themselves still read, also out of order.
    assertRecord(reader.readAt(at[7], 7), records[7], 7, at[8]);
    assertRecord(reader.readAt(at[1], 1), records[1], 1, at[2]);
  });

  test('a record damaged after the read-ahead was filled is read from the buffer as it was checked, and a fresh reader reports the damage', (t) => {
    const dir = tempDir(t);
    const records = Array.from({ length: 20 }, (_, i) => payload(40, i));
    const at = offsets(records);
    const file = writeChunk(dir, 0, frames(records));
    const reader = openReader(t, dir, 0);
    let offset = assertRecord(reader.readAt(0, 0), records[0], 0, at[1]);
    flipByte(file, at[5] + HEADER_BYTES + 3);
    for (let i = 1; i < records.length; i++) offset = assertRecord(reader.readAt(offset, i), records[i], i, at[i + 1]);
    const fresh = openReader(t, dir, 0);
    assert.throws(() => fresh.readAt(at[5], 5), isCorrupt(dir, file, at[5]));
  });

  test('reads every record in order, returning each payload, put time and the next offset', (t) => {
    const dir = tempDir(t);
    const records = [payload(10, 1), payload(0, 2), payload(200, 3)];
    const at = offsets(records);
    const first = firstSeqOf(4);
    writeChunk(dir, 4, frames(records, first));
    const reader = openReader(t, dir, 4);
    assert.equal(reader.chunk, 4);
    assert.equal(reader.file, chunkPath(dir, 4));
    let offset = 0;
    for (let i = 0; i < records.length; i++) offset = assertRecord(reader.readAt(offset, first + i), records[i], first + i, at[i + 1]);
    // After the last record the file ends: no item there (yet).
    assert.deepEqual(reader.readAt(offset, first + 3), { kind: 'missing' });
  });

  test('reads many small records across the 64 KiB read-ahead boundary, with headers straddling it', (t) => {
    const dir = tempDir(t);
    // 1000 records of 0..299 bytes: about 180 KiB, so the buffer refills several
    // times and headers and payloads fall across its end at many offsets.
    const records = Array.from({ length: 1000 }, (_, i) => payload((i * 37) % 300, i));
    const at = offsets(records);
    assert.ok(at[records.length] > 2 * READ_AHEAD_BYTES);
    writeChunk(dir, 0, frames(records));
    const reader = openReader(t, dir, 0);
    let offset = 0;
    for (let i = 0; i < records.length; i++) offset = assertRecord(reader.readAt(offset, i), records[i], i, at[i + 1], `record ${i}`);
    assert.equal(offset, at[records.length]);
  });

  test('a header split exactly across the read-ahead boundary is read whole, at every split', (t) => {
    const dir = tempDir(t);
    for (let split = 1; split < HEADER_BYTES; split++) {
      // The first record ends `split` bytes before the buffer ends, so the second header straddles it.
      const firstLength = READ_AHEAD_BYTES - split - HEADER_BYTES;
      const records = [payload(firstLength, 1), payload(40, split), payload(5, 3)];
      const first = firstSeqOf(split);
      writeChunk(dir, split, frames(records, first));
      const reader = openReader(t, dir, split);
      const second = assertRecord(reader.readAt(0, first), records[0], first, READ_AHEAD_BYTES - split, `split ${split}`);
      const third = assertRecord(reader.readAt(second, first + 1), records[1], first + 1, undefined, `split ${split}`);
      assertRecord(reader.readAt(third, first + 2), records[2], first + 2, undefined, `split ${split}`);
    }
  });

  test('a record larger than the read-ahead buffer, between small ones', (t) => {
    const dir = tempDir(t);
    const records = [
      payload(50, 1),
      payload(3 * READ_AHEAD_BYTES + 17, 2),
      payload(60, 3),
      payload(READ_AHEAD_BYTES - HEADER_BYTES, 4),
      payload(1, 5),
    ];
    const at = offsets(records);
    writeChunk(dir, 0, frames(records));
    const reader = openReader(t, dir, 0);
    let offset = 0;
    for (let i = 0; i < records.length; i++) offset = assertRecord(reader.readAt(offset, i), records[i], i, at[i + 1], `record ${i}`);
  });

  test('skip moves past records by their headers; readAt then gives the right record', (t) => {
    const dir = tempDir(t);
    const records = Array.from({ length: 500 }, (_, i) => payload((i * 53) % 700, i));
    records[250] = payload(2 * READ_AHEAD_BYTES, 250);
    const at = offsets(records);
    const first = firstSeqOf(3);
    writeChunk(dir, 3, frames(records, first));
    for (const k of [0, 1, 249, 250, 251, 499]) {
      const reader = openReader(t, dir, 3);
      const offset = reader.offsetAfterRecords(0, first, k);
      assert.equal(offset, at[k], `skip ${k}`);
      assertRecord(reader.readAt(offset, first + k), records[k], first + k, at[k + 1], `record ${k}`);
    }
    const reader = openReader(t, dir, 3);
    assert.equal(reader.offsetAfterRecords(at[10], first + 10, 5), at[15]);
    assert.equal(reader.offsetAfterRecords(0, first, 500), at[500]);
    assert.equal(reader.offsetAfterRecords(at[7], first + 7, 0), at[7]);
    // Asked for the wrong items, the headers do not match: no such records there.
    assert.equal(reader.offsetAfterRecords(at[10], first + 11, 1), -1);
    assert.equal(reader.offsetAfterRecords(0, first + 1, 3), -1);
    // Past the last record the file ends: missing, not damage.
    assert.equal(reader.offsetAfterRecords(0, first, 501), -1);
    assert.equal(reader.offsetAfterRecords(at[500], first + 500, 1), -1);
  });

  test("a record of a later item where an item's should be is ERR_CORRUPT, for readAt and for a skip", (t) => {
    const dir = tempDir(t);
    const records = [payload(10, 1), payload(20, 2), payload(30, 3)];
    const at = offsets(records);
    const first = firstSeqOf(5);
    // Item first + 1's record was cut out: first + 2's follows first's.
    writeChunk(dir, 5, Buffer.concat([frames(records.slice(0, 1), first), frames(records.slice(2), first + 2)]));
    const reader = openReader(t, dir, 5);
    assertRecord(reader.readAt(0, first), records[0], first, at[1]);
    const cutOut = (error: unknown): boolean =>
      error instanceof QueueError &&
      error.code === 'ERR_CORRUPT' &&
      error.offset === at[1] &&
      error.message.includes(`item ${first + 1} is missing`);
    assert.throws(() => reader.readAt(at[1], first + 1), cutOut);
    assert.throws(() => reader.offsetAfterRecords(0, first, 2), cutOut);
    assert.equal(reader.offsetAfterRecords(0, first, 1), at[1]);
  });

  test('a record cut short by truncation is missing, not an item', (t) => {
    const dir = tempDir(t);
    const records = [payload(10, 1), payload(100, 2)];
    const at = offsets(records);
    writeChunk(dir, 0, frames(records).subarray(0, at[2] - 30));
    const reader = openReader(t, dir, 0);
    assertRecord(reader.readAt(0, 0), records[0], 0, at[1]);
    assert.deepEqual(reader.readAt(at[1], 1), { kind: 'missing' });
  });

  test('a large record cut short is missing', (t) => {
    const dir = tempDir(t);
    const records = [payload(2 * READ_AHEAD_BYTES, 1)];
    writeChunk(dir, 0, frames(records).subarray(0, READ_AHEAD_BYTES + 100));
    const reader = openReader(t, dir, 0);
    assert.deepEqual(reader.readAt(0, 0), { kind: 'missing' });
  });

  test('reading where no record is (at the end, past it, or a partial header) is missing for readAt and skip', (t) => {
    const dir = tempDir(t);
    const records = [payload(10, 1)];
    const at = offsets(records);
    writeChunk(dir, 0, Buffer.concat([frames(records), Buffer.from([1, 2, 3])]));
    const reader = openReader(t, dir, 0);
    assert.deepEqual(reader.readAt(at[1], 1), { kind: 'missing' });
    assert.deepEqual(reader.readAt(at[1] + 3, 1), { kind: 'missing' });
    assert.deepEqual(reader.readAt(at[1] + 1000, 1), { kind: 'missing' });
    assert.equal(reader.offsetAfterRecords(0, 0, 2), -1);
    assert.equal(reader.offsetAfterRecords(0, 0, 1), at[1]);
  });

  test('a zero tail reads as missing, short or long, for readAt and skip', (t) => {
    const dir = tempDir(t);
    const records = [payload(10, 1), payload(20, 2)];
    const at = offsets(records);
    for (const zeros of [1, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + 5, 100, 70_000, 3 * READ_AHEAD_BYTES]) {
      writeChunk(dir, 0, Buffer.concat([frames(records), Buffer.alloc(zeros)]));
      const reader = openReader(t, dir, 0);
      assertRecord(reader.readAt(at[1], 1), records[1], 1, at[2], `${zeros} zeros`);
      assert.deepEqual(reader.readAt(at[2], 2), { kind: 'missing' }, `${zeros} zeros`);
      assert.equal(reader.offsetAfterRecords(0, 0, 3), -1, `${zeros} zeros`);
      assert.equal(reader.offsetAfterRecords(0, 0, 2), at[2], `${zeros} zeros`);
    }
  });

  test('a record whose payload never reached the disk (zeros to the end of the file) is missing', (t) => {
    const dir = tempDir(t);
    const records = [payload(10, 1), payload(300, 2)];
    const at = offsets(records);
    for (const extraZeros of [0, 1, 500]) {
      const bytes = Buffer.concat([frames(records), Buffer.alloc(extraZeros)]);
      bytes.fill(0, at[1] + HEADER_BYTES, at[2]);
      writeChunk(dir, 0, bytes);
      const reader = openReader(t, dir, 0);
      assertRecord(reader.readAt(0, 0), records[0], 0, at[1]);
      assert.deepEqual(reader.readAt(at[1], 1), { kind: 'missing' }, `${extraZeros} zeros after it`);
    }
  });

  test('zero bytes where a record should be, followed by more data, are ERR_CORRUPT', (t) => {
    const dir = tempDir(t);
    const records = [payload(10, 1), payload(20, 2), payload(30, 3)];
    const at = offsets(records);
    const bytes = frames(records);
    bytes.fill(0, at[1], at[2]);
    const file = writeChunk(dir, 0, bytes);
    const reader = openReader(t, dir, 0);
    assert.throws(() => reader.readAt(at[1], 1), isCorrupt(dir, file, at[1]));
    assert.throws(() => reader.offsetAfterRecords(0, 0, 2), isCorrupt(dir, file, at[1]));
  });

  test('a stale record (sound, of another item) reads as missing, for readAt and skip', (t) => {
    const dir = tempDir(t);
    const records = [payload(10, 1), payload(20, 2), payload(30, 3)];
    const at = offsets(records);
    const first = firstSeqOf(5);
    // Item first+1's place holds a sound record of item 42 (the file's earlier life).
    const bytes = Buffer.concat([frames(records.slice(0, 1), first), frames(records.slice(1, 2), 42), frames(records.slice(2), first + 2)]);
    writeChunk(dir, 5, bytes);
    const reader = openReader(t, dir, 5);
    assertRecord(reader.readAt(0, first), records[0], first, at[1]);
    assert.deepEqual(reader.readAt(at[1], first + 1), { kind: 'missing' });
    assert.equal(reader.offsetAfterRecords(0, first, 2), -1);
    assert.equal(reader.offsetAfterRecords(0, first, 1), at[1]);
    // The sequence number alone makes the difference: asked for item 42, it is that item's record.
    assertRecord(reader.readAt(at[1], 42), records[1], 42, at[2]);
  });

  test('a damaged header is ERR_CORRUPT for readAt and skip', (t) => {
    const dir = tempDir(t);
    const records = [payload(10, 1), payload(20, 2), payload(30, 3)];
    const at = offsets(records);
    for (const byte of [0, 5, 9, 20, 26]) {
      const file = writeChunk(dir, 0, frames(records));
      flipByte(file, at[1] + byte);
      const reader = openReader(t, dir, 0);
      assertRecord(reader.readAt(0, 0), records[0], 0, at[1]);
      assert.throws(() => reader.readAt(at[1], 1), isCorrupt(dir, file, at[1]), `header byte ${byte}`);
      assert.throws(() => reader.offsetAfterRecords(0, 0, 2), isCorrupt(dir, file, at[1]), `header byte ${byte}`);
    }
  });

  test('a damaged payload is ERR_CORRUPT, never a wrong item', (t) => {
    const dir = tempDir(t);
    const records = [payload(10, 1), payload(20, 2)];
    const at = offsets(records);
    const file = writeChunk(dir, 0, frames(records));
    flipByte(file, at[1] + HEADER_BYTES + 19);
    const reader = openReader(t, dir, 0);
    assert.throws(
      () => reader.readAt(at[1], 1),
      (error: unknown) => {
        isCorrupt(dir, file, at[1])(error);
        assert.ok((error as Error).message.includes('payload'), (error as Error).message);
        return true;
      },
    );
    // Headers are intact, so skipping over the damaged record still works.
    assert.equal(reader.offsetAfterRecords(0, 0, 2), at[2]);
  });

  test('a payload partly zeroed with non-zero bytes after it is ERR_CORRUPT, not missing', (t) => {
    const dir = tempDir(t);
    const records = [payload(10, 1), payload(300, 2)];
    const at = offsets(records);
    const bytes = frames(records);
    // Zeros from the payload's start, but its last bytes are not zero.
    bytes.fill(0, at[1] + HEADER_BYTES, at[2] - 5);
    const file = writeChunk(dir, 0, bytes);
    const reader = openReader(t, dir, 0);
    assert.throws(() => reader.readAt(at[1], 1), isCorrupt(dir, file, at[1]));
  });

  test('a record longer than maxItemBytes is ERR_CORRUPT', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 0, frames([payload(500, 1)]));
    const reader = openReader(t, dir, 0, 499);
    assert.throws(() => reader.readAt(0, 0), isCorrupt(dir, file, 0));
  });

  test('a missing chunk file is ERR_CORRUPT naming the file', (t) => {
    const dir = tempDir(t);
    assert.throws(() => new ChunkReader(dir, 3, MAX_ITEM), isCorrupt(dir, chunkPath(dir, 3)));
  });

  test('sees records appended after it was opened (and after it found nothing there)', (t) => {
    const dir = tempDir(t);
    const writer = ChunkWriter.create(dir, 0);
    t.after(() => writer.close());
    const first = frames([payload(10, 1)], 0);
    writer.append(first, first.length, 1);
    const reader = openReader(t, dir, 0);
    const next = assertRecord(reader.readAt(0, 0), payload(10, 1), 0, first.length);
    assert.deepEqual(reader.readAt(next, 1), { kind: 'missing' });
    const second = frames([payload(30, 2)], 1);
    writer.append(second, second.length, 1);
    assertRecord(reader.readAt(next, 1), payload(30, 2), 1, first.length + second.length);
  });
});
