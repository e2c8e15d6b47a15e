// lib/chunk.ts: chunk file names, appending, scanning for the end of valid
// data (torn tails versus damage), resuming a chunk, and reading records back
// through the read-ahead buffer. Real files in real temporary directories.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import {
  ChunkReader, ChunkWriter, READ_AHEAD_BYTES, chunkExists, chunkFileName, chunkPath, parseChunkFileName, resumeChunk, scanChunk,
  type ChunkScan,
} from '../lib/chunk.js';
import { QueueError } from '../lib/errors.js';
import { HEADER_BYTES, frameSize, writeFrame } from '../lib/record.js';
import { tempDir } from './helpers.js';

const MAX_ITEM = 64 * 1024 * 1024;

/** A payload of `length` bytes whose content depends on `seed`. */
function payload(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 13 + seed * 101 + 7) & 0xff);
}

/** The framed records of `payloads`, back to back. */
function frames(payloads: Uint8Array[]): Buffer {
  const out = Buffer.alloc(payloads.reduce((sum, p) => sum + frameSize(p.length), 0));
  let at = 0;
  for (const p of payloads) at = writeFrame(out, at, p);
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

/** Runs scanChunk on `file` with a descriptor it opens and closes. */
function scan(dir: string, file: string, maxItemBytes = MAX_ITEM, limit?: number): ChunkScan {
  const fd = fs.openSync(file, 'r');
  try {
    return limit === undefined ? scanChunk(dir, file, fd, maxItemBytes) : scanChunk(dir, file, fd, maxItemBytes, limit);
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
    assert.deepEqual(sorted, [...numbers].sort((a, b) => a - b));
  });

  test('other names are not chunks', () => {
    for (const name of [
      'info', 'cursor', 'cursor.log', 'lock', 'chunk-', 'chunk-1', 'chunk-000000000000001', 'chunk-00000000000000001',
      'chunk-000000000000000a', 'chunk-0000000000000001.tmp', 'xchunk-0000000000000001', 'CHUNK-0000000000000001',
      'chunk-0000000000000001/', ' chunk-0000000000000001',
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
    const a = frames(first);
    const b = frames(second);
    writer.append(a, a.length, 2);
    assert.equal(writer.size, a.length);
    assert.equal(writer.count, 2);
    // Only the first `length` bytes of the buffer are written.
    const padded = Buffer.concat([b, Buffer.alloc(50, 0xee)]);
    writer.append(padded, b.length, 1);
    assert.equal(writer.size, a.length + b.length);
    assert.equal(writer.count, 3);
    assert.deepEqual(fs.readFileSync(writer.file), Buffer.concat([a, b]));
    assert.deepEqual(scan(dir, writer.file), { count: 3, end: a.length + b.length, torn: false });
  });

  test('create of a chunk that already exists is ERR_CORRUPT naming the file, and leaves the file alone', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 5, frames([payload(4, 1)]));
    const before = fs.readFileSync(file);
    assert.throws(() => ChunkWriter.create(dir, 5), isCorrupt(dir, file));
    assert.deepEqual(fs.readFileSync(file), before);
  });

  test('create in a directory that does not exist is ERR_IO naming the directory and the code', (t) => {
    const dir = path.join(tempDir(t), 'absent');
    assert.throws(() => ChunkWriter.create(dir, 0), (error: unknown) => {
      assert.ok(error instanceof QueueError);
      assert.equal(error.code, 'ERR_IO');
      assert.ok(error.message.includes(dir) && error.message.includes('ENOENT'), error.message);
      return true;
    });
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
    const replacement = frames([payload(20, 9)]);
    writer.append(replacement, replacement.length, 1);
    assert.deepEqual(fs.readFileSync(writer.file), Buffer.concat([bytes.subarray(0, at[1]), replacement]));
    assert.deepEqual(scan(dir, writer.file), { count: 2, end: at[1] + replacement.length, torn: false });
  });
});

describe('scanChunk', () => {
  const records = [payload(10, 1), payload(0, 2), payload(200, 3), payload(33, 4)];
  const at = offsets(records);
  const end = at[records.length];

  test('a clean file: every record counted, not torn', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 0, frames(records));
    assert.deepEqual(scan(dir, file), { count: 4, end, torn: false });
  });

  test('an empty file holds no records and is not torn', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 0, new Uint8Array(0));
    assert.deepEqual(scan(dir, file), { count: 0, end: 0, torn: false });
  });

  test('limit stops the count early', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 0, frames(records));
    assert.deepEqual(scan(dir, file, MAX_ITEM, 2), { count: 2, end: at[2], torn: false });
    assert.deepEqual(scan(dir, file, MAX_ITEM, 0), { count: 0, end: 0, torn: false });
  });

  test('a partial header at the end is a torn tail, at every cut inside the header', (t) => {
    const dir = tempDir(t);
    const bytes = frames(records);
    for (let cut = 1; cut < HEADER_BYTES; cut++) {
      const file = writeChunk(dir, 0, bytes.subarray(0, at[3] + cut));
      assert.deepEqual(scan(dir, file), { count: 3, end: at[3], torn: true }, `cut ${cut}`);
    }
  });

  test('a partial payload at the end is a torn tail, at every cut inside the payload', (t) => {
    const dir = tempDir(t);
    const bytes = frames(records);
    for (let cut = at[2] + HEADER_BYTES; cut < at[3]; cut += 7) {
      const file = writeChunk(dir, 0, bytes.subarray(0, cut));
      assert.deepEqual(scan(dir, file), { count: 2, end: at[2], torn: true }, `cut at ${cut}`);
    }
  });

  test('a tail of zero bytes (size updated, data lost) is a torn tail, short or long', (t) => {
    const dir = tempDir(t);
    for (const zeros of [1, HEADER_BYTES - 1, HEADER_BYTES, 100, 70_000]) {
      const file = writeChunk(dir, 0, Buffer.concat([frames(records), Buffer.alloc(zeros)]));
      assert.deepEqual(scan(dir, file), { count: 4, end, torn: true }, `${zeros} zero bytes`);
    }
  });

  test('a file that is all zeros is torn from offset 0', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 0, Buffer.alloc(4096));
    assert.deepEqual(scan(dir, file), { count: 0, end: 0, torn: true });
  });

  test('a damaged header in the middle of the file is ERR_CORRUPT with the file and offset', (t) => {
    const dir = tempDir(t);
    for (const byte of [0, 3, 4, 8, 11]) {
      const file = writeChunk(dir, 0, frames(records));
      flipByte(file, at[2] + byte);
      assert.throws(() => scan(dir, file), isCorrupt(dir, file, at[2]), `header byte ${byte}`);
    }
  });

  test('a damaged header in the last record (not all zeros) is ERR_CORRUPT, not a torn tail', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 0, frames(records));
    flipByte(file, at[3] + 1);
    assert.throws(() => scan(dir, file), isCorrupt(dir, file, at[3]));
  });

  test('zero bytes followed by more data are damage, not a torn tail', (t) => {
    const dir = tempDir(t);
    const bytes = frames(records);
    bytes.fill(0, at[1], at[2]);
    const file = writeChunk(dir, 0, bytes);
    assert.throws(() => scan(dir, file), isCorrupt(dir, file, at[1]));
  });

  test('a record longer than maxItemBytes is ERR_CORRUPT naming the file, offset and limit', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 0, frames(records));
    // records[2] has 200 bytes; the others fit under 100.
    assert.throws(() => scan(dir, file, 100), (error: unknown) => {
      isCorrupt(dir, file, at[2])(error);
      assert.ok((error as Error).message.includes('maxItemBytes (100)'), (error as Error).message);
      return true;
    });
    assert.deepEqual(scan(dir, file, 200), { count: 4, end, torn: false });
  });

  test('a damaged payload is not the scan\'s business: headers alone are checked', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 0, frames(records));
    flipByte(file, at[2] + HEADER_BYTES + 50);
    assert.deepEqual(scan(dir, file), { count: 4, end, torn: false });
  });
});

describe('resumeChunk', () => {
  const records = [payload(10, 1), payload(20, 2), payload(30, 3)];
  const at = offsets(records);

  test('a clean chunk: the writer continues after the last record', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 2, frames(records));
    const writer = resumeChunk(dir, 2, MAX_ITEM);
    t.after(() => writer.close());
    assert.equal(writer.chunk, 2);
    assert.equal(writer.size, at[3]);
    assert.equal(writer.count, 3);
    const more = frames([payload(5, 4)]);
    writer.append(more, more.length, 1);
    assert.deepEqual(fs.readFileSync(file), Buffer.concat([frames(records), more]));
  });

  test('a torn tail is cut off the file, and the next append follows the last whole record', (t) => {
    const dir = tempDir(t);
    const bytes = frames(records);
    const file = writeChunk(dir, 0, bytes.subarray(0, at[2] + HEADER_BYTES + 4));
    const writer = resumeChunk(dir, 0, MAX_ITEM);
    t.after(() => writer.close());
    assert.equal(writer.size, at[2]);
    assert.equal(writer.count, 2);
    assert.equal(fs.statSync(file).size, at[2]);
    const more = frames([payload(7, 5)]);
    writer.append(more, more.length, 1);
    assert.deepEqual(fs.readFileSync(file), Buffer.concat([bytes.subarray(0, at[2]), more]));
    assert.deepEqual(scan(dir, file), { count: 3, end: at[2] + more.length, torn: false });
  });

  test('a zero-filled tail is cut off', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 0, Buffer.concat([frames(records), Buffer.alloc(500)]));
    const writer = resumeChunk(dir, 0, MAX_ITEM);
    t.after(() => writer.close());
    assert.equal(fs.statSync(file).size, at[3]);
    assert.equal(writer.count, 3);
  });

  test('damage in the middle is ERR_CORRUPT and the file is left as it was', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 0, frames(records));
    flipByte(file, at[1] + 2);
    const before = fs.readFileSync(file);
    assert.throws(() => resumeChunk(dir, 0, MAX_ITEM), isCorrupt(dir, file, at[1]));
    assert.deepEqual(fs.readFileSync(file), before);
  });

  test('a missing chunk is ERR_IO naming the file', (t) => {
    const dir = tempDir(t);
    assert.throws(() => resumeChunk(dir, 9, MAX_ITEM), (error: unknown) => {
      assert.ok(error instanceof QueueError);
      assert.equal(error.code, 'ERR_IO');
      assert.equal(error.file, chunkPath(dir, 9));
      return true;
    });
  });
});

describe('ChunkReader', () => {
  test('reads every record in order, returning each payload and the next offset', (t) => {
    const dir = tempDir(t);
    const records = [payload(10, 1), payload(0, 2), payload(200, 3)];
    const at = offsets(records);
    writeChunk(dir, 4, frames(records));
    const reader = openReader(t, dir, 4);
    assert.equal(reader.chunk, 4);
    assert.equal(reader.file, chunkPath(dir, 4));
    let offset = 0;
    for (let i = 0; i < records.length; i++) {
      const { payload: got, next } = reader.readAt(offset);
      assert.deepEqual(new Uint8Array(got), records[i]);
      assert.equal(next, at[i + 1]);
      offset = next;
    }
  });

  test('reads many small records across the 64 KiB read-ahead boundary, with headers straddling it', (t) => {
    const dir = tempDir(t);
    // 1000 records of 0..299 bytes: about 160 KiB, so the buffer refills several
    // times and headers and payloads fall across its end at many offsets.
    const records = Array.from({ length: 1000 }, (_, i) => payload((i * 37) % 300, i));
    const at = offsets(records);
    assert.ok(at[records.length] > 2 * READ_AHEAD_BYTES);
    writeChunk(dir, 0, frames(records));
    const reader = openReader(t, dir, 0);
    let offset = 0;
    for (let i = 0; i < records.length; i++) {
      const { payload: got, next } = reader.readAt(offset);
      assert.deepEqual(new Uint8Array(got), records[i], `record ${i}`);
      offset = next;
    }
    assert.equal(offset, at[records.length]);
  });

  test('a header split exactly across the read-ahead boundary is read whole', (t) => {
    const dir = tempDir(t);
    for (const split of [1, 4, 8, 11]) {
      // The first record ends `split` bytes before the buffer ends, so the second header straddles it.
      const firstLength = READ_AHEAD_BYTES - split - HEADER_BYTES;
      const records = [payload(firstLength, 1), payload(40, split), payload(5, 3)];
      writeChunk(dir, split, frames(records));
      const reader = openReader(t, dir, split);
      const first = reader.readAt(0);
      assert.equal(first.next, READ_AHEAD_BYTES - split);
      const second = reader.readAt(first.next);
      assert.deepEqual(new Uint8Array(second.payload), records[1], `split ${split}`);
      assert.deepEqual(new Uint8Array(reader.readAt(second.next).payload), records[2]);
    }
  });

  test('a record larger than the read-ahead buffer, between small ones', (t) => {
    const dir = tempDir(t);
    const records = [payload(50, 1), payload(3 * READ_AHEAD_BYTES + 17, 2), payload(60, 3), payload(READ_AHEAD_BYTES - HEADER_BYTES, 4), payload(1, 5)];
    writeChunk(dir, 0, frames(records));
    const reader = openReader(t, dir, 0);
    let offset = 0;
    for (let i = 0; i < records.length; i++) {
      const { payload: got, next } = reader.readAt(offset);
      assert.equal(got.length, records[i].length, `record ${i}`);
      assert.ok(Buffer.from(records[i]).equals(got), `record ${i}`);
      offset = next;
    }
  });

  test('skip moves past records by their headers; readAt then gives the right record', (t) => {
    const dir = tempDir(t);
    const records = Array.from({ length: 500 }, (_, i) => payload((i * 53) % 700, i));
    records[250] = payload(2 * READ_AHEAD_BYTES, 250);
    const at = offsets(records);
    writeChunk(dir, 0, frames(records));
    for (const k of [0, 1, 249, 250, 251, 499]) {
      const reader = openReader(t, dir, 0);
      const offset = reader.offsetAfterRecords(0, k);
      assert.equal(offset, at[k], `skip ${k}`);
      assert.deepEqual(new Uint8Array(reader.readAt(offset).payload), records[k], `record ${k}`);
    }
    const reader = openReader(t, dir, 0);
    assert.equal(reader.offsetAfterRecords(at[10], 5), at[15]);
    assert.equal(reader.offsetAfterRecords(0, 500), at[500]);
  });

  test('a record cut short by truncation is ERR_CORRUPT with the file and offset', (t) => {
    const dir = tempDir(t);
    const records = [payload(10, 1), payload(100, 2)];
    const at = offsets(records);
    const file = writeChunk(dir, 0, frames(records).subarray(0, at[2] - 30));
    const reader = openReader(t, dir, 0);
    reader.readAt(0);
    assert.throws(() => reader.readAt(at[1]), isCorrupt(dir, file, at[1]));
  });

  test('a large record cut short is ERR_CORRUPT', (t) => {
    const dir = tempDir(t);
    const records = [payload(2 * READ_AHEAD_BYTES, 1)];
    const file = writeChunk(dir, 0, frames(records).subarray(0, READ_AHEAD_BYTES + 100));
    const reader = openReader(t, dir, 0);
    assert.throws(() => reader.readAt(0), isCorrupt(dir, file, 0));
  });

  test('reading where no record is (past the end, or a partial header) is ERR_CORRUPT', (t) => {
    const dir = tempDir(t);
    const records = [payload(10, 1)];
    const at = offsets(records);
    const file = writeChunk(dir, 0, Buffer.concat([frames(records), Buffer.from([1, 2, 3])]));
    const reader = openReader(t, dir, 0);
    assert.throws(() => reader.readAt(at[1]), isCorrupt(dir, file, at[1]));
    assert.throws(() => reader.offsetAfterRecords(0, 2), isCorrupt(dir, file, at[1]));
  });

  test('a damaged header is ERR_CORRUPT for readAt and skip', (t) => {
    const dir = tempDir(t);
    const records = [payload(10, 1), payload(20, 2), payload(30, 3)];
    const at = offsets(records);
    const file = writeChunk(dir, 0, frames(records));
    flipByte(file, at[1] + 5);
    const reader = openReader(t, dir, 0);
    assert.deepEqual(new Uint8Array(reader.readAt(0).payload), records[0]);
    assert.throws(() => reader.readAt(at[1]), isCorrupt(dir, file, at[1]));
    assert.throws(() => reader.offsetAfterRecords(0, 2), isCorrupt(dir, file, at[1]));
  });

  test('a damaged payload is ERR_CORRUPT, never a wrong item', (t) => {
    const dir = tempDir(t);
    const records = [payload(10, 1), payload(20, 2)];
    const at = offsets(records);
    const file = writeChunk(dir, 0, frames(records));
    flipByte(file, at[1] + HEADER_BYTES + 19);
    const reader = openReader(t, dir, 0);
    assert.throws(() => reader.readAt(at[1]), (error: unknown) => {
      isCorrupt(dir, file, at[1])(error);
      assert.ok((error as Error).message.includes('payload'), (error as Error).message);
      return true;
    });
    // Headers are intact, so skipping over the damaged record still works.
    assert.equal(reader.offsetAfterRecords(0, 2), at[2]);
  });

  test('a record longer than maxItemBytes is ERR_CORRUPT', (t) => {
    const dir = tempDir(t);
    const file = writeChunk(dir, 0, frames([payload(500, 1)]));
    const reader = openReader(t, dir, 0, 499);
    assert.throws(() => reader.readAt(0), isCorrupt(dir, file, 0));
  });

  test('a missing chunk file is ERR_CORRUPT naming the file', (t) => {
    const dir = tempDir(t);
    assert.throws(() => new ChunkReader(dir, 3, MAX_ITEM), isCorrupt(dir, chunkPath(dir, 3)));
  });

  test('sees records appended after it was opened (and after its buffer was filled)', (t) => {
    const dir = tempDir(t);
    const writer = ChunkWriter.create(dir, 0);
    t.after(() => writer.close());
    const first = frames([payload(10, 1)]);
    writer.append(first, first.length, 1);
    const reader = openReader(t, dir, 0);
    const { next } = reader.readAt(0);
    const second = frames([payload(30, 2)]);
    writer.append(second, second.length, 1);
    assert.deepEqual(new Uint8Array(reader.readAt(next).payload), payload(30, 2));
  });
});
