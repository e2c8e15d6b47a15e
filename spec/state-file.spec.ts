// lib/store/state.ts's StateFile on real files: of its two slots the newest whole
// state is read; a damaged newest slot falls back to the one before, never to
// a mixture; slots grow for a state larger than they are and read back; a
// new file has its full length, so both slots come in one read; a state file
// deleted or replaced is noticed and reopened.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { INITIAL_SLOT_BYTES, StateFile, initialState, type SharedState } from '../lib/store/state.js';
import { tempQueueDir } from './helpers.js';

/** Header (8 bytes), then the two slots. */
const SLOT_AT = [8, 8 + INITIAL_SLOT_BYTES];

function stateWith(gen: number, headSeq: number, more: Partial<SharedState> = {}): SharedState {
  return { ...initialState(0), gen, headSeq, readSeq: 0, readOffset: 0, ...more };
}

function freshFile(t: TestContext): { file: StateFile; dir: string } {
  const dir = tempQueueDir(t);
  fs.mkdirSync(dir, { recursive: true });
  const file = new StateFile(dir);
  file.ensureHeader();
  t.after(() => file.close());
  return { file, dir };
}

/** Flips one byte inside the slot that starts at `at`. */
function damage(dir: string, at: number): void {
  const fd = fs.openSync(path.join(dir, 'state'), 'r+');
  try {
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, at + 40);
    byte[0] ^= 0xff;
    fs.writeSync(fd, byte, 0, 1, at + 40);
  } finally {
    fs.closeSync(fd);
  }
}

describe('StateFile', () => {
  test('reads the newest of the two slots, whichever slot it is in', (t) => {
    const { file, dir } = freshFile(t);
    for (let gen = 1; gen <= 5; gen++) {
      file.write(stateWith(gen, gen * 10));
      // A second reader (another process) sees the same newest state.
      const other = new StateFile(dir);
      try {
        assert.equal(other.read()?.headSeq, gen * 10, `after the write of gen ${gen}`);
      } finally {
        other.close();
      }
      assert.equal(file.read()?.gen, gen);
    }
  });

  test('a damaged newest slot gives the state before it; both damaged give null', (t) => {
    const { file, dir } = freshFile(t);
    file.write(stateWith(1, 10)); // slot 0
    file.write(stateWith(2, 20)); // slot 1
    damage(dir, SLOT_AT[1]);
    const reader = new StateFile(dir);
    t.after(() => reader.close());
    assert.deepEqual([reader.read()?.gen, reader.read()?.headSeq], [1, 10]);
    damage(dir, SLOT_AT[0]);
    assert.equal(reader.read(), null);
  });

  test('after a fallback, the next write goes to the damaged slot, not over the state read', (t) => {
    const { file, dir } = freshFile(t);
    file.write(stateWith(1, 10)); // slot 0
    file.write(stateWith(2, 20)); // slot 1
    damage(dir, SLOT_AT[1]);
    const writer = new StateFile(dir);
    t.after(() => writer.close());
    assert.equal(writer.read()?.gen, 1);
    writer.write(stateWith(3, 30));
    damage(dir, SLOT_AT[1]);
    // Slot 0 still holds gen 1: the write of gen 3 went to slot 1.
    assert.equal(writer.read()?.gen, 1);
  });

  test('a state larger than a slot grows both slots and reads back whole', (t) => {
    const { file, dir } = freshFile(t);
    const consumers = Array.from({ length: 400 }, (_, id) => ({ id, held: [{ start: id * 2, count: 1 }] }));
    file.write(stateWith(1, 10));
    file.write(stateWith(2, 800, { consumers }));
    assert.ok(fs.statSync(path.join(dir, 'state')).size > 8 + 2 * INITIAL_SLOT_BYTES, 'the slots grew');
    const reader = new StateFile(dir);
    t.after(() => reader.close());
    const read = reader.read();
    assert.equal(read?.gen, 2);
    assert.deepEqual(read?.consumers, consumers);
    file.write(stateWith(3, 900, { consumers: consumers.slice(0, 3) }));
    assert.deepEqual([reader.read()?.gen, reader.read()?.consumers.length], [3, 3]);
  });

  test('a new file has the length of its header and two slots', (t) => {
    const { dir } = freshFile(t);
    assert.equal(fs.statSync(path.join(dir, 'state')).size, 8 + 2 * INITIAL_SLOT_BYTES);
  });

  test('isCurrent tells when `state` was deleted or replaced, and reopen opens the new file', (t) => {
    const { file, dir } = freshFile(t);
    file.write(stateWith(1, 10));
    assert.equal(file.isCurrent(), true);
    fs.rmSync(path.join(dir, 'state'));
    assert.equal(file.isCurrent(), false);
    file.reopen();
    assert.equal(file.isCurrent(), true);
    assert.equal(file.read(), null, 'the new file holds no state yet');
    file.ensureHeader();
    file.write(stateWith(7, 70));
    const other = new StateFile(dir);
    t.after(() => other.close());
    assert.equal(other.read()?.gen, 7);
  });
});
