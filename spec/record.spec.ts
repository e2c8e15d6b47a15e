// lib/record.ts: the frame around every item. Round trips, and that every
// single-bit flip in a header or payload is detected.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crc32c } from '../lib/crc32c.js';
import { HEADER_BYTES, frameSize, payloadIntact, readHeaderLength, writeFrame } from '../lib/record.js';

function bytesOf(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed * 7 + 1) & 0xff);
}

function framed(payload: Uint8Array, at = 0): Buffer {
  const target = Buffer.alloc(at + frameSize(payload.length));
  writeFrame(target, at, payload);
  return target;
}

describe('frameSize', () => {
  test('is the payload length plus a 12-byte header', () => {
    assert.equal(HEADER_BYTES, 12);
    assert.equal(frameSize(0), 12);
    assert.equal(frameSize(1), 13);
    assert.equal(frameSize(1000), 1012);
  });
});

describe('writeFrame and reading back', () => {
  test('round trip: the header gives the length and the payload follows it unchanged', () => {
    for (const length of [0, 1, 7, 8, 12, 100, 4096, 70_000]) {
      const payload = bytesOf(length, length);
      const frame = framed(payload);
      assert.equal(readHeaderLength(frame, 0), length);
      assert.ok(payloadIntact(frame, 0, length));
      assert.deepEqual(new Uint8Array(frame.subarray(HEADER_BYTES)), payload);
    }
  });

  test('the header is the little-endian length, the payload CRC-32C and the CRC-32C of those 8 bytes', () => {
    const payload = bytesOf(300, 5);
    const frame = framed(payload);
    assert.equal(frame.readUInt32LE(0), 300);
    assert.equal(frame.readUInt32LE(4), crc32c(payload));
    assert.equal(frame.readUInt32LE(8), crc32c(frame, 0, 8));
  });

  test('returns the offset just after the frame, so frames can be laid back to back', () => {
    const payloads = [bytesOf(3, 1), bytesOf(0, 2), bytesOf(40, 3), bytesOf(1, 4)];
    const target = Buffer.alloc(5 + payloads.reduce((sum, p) => sum + frameSize(p.length), 0));
    let offset = 5;
    for (const payload of payloads) {
      const next = writeFrame(target, offset, payload);
      assert.equal(next, offset + frameSize(payload.length));
      offset = next;
    }
    assert.equal(offset, target.length);
    offset = 5;
    for (const payload of payloads) {
      const length = readHeaderLength(target, offset);
      assert.equal(length, payload.length);
      assert.ok(payloadIntact(target, offset, length));
      assert.deepEqual(new Uint8Array(target.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length)), payload);
      offset += frameSize(length);
    }
  });

  test('writing a frame leaves the bytes around it untouched', () => {
    const target = Buffer.alloc(40, 0xaa);
    writeFrame(target, 10, bytesOf(6, 9));
    assert.ok(target.subarray(0, 10).every((b) => b === 0xaa));
    assert.ok(target.subarray(28).every((b) => b === 0xaa));
  });

  test('a payload given as a view into a larger array is framed from the view only', () => {
    const backing = bytesOf(100, 8);
    const view = backing.subarray(20, 30);
    const frame = framed(view);
    assert.equal(readHeaderLength(frame, 0), 10);
    assert.deepEqual(new Uint8Array(frame.subarray(HEADER_BYTES)), Uint8Array.from(view));
  });
});

describe('damage is detected', () => {
  test('every single flipped bit in the 12-byte header fails the header check', () => {
    const frame = framed(bytesOf(50, 3));
    for (let bit = 0; bit < HEADER_BYTES * 8; bit++) {
      const damaged = Buffer.from(frame);
      damaged[bit >> 3] ^= 1 << (bit & 7);
      assert.equal(readHeaderLength(damaged, 0), -1, `flipped bit ${bit}`);
    }
  });

  test('every single flipped bit in the header of an empty payload fails the header check', () => {
    const frame = framed(new Uint8Array(0));
    for (let bit = 0; bit < HEADER_BYTES * 8; bit++) {
      const damaged = Buffer.from(frame);
      damaged[bit >> 3] ^= 1 << (bit & 7);
      assert.equal(readHeaderLength(damaged, 0), -1, `flipped bit ${bit}`);
    }
  });

  test('every single flipped bit in the payload fails the payload check (and leaves the header valid)', () => {
    const length = 64;
    const frame = framed(bytesOf(length, 4));
    for (let bit = 0; bit < length * 8; bit++) {
      const damaged = Buffer.from(frame);
      damaged[HEADER_BYTES + (bit >> 3)] ^= 1 << (bit & 7);
      assert.equal(readHeaderLength(damaged, 0), length);
      assert.equal(payloadIntact(damaged, 0, length), false, `flipped payload bit ${bit}`);
    }
  });

  test('two swapped payload bytes fail the payload check', () => {
    const frame = framed(Uint8Array.from([1, 2, 3, 4, 5]));
    [frame[HEADER_BYTES + 1], frame[HEADER_BYTES + 2]] = [frame[HEADER_BYTES + 2], frame[HEADER_BYTES + 1]];
    assert.equal(payloadIntact(frame, 0, 5), false);
  });

  test('an all-zero header (a zero-filled tail) is never a valid header', () => {
    assert.equal(readHeaderLength(Buffer.alloc(HEADER_BYTES), 0), -1);
    assert.equal(readHeaderLength(Buffer.alloc(HEADER_BYTES + 20), 10), -1);
  });

  test('a header read at the wrong offset is rejected', () => {
    const frame = framed(bytesOf(40, 6));
    for (let offset = 1; offset < HEADER_BYTES + 20; offset++) {
      assert.equal(readHeaderLength(frame, offset), -1, `offset ${offset}`);
    }
  });
});
