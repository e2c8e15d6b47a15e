// lib/store/cursor.ts: the acknowledgements live in an atomically replaced cursor
// file plus an append-only log of variable-length entries. What is loaded is
// never newer than what was written: a torn or damaged entry only ever falls
// back to an older picture, and the reader resyncs past it to later entries.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { crc32c } from '../lib/store/crc32c.js';
import {
  CURSOR_FILE,
  CURSOR_LOG_FILE,
  CursorWriter,
  FOLD_EVERY,
  acknowledgedIn,
  loadCursor,
  writeCursorFile,
  type CursorState,
} from '../lib/store/cursor.js';
import { Queue } from '../lib/index.js';
import type { Range } from '../lib/store/ranges.js';
import { tempDir, tempQueueDir } from './helpers.js';

/** Bytes of a log entry without ranges, and what each range adds. */
const ENTRY_BYTES = 24;
const RANGE_BYTES = 12;
/** Bytes of a cursor file without ranges. */
const CURSOR_BYTES = 32;

function logPath(dir: string): string {
  return path.join(dir, CURSOR_LOG_FILE);
}

function cursorPath(dir: string): string {
  return path.join(dir, CURSOR_FILE);
}

function logSize(dir: string): number {
  return fs.statSync(logPath(dir)).size;
}

function state(ackSeq: number, headHint = 0, acked: Range[] = []): CursorState {
  return { ackSeq, headHint, acked };
}

/** A CursorWriter whose log is closed when the test ends (unless closed before). */
function openWriter(t: TestContext, dir: string, initial: CursorState, durable = false): CursorWriter {
  const writer = new CursorWriter(dir, initial, durable);
  let closed = false;
  t.after(() => {
    if (!closed) writer.closeLog();
  });
  const close = writer.closeLog.bind(writer);
  writer.closeLog = () => {
    closed = true;
    close();
  };
  return writer;
}

/**
 * A log entry as CursorWriter writes it: magic 'PQA2', u32 length, f64 ackSeq,
 * u32 range count, ranges (f64 start, u32 count), CRC-32C of what precedes it.
 * `rangeCount` overrides the count field (to build entries that lie about it).
 */
function entry(ackSeq: number, ranges: Range[] = [], rangeCount = ranges.length): Buffer {
  const bytes = Buffer.alloc(ENTRY_BYTES + ranges.length * RANGE_BYTES);
  bytes.writeUInt32LE(0x32415150, 0);
  bytes.writeUInt32LE(bytes.length, 4);
  bytes.writeDoubleLE(ackSeq, 8);
  bytes.writeUInt32LE(rangeCount, 16);
  ranges.forEach((range, i) => {
    bytes.writeDoubleLE(range.start, 20 + i * RANGE_BYTES);
    bytes.writeUInt32LE(range.count, 28 + i * RANGE_BYTES);
  });
  bytes.writeUInt32LE(crc32c(bytes, 0, bytes.length - 4), bytes.length - 4);
  return bytes;
}

/** A cursor file as writeCursorFile writes it: magic 'PQC2', u32 length, f64 ackSeq, f64 headHint, u32 n, ranges, CRC-32C. */
function cursorBytes(value: CursorState): Buffer {
  const bytes = Buffer.alloc(CURSOR_BYTES + value.acked.length * RANGE_BYTES);
  bytes.writeUInt32LE(0x32435150, 0);
  bytes.writeUInt32LE(bytes.length, 4);
  bytes.writeDoubleLE(value.ackSeq, 8);
  bytes.writeDoubleLE(value.headHint, 16);
  bytes.writeUInt32LE(value.acked.length, 24);
  value.acked.forEach((range, i) => {
    bytes.writeDoubleLE(range.start, 28 + i * RANGE_BYTES);
    bytes.writeUInt32LE(range.count, 36 + i * RANGE_BYTES);
  });
  bytes.writeUInt32LE(crc32c(bytes, 0, bytes.length - 4), bytes.length - 4);
  return bytes;
}

describe('CursorWriter.advance', () => {
  test('appends one entry per advance, in the documented format, and loadCursor reads the newest', (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, state(0), false);
    const writer = openWriter(t, dir, state(0));
    writer.advance(1);
    assert.equal(logSize(dir), ENTRY_BYTES);
    writer.advance(2);
    writer.advance(7);
    assert.equal(logSize(dir), 3 * ENTRY_BYTES);
    assert.deepEqual(fs.readFileSync(logPath(dir)), Buffer.concat([entry(1), entry(2), entry(7)]));
    assert.equal(writer.ackSeq, 7);
    const loaded = loadCursor(dir);
    assert.equal(loaded.logAckSeq, 7);
    assert.deepEqual(loaded.logAcked, []);
    assert.deepEqual(loaded.file, state(0));
    assert.equal(loaded.fileStatus, 'ok');
  });

  test('an entry with ranges holds the prefix and every range, 12 bytes each', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, state(0));
    writer.advance(3, [
      { start: 5, count: 2 },
      { start: 9, count: 1 },
      { start: 2 ** 40, count: 7 },
    ]);
    assert.equal(logSize(dir), ENTRY_BYTES + 3 * RANGE_BYTES);
    assert.deepEqual(
      fs.readFileSync(logPath(dir)),
      entry(3, [
        { start: 5, count: 2 },
        { start: 9, count: 1 },
        { start: 2 ** 40, count: 7 },
      ]),
    );
    assert.equal(writer.ackSeq, 3);
  });

  test('an advance with nothing new writes nothing; ranges alone, or a larger prefix, write one entry', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, state(10));
    writer.advance(10);
    writer.advance(3);
    // Ranges wholly below the prefix are nothing new either.
    writer.advance(3, [
      { start: 2, count: 5 },
      { start: 9, count: 1 },
    ]);
    assert.equal(logSize(dir), 0);
    assert.equal(loadCursor(dir).logAckSeq, null);
    // The same prefix with a range above it is new.
    writer.advance(10, [{ start: 12, count: 3 }]);
    assert.equal(writer.ackSeq, 10);
    // A smaller prefix never lowers it; its range is clipped to the prefix, and the one below dropped.
    writer.advance(5, [
      { start: 1, count: 2 },
      { start: 8, count: 4 },
    ]);
    assert.equal(writer.ackSeq, 10);
    writer.advance(11);
    writer.advance(5);
    assert.deepEqual(
      fs.readFileSync(logPath(dir)),
      Buffer.concat([entry(10, [{ start: 12, count: 3 }]), entry(10, [{ start: 10, count: 2 }]), entry(11)]),
    );
    const loaded = loadCursor(dir);
    assert.equal(loaded.logAckSeq, 11);
    assert.deepEqual(loaded.logAcked, [{ start: 10, count: 5 }]);
    assert.deepEqual(acknowledgedIn(loaded), { ackSeq: 11, acked: [{ start: 11, count: 4 }] });
  });

  test('large sequence numbers survive the round trip', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, state(0));
    writer.advance(2 ** 40 + 3, [{ start: 2 ** 40 + 10, count: 2 }]);
    writer.advance(Number.MAX_SAFE_INTEGER - 10, [{ start: Number.MAX_SAFE_INTEGER - 5, count: 5 }]);
    const loaded = loadCursor(dir);
    assert.equal(loaded.logAckSeq, Number.MAX_SAFE_INTEGER - 10);
    assert.deepEqual(loaded.logAcked, [
      { start: 2 ** 40 + 10, count: 2 },
      { start: Number.MAX_SAFE_INTEGER - 5, count: 5 },
    ]);
    assert.deepEqual(acknowledgedIn(loaded), {
      ackSeq: Number.MAX_SAFE_INTEGER - 10,
      acked: [{ start: Number.MAX_SAFE_INTEGER - 5, count: 5 }],
    });
  });

  test('a new writer appends after the entries already in the log', (t) => {
    const dir = tempDir(t);
    const first = openWriter(t, dir, state(0));
    first.advance(4, [{ start: 6, count: 1 }]);
    first.closeLog();
    const second = openWriter(t, dir, state(4));
    second.advance(9);
    assert.equal(logSize(dir), 2 * ENTRY_BYTES + RANGE_BYTES);
    assert.deepEqual(fs.readFileSync(logPath(dir)), Buffer.concat([entry(4, [{ start: 6, count: 1 }]), entry(9)]));
    assert.equal(loadCursor(dir).logAckSeq, 9);
  });
});

describe('loadCursor and acknowledgedIn with ranges', () => {
  test('ranges of every entry are merged; the prefix is the largest in any entry', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, state(0));
    writer.advance(2, [{ start: 5, count: 1 }]);
    writer.advance(2, [{ start: 7, count: 2 }]);
    writer.advance(3, [
      { start: 6, count: 1 },
      { start: 20, count: 4 },
    ]);
    writer.closeLog();
    const loaded = loadCursor(dir);
    assert.deepEqual(loaded, {
      file: null,
      fileStatus: 'missing',
      logAckSeq: 3,
      logAcked: [
        { start: 5, count: 4 },
        { start: 20, count: 4 },
      ],
    });
    assert.deepEqual(acknowledgedIn(loaded), {
      ackSeq: 3,
      acked: [
        { start: 5, count: 4 },
        { start: 20, count: 4 },
      ],
    });
  });

  test("the prefix is the largest in any entry, not the last one's", (t) => {
    const dir = tempDir(t);
    // An older entry after a newer one (say, of another process that shares the log).
    fs.writeFileSync(
      logPath(dir),
      Buffer.concat([
        entry(2),
        entry(9, [{ start: 11, count: 1 }]),
        entry(4, [
          { start: 6, count: 1 },
          { start: 13, count: 1 },
        ]),
      ]),
    );
    const loaded = loadCursor(dir);
    assert.equal(loaded.logAckSeq, 9);
    assert.deepEqual(acknowledgedIn(loaded), {
      ackSeq: 9,
      acked: [
        { start: 11, count: 1 },
        { start: 13, count: 1 },
      ],
    });
  });

  test('ranges below the prefix are dropped and a range across it is clipped', (t) => {
    const dir = tempDir(t);
    // Entries written by older states: the later prefix 7 covers part of them.
    fs.writeFileSync(
      logPath(dir),
      Buffer.concat([
        entry(2, [
          { start: 3, count: 2 },
          { start: 6, count: 3 },
        ]),
        entry(7, [{ start: 12, count: 1 }]),
      ]),
    );
    const loaded = loadCursor(dir);
    assert.equal(loaded.logAckSeq, 7);
    assert.deepEqual(loaded.logAcked, [
      { start: 3, count: 2 },
      { start: 6, count: 3 },
      { start: 12, count: 1 },
    ]);
    assert.deepEqual(acknowledgedIn(loaded), {
      ackSeq: 7,
      acked: [
        { start: 7, count: 2 },
        { start: 12, count: 1 },
      ],
    });
  });

  test("the cursor file's ranges and the log's are united, above the larger prefix", (t) => {
    const dir = tempDir(t);
    writeCursorFile(
      dir,
      state(4, 1, [
        { start: 6, count: 2 },
        { start: 30, count: 5 },
      ]),
      false,
    );
    fs.writeFileSync(logPath(dir), Buffer.concat([entry(5, [{ start: 8, count: 1 }]), entry(7, [{ start: 33, count: 4 }])]));
    const loaded = loadCursor(dir);
    assert.deepEqual(
      loaded.file,
      state(4, 1, [
        { start: 6, count: 2 },
        { start: 30, count: 5 },
      ]),
    );
    assert.deepEqual(acknowledgedIn(loaded), {
      ackSeq: 7,
      acked: [
        { start: 7, count: 2 },
        { start: 30, count: 7 },
      ],
    });
  });

  test("a prefix in the file larger than the log's wins, and drops the log's ranges below it", (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, state(50, 2, [{ start: 60, count: 1 }]), false);
    fs.writeFileSync(
      logPath(dir),
      entry(10, [
        { start: 20, count: 5 },
        { start: 49, count: 3 },
        { start: 70, count: 2 },
      ]),
    );
    assert.deepEqual(acknowledgedIn(loadCursor(dir)), {
      ackSeq: 50,
      acked: [
        { start: 50, count: 2 },
        { start: 60, count: 1 },
        { start: 70, count: 2 },
      ],
    });
  });

  test('with no files at all, nothing is acknowledged', (t) => {
    const dir = tempDir(t);
    const loaded = loadCursor(dir);
    assert.deepEqual(loaded, { file: null, fileStatus: 'missing', logAckSeq: null, logAcked: [] });
    assert.deepEqual(acknowledgedIn(loaded), { ackSeq: 0, acked: [] });
  });
});

describe('folding', () => {
  test('fold writes the prefix and the acked ranges into the cursor file and empties the log', (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, state(0), false);
    const writer = openWriter(t, dir, state(0));
    writer.advance(5, [{ start: 8, count: 2 }]);
    writer.advance(6, [{ start: 12, count: 1 }]);
    writer.setHeadHint(3);
    assert.equal(writer.foldedHeadHint, 0);
    writer.fold([
      { start: 8, count: 2 },
      { start: 12, count: 1 },
    ]);
    assert.equal(logSize(dir), 0);
    assert.equal(writer.foldedHeadHint, 3);
    assert.deepEqual(
      fs.readFileSync(cursorPath(dir)),
      cursorBytes(
        state(6, 3, [
          { start: 8, count: 2 },
          { start: 12, count: 1 },
        ]),
      ),
    );
    const loaded = loadCursor(dir);
    assert.deepEqual(loaded, {
      file: state(6, 3, [
        { start: 8, count: 2 },
        { start: 12, count: 1 },
      ]),
      fileStatus: 'ok',
      logAckSeq: null,
      logAcked: [],
    });
    // Entries after a fold start the log again from its beginning.
    writer.advance(9);
    assert.equal(logSize(dir), ENTRY_BYTES);
    assert.equal(loadCursor(dir).logAckSeq, 9);
    assert.deepEqual(acknowledgedIn(loadCursor(dir)), {
      ackSeq: 9,
      acked: [
        { start: 9, count: 1 },
        { start: 12, count: 1 },
      ],
    });
  });

  test('fold clips the ranges to the prefix: below it they are dropped, across it cut', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, state(0));
    writer.advance(6);
    writer.fold([
      { start: 2, count: 3 },
      { start: 5, count: 2 },
      { start: 9, count: 1 },
    ]);
    assert.deepEqual(
      loadCursor(dir).file,
      state(6, 0, [
        { start: 6, count: 1 },
        { start: 9, count: 1 },
      ]),
    );
    assert.deepEqual(
      fs.readFileSync(cursorPath(dir)),
      cursorBytes(
        state(6, 0, [
          { start: 6, count: 1 },
          { start: 9, count: 1 },
        ]),
      ),
    );
  });

  test('the folded ranges survive a reopen, and later entries add to them', (t) => {
    const dir = tempDir(t);
    const first = openWriter(t, dir, state(0));
    first.advance(3, [
      { start: 5, count: 1 },
      { start: 10, count: 3 },
    ]);
    first.setHeadHint(1);
    first.fold([
      { start: 5, count: 1 },
      { start: 10, count: 3 },
    ]);
    first.closeLog();
    const loaded = loadCursor(dir);
    assert.deepEqual(acknowledgedIn(loaded), {
      ackSeq: 3,
      acked: [
        { start: 5, count: 1 },
        { start: 10, count: 3 },
      ],
    });
    assert.ok(loaded.file !== null);
    const second = openWriter(t, dir, loaded.file);
    assert.equal(second.ackSeq, 3);
    assert.equal(second.headHint, 1);
    assert.equal(second.foldedHeadHint, 1);
    assert.equal(second.wantsFold, false);
    second.advance(4, [{ start: 6, count: 1 }]);
    second.closeLog();
    assert.deepEqual(acknowledgedIn(loadCursor(dir)), {
      ackSeq: 4,
      acked: [
        { start: 5, count: 2 },
        { start: 10, count: 3 },
      ],
    });
  });

  test('a durable fold writes the same file', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, state(2, 1), true);
    writer.advance(6, [{ start: 8, count: 1 }]);
    writer.fold([{ start: 8, count: 1 }]);
    assert.deepEqual(loadCursor(dir).file, state(6, 1, [{ start: 8, count: 1 }]));
    assert.deepEqual(fs.readFileSync(cursorPath(dir)), cursorBytes(state(6, 1, [{ start: 8, count: 1 }])));
  });

  test(`after FOLD_EVERY (${FOLD_EVERY}) entries the writer wants a fold, and does not fold by itself`, (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, state(0), false);
    const writer = openWriter(t, dir, state(0));
    for (let seq = 1; seq < FOLD_EVERY; seq++) writer.advance(seq);
    // Advances that write nothing do not count.
    writer.advance(1);
    writer.advance(FOLD_EVERY - 1);
    assert.equal(writer.wantsFold, false);
    assert.equal(logSize(dir), (FOLD_EVERY - 1) * ENTRY_BYTES);
    writer.advance(FOLD_EVERY);
    assert.equal(writer.wantsFold, true);
    assert.equal(logSize(dir), FOLD_EVERY * ENTRY_BYTES);
    assert.deepEqual(loadCursor(dir).file, state(0));
    writer.fold([]);
    assert.equal(writer.wantsFold, false);
    assert.equal(logSize(dir), 0);
    assert.deepEqual(loadCursor(dir).file, state(FOLD_EVERY));
    writer.advance(FOLD_EVERY + 1);
    assert.equal(writer.wantsFold, false);
    assert.equal(loadCursor(dir).logAckSeq, FOLD_EVERY + 1);
  });

  test('entries already in the log count towards the next fold', (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, state(0), false);
    const first = openWriter(t, dir, state(0));
    for (let seq = 1; seq <= FOLD_EVERY - 2; seq++) first.advance(seq, seq % 2 === 0 ? [{ start: seq + 5, count: 1 }] : []);
    first.closeLog();
    const second = openWriter(t, dir, state(FOLD_EVERY - 2));
    assert.equal(second.wantsFold, false);
    second.advance(FOLD_EVERY - 1);
    assert.equal(second.wantsFold, false);
    second.advance(FOLD_EVERY);
    assert.equal(second.wantsFold, true);
    second.fold([]);
    assert.equal(logSize(dir), 0);
    assert.equal(loadCursor(dir).file?.ackSeq, FOLD_EVERY);
  });

  test('a crash before the fold wrote the cursor file: the log still holds everything', (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, state(0), false);
    const writer = openWriter(t, dir, state(0));
    writer.advance(3, [{ start: 5, count: 2 }]);
    writer.advance(4, [{ start: 9, count: 1 }]);
    writer.closeLog();
    // (The crash: neither the file was replaced nor the log emptied.)
    assert.deepEqual(acknowledgedIn(loadCursor(dir)), {
      ackSeq: 4,
      acked: [
        { start: 5, count: 2 },
        { start: 9, count: 1 },
      ],
    });
  });

  test('a crash between writing the cursor file and emptying the log: the stale log adds nothing wrong', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, state(0));
    writer.advance(3, [{ start: 5, count: 2 }]);
    writer.advance(4, [
      { start: 9, count: 1 },
      { start: 30, count: 2 },
    ]);
    writer.closeLog();
    // What the fold wrote before the crash; the log was not emptied.
    writeCursorFile(
      dir,
      state(7, 0, [
        { start: 9, count: 1 },
        { start: 30, count: 2 },
      ]),
      false,
    );
    const loaded = loadCursor(dir);
    assert.equal(loaded.file?.ackSeq, 7);
    assert.equal(loaded.logAckSeq, 4);
    assert.deepEqual(acknowledgedIn(loaded), {
      ackSeq: 7,
      acked: [
        { start: 9, count: 1 },
        { start: 30, count: 2 },
      ],
    });
  });
});

describe('loadCursor', () => {
  test('reports the cursor file and the log separately', (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, state(10, 2), false);
    const writer = openWriter(t, dir, state(10, 2));
    writer.advance(15, [{ start: 17, count: 1 }]);
    const loaded = loadCursor(dir);
    assert.deepEqual(loaded, { file: state(10, 2), fileStatus: 'ok', logAckSeq: 15, logAcked: [{ start: 17, count: 1 }] });
  });

  test('a log with stale entries older than the file (a crash between fold and emptying the log)', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, state(0));
    writer.advance(3);
    writer.advance(4);
    writer.closeLog();
    writeCursorFile(dir, state(20), false);
    const loaded = loadCursor(dir);
    assert.equal(loaded.file?.ackSeq, 20);
    assert.equal(loaded.logAckSeq, 4);
    assert.equal(acknowledgedIn(loaded).ackSeq, 20);
  });

  test('a queue reopens at the larger of the file and the log, whichever is newer', async (t) => {
    for (const [fileSeq, logSeq, expected] of [
      [10, 15, 15],
      [20, 15, 20],
    ] as const) {
      const dir = tempQueueDir(t, `q-${fileSeq}-${logSeq}`);
      const q = await Queue.open<number>(dir, { chunkSize: 100 });
      await q.putMany(Array.from({ length: 30 }, (_, i) => i));
      await q.close();
      // What a crash would leave: the file at one value, the log at another.
      fs.rmSync(logPath(dir), { force: true });
      const writer = openWriter(t, dir, state(0));
      writer.advance(logSeq);
      writer.closeLog();
      writeCursorFile(dir, state(fileSeq), false);
      const reopened = await Queue.open<number>(dir);
      try {
        assert.equal(reopened.size, 30 - expected, `file ${fileSeq}, log ${logSeq}`);
        assert.equal(await reopened.get(), expected, `file ${fileSeq}, log ${logSeq}`);
      } finally {
        await reopened.close();
      }
    }
  });

  test('a torn last entry falls back to the previous entries, at every cut', (t) => {
    const dir = tempDir(t);
    const older = entry(5, [{ start: 8, count: 1 }]);
    const newest = entry(6, [
      { start: 9, count: 2 },
      { start: 20, count: 1 },
    ]);
    for (let keep = 0; keep < newest.length; keep++) {
      fs.writeFileSync(logPath(dir), Buffer.concat([older, newest.subarray(0, keep)]));
      const loaded = loadCursor(dir);
      assert.equal(loaded.logAckSeq, 5, `${keep} bytes of the last entry`);
      assert.deepEqual(loaded.logAcked, [{ start: 8, count: 1 }], `${keep} bytes of the last entry`);
    }
    fs.writeFileSync(logPath(dir), Buffer.concat([older, newest]));
    assert.equal(loadCursor(dir).logAckSeq, 6);
  });

  test('a flipped bit anywhere in the newest entry falls back to the previous entry, never forward', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, state(0));
    writer.advance(5, [{ start: 8, count: 1 }]);
    writer.advance(6, [
      { start: 9, count: 2 },
      { start: 20, count: 1 },
    ]);
    writer.closeLog();
    const good = fs.readFileSync(logPath(dir));
    const first = ENTRY_BYTES + RANGE_BYTES;
    assert.equal(good.length, first + ENTRY_BYTES + 2 * RANGE_BYTES);
    for (let bit = 0; bit < (good.length - first) * 8; bit++) {
      const damaged = Buffer.from(good);
      damaged[first + (bit >> 3)] ^= 1 << (bit & 7);
      fs.writeFileSync(logPath(dir), damaged);
      const loaded = loadCursor(dir);
      assert.equal(loaded.logAckSeq, 5, `flipped bit ${bit}`);
      assert.deepEqual(loaded.logAcked, [{ start: 8, count: 1 }], `flipped bit ${bit}`);
    }
  });

  test('a damaged entry in the middle is skipped and the entries after it still count', (t) => {
    const dir = tempDir(t);
    const a = entry(3, [{ start: 5, count: 1 }]);
    const b = entry(4, [{ start: 7, count: 1 }]);
    const c = entry(6, [{ start: 9, count: 1 }]);
    const d = entry(8, [{ start: 12, count: 2 }]);
    const good = Buffer.concat([a, b, c, d]);
    for (let bit = 0; bit < b.length * 8; bit++) {
      const damaged = Buffer.from(good);
      damaged[a.length + (bit >> 3)] ^= 1 << (bit & 7);
      fs.writeFileSync(logPath(dir), damaged);
      const loaded = loadCursor(dir);
      assert.equal(loaded.logAckSeq, 8, `flipped bit ${bit}`);
      assert.deepEqual(
        loaded.logAcked,
        [
          { start: 5, count: 1 },
          { start: 9, count: 1 },
          { start: 12, count: 2 },
        ],
        `flipped bit ${bit}`,
      );
    }
  });

  test('garbage between entries, or a torn entry followed by whole ones, is skipped', (t) => {
    const dir = tempDir(t);
    const cases: Array<[string, Buffer]> = [
      ['garbage', Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])],
      ['a torn entry', entry(99, [{ start: 100, count: 1 }]).subarray(0, 17)],
      ['zeros', Buffer.alloc(40)],
      ['the magic alone', entry(99).subarray(0, 4)],
    ];
    for (const [what, junk] of cases) {
      fs.writeFileSync(logPath(dir), Buffer.concat([entry(3), junk, entry(6, [{ start: 9, count: 1 }]), junk, entry(7)]));
      const loaded = loadCursor(dir);
      assert.equal(loaded.logAckSeq, 7, what);
      assert.deepEqual(loaded.logAcked, [{ start: 9, count: 1 }], what);
    }
  });

  test('a log whose only entry is damaged holds nothing', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, state(0));
    writer.advance(5, [{ start: 7, count: 1 }]);
    writer.closeLog();
    const bytes = fs.readFileSync(logPath(dir));
    bytes[10] ^= 0x01;
    fs.writeFileSync(logPath(dir), bytes);
    assert.deepEqual(loadCursor(dir), { file: null, fileStatus: 'missing', logAckSeq: null, logAcked: [] });
  });

  test('a log entry with a valid checksum but not a sequence number, or not a valid range, is ignored', (t) => {
    const dir = tempDir(t);
    fs.writeFileSync(
      logPath(dir),
      Buffer.concat([
        entry(3, [{ start: 4, count: 1 }]),
        entry(-1),
        entry(1.5),
        entry(Number.NaN),
        entry(2 ** 60),
        entry(Number.POSITIVE_INFINITY),
        entry(50, [{ start: -1, count: 1 }]),
        entry(51, [{ start: 1.5, count: 1 }]),
        entry(52, [{ start: 60, count: 0 }]),
        entry(53, [{ start: Number.MAX_SAFE_INTEGER, count: 1 }]),
        entry(54, [{ start: 61, count: 1 }], 2),
        entry(55, [{ start: 62, count: 1 }], 0),
      ]),
    );
    const loaded = loadCursor(dir);
    assert.equal(loaded.logAckSeq, 3);
    assert.deepEqual(loaded.logAcked, [{ start: 4, count: 1 }]);
  });

  test('a missing cursor file is reported as missing', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, state(0));
    writer.advance(2);
    const loaded = loadCursor(dir);
    assert.equal(loaded.fileStatus, 'missing');
    assert.equal(loaded.file, null);
    assert.equal(loaded.logAckSeq, 2);
  });

  test('a damaged cursor file is reported as damaged: any flipped bit, truncation, extra bytes, garbage', (t) => {
    const dir = tempDir(t);
    const value = state(12, 3, [
      { start: 14, count: 2 },
      { start: 40, count: 9 },
    ]);
    writeCursorFile(dir, value, false);
    const good = fs.readFileSync(cursorPath(dir));
    assert.equal(good.length, CURSOR_BYTES + 2 * RANGE_BYTES);
    assert.deepEqual(good, cursorBytes(value));
    assert.deepEqual(loadCursor(dir).file, value);
    const variants: Array<[string, Buffer]> = [];
    for (let bit = 0; bit < good.length * 8; bit++) {
      const damaged = Buffer.from(good);
      damaged[bit >> 3] ^= 1 << (bit & 7);
      variants.push([`flipped bit ${bit}`, damaged]);
    }
    for (let cut = 0; cut < good.length; cut++) variants.push([`cut to ${cut} bytes`, good.subarray(0, cut)]);
    variants.push(['an extra byte', Buffer.concat([good, Buffer.from([0])])]);
    variants.push(['an extra range', Buffer.concat([good, Buffer.alloc(RANGE_BYTES)])]);
    variants.push(['text', Buffer.from('{"ackSeq": 12, "headHint": 3}\n')]);
    variants.push(['a version 1 cursor file', Buffer.concat([Buffer.from('PQCR'), Buffer.alloc(20)])]);
    for (const [what, bytes] of variants) {
      fs.writeFileSync(cursorPath(dir), bytes);
      const loaded = loadCursor(dir);
      assert.equal(loaded.fileStatus, 'damaged', what);
      assert.equal(loaded.file, null, what);
    }
  });

  test('a cursor file with a valid checksum but an impossible value is damaged', (t) => {
    const dir = tempDir(t);
    for (const value of [
      state(-1),
      state(1.5),
      state(0, Number.NaN),
      state(2 ** 60),
      state(0, -2),
      state(0, 0, [{ start: 1.5, count: 1 }]),
      state(0, 0, [{ start: 5, count: 0 }]),
      state(0, 0, [{ start: Number.MAX_SAFE_INTEGER, count: 2 }]),
    ]) {
      writeCursorFile(dir, value, false);
      assert.equal(loadCursor(dir).fileStatus, 'damaged', JSON.stringify(value));
    }
  });

  test('writeCursorFile clips the ranges to the prefix', (t) => {
    const dir = tempDir(t);
    writeCursorFile(
      dir,
      state(10, 4, [
        { start: 1, count: 3 },
        { start: 8, count: 5 },
        { start: 20, count: 2 },
      ]),
      false,
    );
    assert.deepEqual(
      fs.readFileSync(cursorPath(dir)),
      cursorBytes(
        state(10, 4, [
          { start: 10, count: 3 },
          { start: 20, count: 2 },
        ]),
      ),
    );
    assert.deepEqual(
      loadCursor(dir).file,
      state(10, 4, [
        { start: 10, count: 3 },
        { start: 20, count: 2 },
      ]),
    );
    assert.deepEqual(acknowledgedIn(loadCursor(dir)), {
      ackSeq: 10,
      acked: [
        { start: 10, count: 3 },
        { start: 20, count: 2 },
      ],
    });
  });

  test('writeCursorFile replaces the file atomically and leaves no temporary file behind', (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, state(1, 0, [{ start: 3, count: 1 }]), true);
    writeCursorFile(dir, state(2, 5), true);
    assert.deepEqual(loadCursor(dir).file, state(2, 5));
    assert.deepEqual(fs.readdirSync(dir), [CURSOR_FILE]);
  });
});

describe('a torn or damaged log left by a crash, then more acknowledgements', () => {
  test('a torn last entry is cut on open, at every cut, and new entries follow the last whole one', (t) => {
    const dir = tempDir(t);
    const whole = Buffer.concat([entry(4), entry(5, [{ start: 7, count: 1 }])]);
    const torn = entry(6, [{ start: 9, count: 1 }]);
    for (let keep = 1; keep < torn.length; keep++) {
      fs.writeFileSync(logPath(dir), Buffer.concat([whole, torn.subarray(0, keep)]));
      const writer = new CursorWriter(dir, state(5), false);
      try {
        assert.equal(logSize(dir), whole.length, `${keep} bytes of a torn entry`);
        writer.advance(8, [{ start: 11, count: 1 }]);
      } finally {
        writer.closeLog();
      }
      assert.deepEqual(fs.readFileSync(logPath(dir)), Buffer.concat([whole, entry(8, [{ start: 11, count: 1 }])]), `${keep} bytes`);
    }
  });

  test('entries appended after a torn entry are still found on the next load', (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, state(0), false);
    // A power loss left 7 bytes of a third entry after two whole ones.
    fs.writeFileSync(logPath(dir), Buffer.concat([entry(4), entry(5, [{ start: 7, count: 1 }]), entry(6).subarray(0, 7)]));
    const writer = openWriter(t, dir, state(5));
    writer.advance(8);
    writer.advance(9, [{ start: 11, count: 1 }]);
    // A crash now (before any fold) must not lose acknowledgements 8, 9 and 11.
    const loaded = loadCursor(dir);
    assert.equal(loaded.logAckSeq, 9);
    assert.deepEqual(loaded.logAcked, [
      { start: 7, count: 1 },
      { start: 11, count: 1 },
    ]);
    assert.deepEqual(acknowledgedIn(loaded), { ackSeq: 9, acked: [{ start: 11, count: 1 }] });
  });

  test('a damaged last entry (whole but failing its checksum) is cut on open too', (t) => {
    const dir = tempDir(t);
    const whole = entry(4, [{ start: 6, count: 1 }]);
    const damaged = entry(5, [{ start: 7, count: 1 }]);
    damaged[12] ^= 0x04;
    fs.writeFileSync(logPath(dir), Buffer.concat([whole, damaged]));
    const writer = openWriter(t, dir, state(4));
    assert.equal(logSize(dir), whole.length);
    writer.advance(5);
    assert.deepEqual(fs.readFileSync(logPath(dir)), Buffer.concat([whole, entry(5)]));
  });

  test('a damaged entry in the middle is left alone on open: the whole entries after it are kept', (t) => {
    const dir = tempDir(t);
    const damaged = entry(5, [{ start: 7, count: 1 }]);
    damaged[20] ^= 0x01;
    const bytes = Buffer.concat([entry(4), damaged, entry(6, [{ start: 9, count: 1 }])]);
    fs.writeFileSync(logPath(dir), bytes);
    const writer = openWriter(t, dir, state(6));
    assert.deepEqual(fs.readFileSync(logPath(dir)), bytes);
    writer.advance(10);
    const loaded = loadCursor(dir);
    assert.equal(loaded.logAckSeq, 10);
    assert.deepEqual(loaded.logAcked, [{ start: 9, count: 1 }]);
  });
});
