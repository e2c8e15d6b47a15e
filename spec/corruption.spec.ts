// Files damaged on purpose: a torn tail is cut off on open; any other damage
// is ERR_CORRUPT naming the file and offset, never a wrong item; damaged
// bookkeeping files are recovered from the chunks or reported, never reset.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { crc32c } from '../lib/store/crc32c.js';
import { writeCursorFile } from '../lib/store/cursor.js';
import { Queue, QueueError } from '../lib/index.js';
import { HEADER_BYTES } from '../lib/store/record.js';
import { collectWarnings, tempQueueDir } from './helpers.js';

/** 8-byte raw items: every record is HEADER_BYTES + 8 bytes, so record k starts at RECORD * k. */
const PAYLOAD = 8;
const RECORD = HEADER_BYTES + PAYLOAD;
/** A cursor log entry that moves the prefix and lists no ranges above it. */
const LOG_ENTRY = 24;

function item(n: number): Uint8Array {
  return new Uint8Array(PAYLOAD).fill(n);
}

function chunk(dir: string, n: number): string {
  return path.join(dir, `chunk-${String(n).padStart(16, '0')}`);
}

async function queueWith(dir: string, count: number, chunkSize = 4): Promise<void> {
  const q = await Queue.open(dir, { serializer: 'raw', chunkSize });
  await q.putMany(Array.from({ length: count }, (_, i) => item(i)));
  await q.close();
}

function flipByte(file: string, offset: number): void {
  const bytes = fs.readFileSync(file);
  bytes[offset] ^= 0x40;
  fs.writeFileSync(file, bytes);
}

function corruptAt(file: string, offset: number) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof QueueError, String(error));
    assert.equal(error.code, 'ERR_CORRUPT');
    assert.equal(error.file, file);
    assert.equal(error.offset, offset);
    assert.ok(error.message.includes(file) && error.message.includes(`offset ${offset}`), error.message);
    return true;
  };
}

async function drain(dir: string): Promise<number[]> {
  const q = await Queue.open<Uint8Array>(dir, { serializer: 'raw' });
  const items = q.size === 0 ? [] : await q.getMany(q.size);
  await q.close();
  return items.map((bytes) => bytes[0]);
}

describe('torn tails are cut off on open', () => {
  test('a record cut short in its payload', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 6);
    fs.truncateSync(chunk(dir, 1), RECORD + 5);
    assert.deepEqual(await drain(dir), [0, 1, 2, 3, 4]);
    assert.equal(fs.statSync(chunk(dir, 1)).size, RECORD);
  });

  test('a record cut short in its header', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 6);
    fs.truncateSync(chunk(dir, 1), RECORD + 7);
    assert.deepEqual(await drain(dir), [0, 1, 2, 3, 4]);
  });

  test('a tail of zero bytes (size updated, data lost in a power cut)', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 6);
    fs.appendFileSync(chunk(dir, 1), Buffer.alloc(4096));
    assert.deepEqual(await drain(dir), [0, 1, 2, 3, 4, 5]);
  });

  test('items put after the cut follow the survivors', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 3);
    fs.truncateSync(chunk(dir, 0), 2 * RECORD + 3);
    const q = await Queue.open<Uint8Array>(dir, { serializer: 'raw' });
    await q.put(item(9));
    assert.deepEqual(
      (await q.getMany(10)).map((b) => b[0]),
      [0, 1, 9],
    );
    await q.close();
  });
});

describe('other damage is ERR_CORRUPT with file and offset', () => {
  test('a flipped payload byte in an older chunk: items before it are intact, the damaged one is never returned', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 10);
    flipByte(chunk(dir, 0), 2 * RECORD + HEADER_BYTES + 3);
    const q = await Queue.open<Uint8Array>(dir, { serializer: 'raw' });
    assert.deepEqual(
      (await q.getMany(2)).map((b) => b[0]),
      [0, 1],
    );
    await assert.rejects(q.get(), corruptAt(chunk(dir, 0), 2 * RECORD));
    await assert.rejects(q.get(), corruptAt(chunk(dir, 0), 2 * RECORD), 'it keeps failing, it is not skipped');
    assert.throws(() => q.peekSync(), corruptAt(chunk(dir, 0), 2 * RECORD));
    assert.equal(q.size, 8);
    await q.close();
  });

  test('a flipped payload byte in the newest chunk', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 6);
    flipByte(chunk(dir, 1), RECORD + HEADER_BYTES);
    const q = await Queue.open<Uint8Array>(dir, { serializer: 'raw' });
    assert.deepEqual(
      (await q.getMany(5)).map((b) => b[0]),
      [0, 1, 2, 3, 4],
    );
    await assert.rejects(q.get(), corruptAt(chunk(dir, 1), RECORD));
    await q.close();
  });

  test('a flipped payload checksum byte (covered by the header check too)', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 10);
    flipByte(chunk(dir, 0), 4);
    const q = await Queue.open<Uint8Array>(dir, { serializer: 'raw' });
    await assert.rejects(q.get(), corruptAt(chunk(dir, 0), 0));
    await q.close();
  });

  test('a flipped length byte in an older chunk is found on get', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 10);
    flipByte(chunk(dir, 0), RECORD + 1);
    const q = await Queue.open<Uint8Array>(dir, { serializer: 'raw' });
    assert.equal((await q.get())[0], 0);
    await assert.rejects(q.get(), corruptAt(chunk(dir, 0), RECORD));
    await q.close();
  });

  test('a flipped length byte in the newest chunk is found on open, not taken for a torn tail', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 7);
    const before = fs.readFileSync(chunk(dir, 1));
    flipByte(chunk(dir, 1), RECORD + 3); // makes the length huge: it would look like it runs past the end
    assert.throws(() => Queue.openSync(dir), corruptAt(chunk(dir, 1), RECORD));
    assert.equal(fs.statSync(chunk(dir, 1)).size, before.length, 'nothing was cut off');
  });

  test('a huge length with a valid header checksum is refused, not allocated', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 10);
    const file = chunk(dir, 0);
    const bytes = fs.readFileSync(file);
    bytes.writeUInt32LE(0xfffffff0, RECORD);
    bytes.writeUInt32LE(crc32c(bytes, RECORD, RECORD + 8), RECORD + 8);
    fs.writeFileSync(file, bytes);
    const q = await Queue.open<Uint8Array>(dir, { serializer: 'raw', maxItemBytes: 1024 });
    assert.equal((await q.get())[0], 0);
    await assert.rejects(q.get(), corruptAt(file, RECORD));
    await q.close();
  });

  test('a chunk in the middle deleted: ERR_CORRUPT names the missing file when reading reaches it', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 12);
    fs.unlinkSync(chunk(dir, 1));
    const q = await Queue.open<Uint8Array>(dir, { serializer: 'raw' });
    assert.deepEqual(
      (await q.getMany(4)).map((b) => b[0]),
      [0, 1, 2, 3],
    );
    await assert.rejects(q.get(), (error: unknown) => {
      assert.ok(error instanceof QueueError);
      assert.equal(error.code, 'ERR_CORRUPT');
      assert.equal(error.file, chunk(dir, 1));
      return true;
    });
    await q.close();
  });

  test('with the state file lost too, a deleted middle chunk is still ERR_CORRUPT when reached and puts go after the newest chunk', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 12);
    // As after a crash: the cursor's head hint not yet refolded (it is every 1024 chunks).
    writeCursorFile(dir, { ackSeq: 0, headHint: 0, acked: [] }, false);
    fs.unlinkSync(path.join(dir, 'state'));
    fs.unlinkSync(chunk(dir, 1));
    const q = await Queue.open<Uint8Array>(dir, { serializer: 'raw' });
    await q.put(item(12));
    assert.equal(fs.existsSync(chunk(dir, 1)), false, 'the put did not fill the gap');
    assert.ok(fs.existsSync(chunk(dir, 3)), 'the put went after the newest chunk');
    assert.deepEqual(
      (await q.getMany(4)).map((b) => b[0]),
      [0, 1, 2, 3],
    );
    await assert.rejects(
      q.get(),
      (error: unknown) => error instanceof QueueError && error.code === 'ERR_CORRUPT' && error.file === chunk(dir, 1),
    );
    await q.close();
  });

  test('a chunk in the middle cut short (what a power cut leaves of one a newer chunk followed) is passed over with a warning naming the file and the count', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 12);
    fs.truncateSync(chunk(dir, 1), 2 * RECORD);
    const warnings = collectWarnings(t);
    const q = await Queue.open<Uint8Array>(dir, { serializer: 'raw' });
    assert.deepEqual(
      (await q.getMany(6)).map((b) => b[0]),
      [0, 1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      (await q.getMany(6)).map((b) => b[0]),
      [8, 9, 10, 11],
    );
    await q.close();
    await new Promise((resolve) => setImmediate(resolve));
    const lost = warnings.filter((w) => w.code === 'PERQ_RECORDS_LOST');
    assert.equal(lost.length, 1);
    assert.match(lost[0].message, /2 item\(s\) between 6 and 7/);
    assert.ok(lost[0].message.includes(chunk(dir, 1)));
  });

  test('a chunk in the middle cut inside a record and left with stale bytes of another item is passed over too, never decoded', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 12);
    // Record 2 of chunk 1 becomes record 0 of chunk 0: a sound record of another item.
    const stale = fs.readFileSync(chunk(dir, 0)).subarray(0, RECORD);
    const bytes = fs.readFileSync(chunk(dir, 1));
    stale.copy(bytes, 2 * RECORD);
    fs.writeFileSync(chunk(dir, 1), bytes);
    collectWarnings(t);
    const q = await Queue.open<Uint8Array>(dir, { serializer: 'raw' });
    assert.deepEqual(
      (await q.getMany(12)).map((b) => b[0]),
      [0, 1, 2, 3, 4, 5, 8, 9, 10, 11],
    );
    await q.close();
  });

  test('the newest chunk deleted while the cursor knows it: ERR_CORRUPT on open', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 12);
    fs.unlinkSync(chunk(dir, 2));
    assert.throws(
      () => Queue.openSync(dir),
      (error: unknown) => error instanceof QueueError && error.code === 'ERR_CORRUPT' && error.file === chunk(dir, 2),
    );
  });
});

describe('damaged info and cursor files', () => {
  test('a truncated info file is ERR_CORRUPT and nothing is reset', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 5);
    const info = path.join(dir, 'info');
    fs.truncateSync(info, 10);
    const files = fs.readdirSync(dir).sort();
    assert.throws(
      () => Queue.openSync(dir),
      (error: unknown) => error instanceof QueueError && error.code === 'ERR_CORRUPT' && error.file === info,
    );
    assert.deepEqual(fs.readdirSync(dir).sort(), files);
    assert.equal(fs.statSync(info).size, 10);
  });

  test('a missing info file beside chunk files is ERR_CORRUPT, not a new empty queue', async (t) => {
    const dir = tempQueueDir(t);
    await queueWith(dir, 5);
    fs.unlinkSync(path.join(dir, 'info'));
    assert.throws(() => Queue.openSync(dir), { code: 'ERR_CORRUPT' });
    assert.equal(fs.existsSync(path.join(dir, 'info')), false);
  });

  for (const [damage, stateLost] of [
    ['truncated', false],
    ['missing', false],
    ['garbage', false],
    ['truncated', true],
    ['missing', true],
  ] as const) {
    test(`a ${damage} cursor file${stateLost ? ' with the state file lost too' : ''} is rebuilt: nothing unacknowledged is lost`, async (t) => {
      const dir = tempQueueDir(t);
      const q = await Queue.open<Uint8Array>(dir, { serializer: 'raw', chunkSize: 4 });
      await q.putMany(Array.from({ length: 10 }, (_, i) => item(i)));
      await q.getMany(5);
      for (let i = 0; i < 5; i++) await q.taskDone();
      await q.close();
      const cursor = path.join(dir, 'cursor');
      if (damage === 'truncated') fs.truncateSync(cursor, 5);
      else if (damage === 'missing') fs.unlinkSync(cursor);
      else fs.writeFileSync(cursor, Buffer.alloc(24, 7));
      if (stateLost) fs.unlinkSync(path.join(dir, 'state'));
      const warnings: Error[] = [];
      const onWarning = (warning: Error): number => warnings.push(warning);
      process.on('warning', onWarning);
      t.after(() => process.off('warning', onWarning));
      const items = await drain(dir);
      // The state still says 5 are done. Without it: chunk 0 (items 0-3) was
      // deleted and chunk 1 starts at 4, so item 4 comes again; 5-9 are all there.
      assert.deepEqual(items, stateLost ? [4, 5, 6, 7, 8, 9] : [5, 6, 7, 8, 9]);
      await new Promise((resolve) => setImmediate(resolve));
      assert.ok(warnings.some((w) => (w as Error & { code?: string }).code === 'PERQ_CURSOR_RECOVERED'));
    });
  }

  test('the cursor log is used when newer than the cursor file, and a damaged entry falls back', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<Uint8Array>(dir, { serializer: 'raw', chunkSize: 100 });
    await q.putMany(Array.from({ length: 10 }, (_, i) => item(i)));
    await q.getMany(4);
    for (let i = 0; i < 4; i++) await q.taskDone();
    // Copy the files as a crash would leave them (the log not yet folded).
    const crashed = tempQueueDir(t, 'crashed');
    fs.cpSync(dir, crashed, { recursive: true });
    await q.close();
    fs.rmSync(path.join(crashed, 'lock'));
    const log = path.join(crashed, 'cursor.log');
    assert.equal(fs.statSync(log).size, 4 * LOG_ENTRY);
    flipByte(log, 3 * LOG_ENTRY + 6); // damage the newest entry: fall back to the one before
    assert.deepEqual(await drain(crashed), [3, 4, 5, 6, 7, 8, 9]);
  });
});

describe('a crash copy whose state still shows items held by the dead consumer', () => {
  test('those items count as waiting at once, back to the cursor the log allows', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<Uint8Array>(dir, { serializer: 'raw', chunkSize: 100 });
    await q.putMany(Array.from({ length: 10 }, (_, i) => item(i)));
    await q.getMany(4);
    await new Promise((resolve) => setImmediate(resolve)); // the state is published: 0..3 held by this consumer
    for (let i = 0; i < 4; i++) await q.taskDone(); // these go to the cursor log only
    const crashed = tempQueueDir(t, 'crashed');
    fs.cpSync(dir, crashed, { recursive: true });
    await q.close();
    fs.rmSync(path.join(crashed, 'lock'));
    flipByte(path.join(crashed, 'cursor.log'), 3 * LOG_ENTRY + 6); // the 4th acknowledgement is lost
    const reopened = await Queue.open<Uint8Array>(crashed, { serializer: 'raw' });
    try {
      assert.equal(reopened.size, 7);
      assert.equal((await reopened.peek())?.[0], 3);
    } finally {
      await reopened.close();
    }
    assert.deepEqual(await drain(crashed), [3, 4, 5, 6, 7, 8, 9]);
  });
});

describe('a damaged or deleted state file', () => {
  test('deleted under an open queue, it is noticed at the next hold: appends from both sides never overwrite each other', async (t) => {
    const dir = tempQueueDir(t);
    const turn = () => new Promise((resolve) => setImmediate(resolve)); // the hold ends, the state is published
    const first = await Queue.open<string>(dir);
    try {
      await first.putMany(['a', 'b']);
      await turn();
      fs.unlinkSync(path.join(dir, 'state'));
      // A queue opened now makes a new state file, rebuilt from the chunks.
      const second = await Queue.open<string>(dir);
      try {
        await second.put('c');
        await turn();
        await first.put('d');
        await turn();
        await second.put('e');
      } finally {
        await second.close();
      }
    } finally {
      await first.close();
    }
    const reopened = await Queue.open<string>(dir);
    try {
      assert.deepEqual(await reopened.getMany(10), ['a', 'b', 'c', 'd', 'e']);
    } finally {
      await reopened.close();
    }
  });

  test('a consumer registered after the state was rebuilt never takes the id of one still alive', async (t) => {
    const dir = tempQueueDir(t);
    const first = await Queue.open<string>(dir);
    const second = await Queue.open<string>(dir);
    try {
      await first.putMany(['a', 'b']);
      assert.equal(await first.get(), 'a');
      const leases = () =>
        fs
          .readdirSync(path.join(dir, 'consumers'))
          .filter((name) => name !== 'reserve')
          .sort();
      assert.deepEqual(leases(), ['1']);
      await new Promise((resolve) => setImmediate(resolve)); // the hold ends
      // Both slots unreadable (the same file: every process sees it).
      const state = path.join(dir, 'state');
      fs.writeFileSync(state, Buffer.alloc(fs.statSync(state).size));
      assert.equal(await second.get(), 'a', 'rebuilt from the files, the state no longer knows who held a');
      assert.deepEqual(leases(), ['1', '2'], 'the second consumer took a fresh id');
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });
});
