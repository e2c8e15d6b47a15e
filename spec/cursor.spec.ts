// lib/cursor.ts: the read cursor lives in an atomically replaced file plus an
// append-only log. What is loaded is never newer than what was written, and a
// damaged entry only ever falls back to an older value.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { crc32c } from '../lib/crc32c.js';
import { CURSOR_FILE, CURSOR_LOG_FILE, CursorWriter, FOLD_EVERY, loadCursor, writeCursorFile, type CursorState } from '../lib/cursor.js';
import { Queue } from '../lib/index.js';
import { tempDir, tempQueueDir } from './helpers.js';

const LOG_ENTRY_BYTES = 16;

function logPath(dir: string): string {
  return path.join(dir, CURSOR_LOG_FILE);
}

function cursorPath(dir: string): string {
  return path.join(dir, CURSOR_FILE);
}

function logSize(dir: string): number {
  return fs.statSync(logPath(dir)).size;
}

/** A CursorWriter whose log is closed when the test ends (unless closed before). */
function openWriter(t: TestContext, dir: string, state: CursorState, durable = false): CursorWriter {
  const writer = new CursorWriter(dir, state, durable);
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

describe('CursorWriter.advance', () => {
  test('appends one 16-byte entry per advance and loadCursor reads the newest', (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, { ackSeq: 0, headHint: 0 }, false);
    const writer = openWriter(t, dir, { ackSeq: 0, headHint: 0 });
    writer.advance(1);
    assert.equal(logSize(dir), LOG_ENTRY_BYTES);
    writer.advance(2);
    writer.advance(7);
    assert.equal(logSize(dir), 3 * LOG_ENTRY_BYTES);
    assert.equal(writer.state.ackSeq, 7);
    const loaded = loadCursor(dir);
    assert.equal(loaded.logAckSeq, 7);
    assert.deepEqual(loaded.file, { ackSeq: 0, headHint: 0 });
    assert.equal(loaded.fileStatus, 'ok');
  });

  test('an advance to a value not above the current one writes nothing', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, { ackSeq: 10, headHint: 0 });
    writer.advance(10);
    writer.advance(3);
    assert.equal(logSize(dir), 0);
    assert.equal(loadCursor(dir).logAckSeq, null);
    writer.advance(11);
    writer.advance(5);
    assert.equal(logSize(dir), LOG_ENTRY_BYTES);
    assert.equal(loadCursor(dir).logAckSeq, 11);
  });

  test('large sequence numbers survive the round trip', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, { ackSeq: 0, headHint: 0 });
    writer.advance(2 ** 40 + 3);
    writer.advance(Number.MAX_SAFE_INTEGER);
    assert.equal(loadCursor(dir).logAckSeq, Number.MAX_SAFE_INTEGER);
  });

  test('a new writer appends after the entries already in the log', (t) => {
    const dir = tempDir(t);
    const first = openWriter(t, dir, { ackSeq: 0, headHint: 0 });
    first.advance(4);
    first.closeLog();
    const second = openWriter(t, dir, { ackSeq: 4, headHint: 0 });
    second.advance(9);
    assert.equal(logSize(dir), 2 * LOG_ENTRY_BYTES);
    assert.equal(loadCursor(dir).logAckSeq, 9);
  });
});

describe('folding', () => {
  test('fold writes the state into the cursor file and empties the log', (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, { ackSeq: 0, headHint: 0 }, false);
    const writer = openWriter(t, dir, { ackSeq: 0, headHint: 0 });
    writer.advance(5);
    writer.advance(8);
    writer.setHeadHint(3);
    writer.fold();
    assert.equal(logSize(dir), 0);
    const loaded = loadCursor(dir);
    assert.deepEqual(loaded.file, { ackSeq: 8, headHint: 3 });
    assert.equal(loaded.logAckSeq, null);
    // Entries after a fold start the log again from its beginning.
    writer.advance(9);
    assert.equal(logSize(dir), LOG_ENTRY_BYTES);
    assert.equal(loadCursor(dir).logAckSeq, 9);
  });

  test('a durable fold writes the same file', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, { ackSeq: 2, headHint: 1 }, true);
    writer.advance(6);
    writer.fold();
    assert.deepEqual(loadCursor(dir).file, { ackSeq: 6, headHint: 1 });
  });

  test(`every FOLD_EVERY (${FOLD_EVERY}) entries the log is folded into the file`, (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, { ackSeq: 0, headHint: 0 }, false);
    const writer = openWriter(t, dir, { ackSeq: 0, headHint: 0 });
    for (let seq = 1; seq < FOLD_EVERY; seq++) writer.advance(seq);
    assert.equal(logSize(dir), (FOLD_EVERY - 1) * LOG_ENTRY_BYTES);
    assert.deepEqual(loadCursor(dir).file, { ackSeq: 0, headHint: 0 });
    writer.advance(FOLD_EVERY);
    assert.equal(logSize(dir), 0);
    assert.deepEqual(loadCursor(dir).file, { ackSeq: FOLD_EVERY, headHint: 0 });
    writer.advance(FOLD_EVERY + 1);
    assert.equal(loadCursor(dir).logAckSeq, FOLD_EVERY + 1);
  });

  test('entries already in the log count towards the next fold', (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, { ackSeq: 0, headHint: 0 }, false);
    const first = openWriter(t, dir, { ackSeq: 0, headHint: 0 });
    for (let seq = 1; seq <= FOLD_EVERY - 2; seq++) first.advance(seq);
    first.closeLog();
    const second = openWriter(t, dir, { ackSeq: FOLD_EVERY - 2, headHint: 0 });
    second.advance(FOLD_EVERY - 1);
    assert.equal(logSize(dir), (FOLD_EVERY - 1) * LOG_ENTRY_BYTES);
    second.advance(FOLD_EVERY);
    assert.equal(logSize(dir), 0);
    assert.equal(loadCursor(dir).file?.ackSeq, FOLD_EVERY);
  });
});

describe('loadCursor', () => {
  test('reports the cursor file and the newest log entry separately', (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, { ackSeq: 10, headHint: 2 }, false);
    const writer = openWriter(t, dir, { ackSeq: 10, headHint: 2 });
    writer.advance(15);
    const loaded = loadCursor(dir);
    assert.deepEqual(loaded, { file: { ackSeq: 10, headHint: 2 }, fileStatus: 'ok', logAckSeq: 15 });
  });

  test('with no files at all, the file is missing and the log holds nothing', (t) => {
    const dir = tempDir(t);
    assert.deepEqual(loadCursor(dir), { file: null, fileStatus: 'missing', logAckSeq: null });
  });

  test('a log with stale entries older than the file (a crash between fold and emptying the log)', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, { ackSeq: 0, headHint: 0 });
    writer.advance(3);
    writer.advance(4);
    writer.closeLog();
    writeCursorFile(dir, { ackSeq: 20, headHint: 0 }, false);
    const loaded = loadCursor(dir);
    assert.equal(loaded.file?.ackSeq, 20);
    assert.equal(loaded.logAckSeq, 4);
  });

  test('a queue reopens at the larger of the file and the log, whichever is newer', async (t) => {
    for (const [fileSeq, logSeq, expected] of [[10, 15, 15], [20, 15, 20]] as const) {
      const dir = tempQueueDir(t, `q-${fileSeq}-${logSeq}`);
      const q = await Queue.open<number>(dir, { chunkSize: 100 });
      await q.putMany(Array.from({ length: 30 }, (_, i) => i));
      await q.close();
      // What a crash would leave: the file at one value, the log at another.
      fs.rmSync(logPath(dir), { force: true });
      const writer = openWriter(t, dir, { ackSeq: 0, headHint: 0 });
      writer.advance(logSeq);
      writer.closeLog();
      writeCursorFile(dir, { ackSeq: fileSeq, headHint: 0 }, false);
      const reopened = await Queue.open<number>(dir);
      try {
        assert.equal(reopened.size, 30 - expected, `file ${fileSeq}, log ${logSeq}`);
        assert.equal(await reopened.get(), expected, `file ${fileSeq}, log ${logSeq}`);
      } finally {
        await reopened.close();
      }
    }
  });

  test('a torn log entry at the end falls back to the previous entry', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, { ackSeq: 0, headHint: 0 });
    writer.advance(5);
    writer.advance(6);
    writer.closeLog();
    for (const keep of [1, 4, 8, 12, 15]) {
      const bytes = fs.readFileSync(logPath(dir)).subarray(0, LOG_ENTRY_BYTES + keep);
      fs.writeFileSync(logPath(dir), bytes);
      assert.equal(loadCursor(dir).logAckSeq, 5, `${keep} bytes of the last entry`);
      // Restore the full log for the next cut.
      fs.writeFileSync(logPath(dir), Buffer.concat([bytes.subarray(0, LOG_ENTRY_BYTES), entry(6)]));
    }
  });

  test('a flipped bit anywhere in the newest entry falls back to the previous entry', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, { ackSeq: 0, headHint: 0 });
    writer.advance(5);
    writer.advance(6);
    writer.closeLog();
    const good = fs.readFileSync(logPath(dir));
    for (let bit = 0; bit < LOG_ENTRY_BYTES * 8; bit++) {
      const damaged = Buffer.from(good);
      damaged[LOG_ENTRY_BYTES + (bit >> 3)] ^= 1 << (bit & 7);
      fs.writeFileSync(logPath(dir), damaged);
      assert.equal(loadCursor(dir).logAckSeq, 5, `flipped bit ${bit}`);
    }
  });

  test('a log whose only entry is damaged holds nothing', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, { ackSeq: 0, headHint: 0 });
    writer.advance(5);
    writer.closeLog();
    const bytes = fs.readFileSync(logPath(dir));
    bytes[6] ^= 0x01;
    fs.writeFileSync(logPath(dir), bytes);
    assert.equal(loadCursor(dir).logAckSeq, null);
  });

  test('a log entry with a valid checksum but not a sequence number is ignored', (t) => {
    const dir = tempDir(t);
    fs.writeFileSync(logPath(dir), Buffer.concat([entry(3), entry(-1), entry(1.5), entry(Number.NaN), entry(2 ** 60)]));
    assert.equal(loadCursor(dir).logAckSeq, 3);
  });

  test('a missing cursor file is reported as missing', (t) => {
    const dir = tempDir(t);
    const writer = openWriter(t, dir, { ackSeq: 0, headHint: 0 });
    writer.advance(2);
    const loaded = loadCursor(dir);
    assert.equal(loaded.fileStatus, 'missing');
    assert.equal(loaded.file, null);
    assert.equal(loaded.logAckSeq, 2);
  });

  test('a damaged cursor file is reported as damaged: any flipped bit, truncation, extra bytes, garbage', (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, { ackSeq: 12, headHint: 3 }, false);
    const good = fs.readFileSync(cursorPath(dir));
    assert.deepEqual(loadCursor(dir).file, { ackSeq: 12, headHint: 3 });
    const variants: Array<[string, Buffer]> = [];
    for (let bit = 0; bit < good.length * 8; bit++) {
      const damaged = Buffer.from(good);
      damaged[bit >> 3] ^= 1 << (bit & 7);
      variants.push([`flipped bit ${bit}`, damaged]);
    }
    for (let cut = 0; cut < good.length; cut++) variants.push([`cut to ${cut} bytes`, good.subarray(0, cut)]);
    variants.push(['an extra byte', Buffer.concat([good, Buffer.from([0])])]);
    variants.push(['text', Buffer.from('{"ackSeq": 12, "headHint": 3}\n')]);
    for (const [what, bytes] of variants) {
      fs.writeFileSync(cursorPath(dir), bytes);
      const loaded = loadCursor(dir);
      assert.equal(loaded.fileStatus, 'damaged', what);
      assert.equal(loaded.file, null, what);
    }
  });

  test('a cursor file with a valid checksum but an impossible value is damaged', (t) => {
    const dir = tempDir(t);
    for (const state of [{ ackSeq: -1, headHint: 0 }, { ackSeq: 1.5, headHint: 0 }, { ackSeq: 0, headHint: Number.NaN }, { ackSeq: 2 ** 60, headHint: 0 }]) {
      writeCursorFile(dir, state, false);
      assert.equal(loadCursor(dir).fileStatus, 'damaged', JSON.stringify(state));
    }
  });

  test('writeCursorFile replaces the file atomically and leaves no temporary file behind', (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, { ackSeq: 1, headHint: 0 }, true);
    writeCursorFile(dir, { ackSeq: 2, headHint: 5 }, true);
    assert.deepEqual(loadCursor(dir).file, { ackSeq: 2, headHint: 5 });
    assert.deepEqual(fs.readdirSync(dir), [CURSOR_FILE]);
  });
});

describe('a torn log entry left by a crash, then more acknowledgements', () => {
  test('entries appended after a torn entry are still found on the next load', (t) => {
    const dir = tempDir(t);
    writeCursorFile(dir, { ackSeq: 0, headHint: 0 }, false);
    // A power loss left 7 bytes of a third entry after two whole ones.
    fs.writeFileSync(logPath(dir), Buffer.concat([entry(4), entry(5), entry(6).subarray(0, 7)]));
    const writer = openWriter(t, dir, { ackSeq: 5, headHint: 0 });
    writer.advance(8);
    writer.advance(9);
    // A crash now (before any fold) must not lose acknowledgements 8 and 9.
    assert.equal(loadCursor(dir).logAckSeq, 9);
  });
});

/** A log entry as CursorWriter writes it: magic 'PQCL', the f64 sequence, CRC-32C. */
function entry(ackSeq: number): Buffer {
  const bytes = Buffer.alloc(LOG_ENTRY_BYTES);
  bytes.writeUInt32LE(0x4c435150, 0);
  bytes.writeDoubleLE(ackSeq, 4);
  bytes.writeUInt32LE(crc32c(bytes, 0, 12), 12);
  return bytes;
}
