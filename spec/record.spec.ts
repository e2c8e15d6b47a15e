// lib/store/record.ts: the frame around every item. Round trips, and that every
// single-bit flip in a header or payload is detected.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crc32c } from '../lib/store/crc32c.js';
import {
  HEADER_BYTES,
  frameSize,
  headerSeq,
  headerTimestamp,
  intactFramesLength,
  payloadIntact,
  readHeaderLength,
  sealQuarantined,
  writeFrame,
} from '../lib/store/record.js';

const SEQ = 4242;
const TIME = 1_767_225_600_123;

function bytesOf(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed * 7 + 1) & 0xff);
}

function framed(payload: Uint8Array, at = 0): Buffer {
  const target = Buffer.alloc(at + frameSize(payload.length));
  writeFrame(target, at, payload, SEQ, TIME);
  return target;
}

describe('frameSize', () => {
  test('is the payload length plus a 28-byte header', () => {
    assert.equal(HEADER_BYTES, 28);
    assert.equal(frameSize(0), 28);
    assert.equal(frameSize(1), 29);
    assert.equal(frameSize(1000), 1028);
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

  test('the header is the little-endian length, the payload CRC-32C, the sequence number, the put time and the CRC-32C of those 24 bytes', () => {
    const payload = bytesOf(300, 5);
    const frame = framed(payload);
    assert.equal(frame.readUInt32LE(0), 300);
    assert.equal(frame.readUInt32LE(4), crc32c(payload));
    assert.equal(Number(frame.readBigUInt64LE(8)), SEQ);
    assert.equal(Number(frame.readBigUInt64LE(16)), TIME);
    assert.equal(frame.readUInt32LE(24), crc32c(frame, 0, 24));
    assert.equal(headerSeq(frame, 0), SEQ);
    assert.equal(headerTimestamp(frame, 0), TIME);
  });

  test('the sequence number round-trips up to 2^53', () => {
    for (const seq of [0, 1, 255, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER]) {
      const target = Buffer.alloc(frameSize(1));
      writeFrame(target, 0, Uint8Array.of(9), seq, 0);
      assert.equal(readHeaderLength(target, 0), 1);
      assert.equal(headerSeq(target, 0), seq);
    }
  });

  test('returns the offset just after the frame, so frames can be laid back to back', () => {
    const payloads = [bytesOf(3, 1), bytesOf(0, 2), bytesOf(40, 3), bytesOf(1, 4)];
    const target = Buffer.alloc(5 + payloads.reduce((sum, p) => sum + frameSize(p.length), 0));
    let offset = 5;
    for (const payload of payloads) {
      const next = writeFrame(target, offset, payload, SEQ, TIME);
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
    const target2 = Buffer.alloc(60, 0xaa);
    writeFrame(target2, 10, bytesOf(6, 9), SEQ, TIME);
    assert.ok(target2.subarray(0, 10).every((b) => b === 0xaa));
    assert.ok(target2.subarray(10 + HEADER_BYTES + 6).every((b) => b === 0xaa));
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
  test('every single flipped bit in the 28-byte header fails the header check', () => {
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

describe('intactFramesLength: the bulk check of a read-ahead buffer', () => {
  /** Records of 0..199 bytes back to back (after `lead` bytes of something else), and where each starts. */
  function run(count: number, lead = 0): { bytes: Buffer; starts: number[] } {
    const payloads = Array.from({ length: count }, (_, i) => bytesOf((i * 37) % 200, i));
    const bytes = Buffer.alloc(lead + payloads.reduce((sum, p) => sum + frameSize(p.length), 0));
    const starts: number[] = [];
    let at = lead;
    payloads.forEach((p, i) => {
      starts.push(at);
      at = writeFrame(bytes, at, p, SEQ + i, TIME);
    });
    starts.push(at);
    return { bytes, starts };
  }

  test('vouches for every whole record, from any start, and not for a cut last one', () => {
    const { bytes, starts } = run(300, 5);
    const end = starts[starts.length - 1];
    assert.equal(intactFramesLength(bytes, 5, end), end - 5);
    assert.equal(intactFramesLength(bytes, starts[100], end), end - starts[100]);
    for (const cut of [1, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + 1]) {
      const last = starts[starts.length - 2];
      if (last + cut >= end) continue;
      assert.equal(intactFramesLength(bytes, 5, last + cut), last - 5, `cut ${cut} bytes into the last record`);
    }
  });

  test('stops at the record with a flipped bit, in its header or its payload', () => {
    const { bytes, starts } = run(100);
    const end = starts[starts.length - 1];
    for (const k of [0, 1, 50, 99]) {
      for (const offset of [0, 4, 8, 16, 24, HEADER_BYTES, starts[k + 1] - starts[k] - 1]) {
        const at = starts[k] + offset;
        if (at >= starts[k + 1]) continue;
        bytes[at] ^= 0x04;
        assert.equal(intactFramesLength(bytes, 0, end), starts[k], `record ${k}, byte ${offset}`);
        bytes[at] ^= 0x04;
      }
    }
    assert.equal(intactFramesLength(bytes, 0, end), end);
  });

  test('stops at a quarantined stand-in, and vouches for nothing at an offset that is not a record start', () => {
    const { bytes, starts } = run(10);
    const end = starts[starts.length - 1];
    const withStandIn = Buffer.concat([bytes.subarray(0, starts[3]), Buffer.alloc(HEADER_BYTES), bytes.subarray(starts[3])]);
    sealQuarantined(withStandIn, starts[3], SEQ + 3);
    assert.equal(intactFramesLength(withStandIn, 0, withStandIn.length), starts[3]);
    for (const offset of [1, 3, starts[1] + 2, starts[2] + 7]) assert.equal(intactFramesLength(bytes, offset, end), 0, `offset ${offset}`);
  });

  test('looks at 64 KiB at most', () => {
    const { bytes, starts } = run(2000);
    const vouched = intactFramesLength(bytes, 0, bytes.length);
    assert.ok(bytes.length > 64 * 1024 && vouched <= 64 * 1024 && vouched > 64 * 1024 - 256, String(vouched));
    assert.ok(starts.includes(vouched), 'ends at a record start');
  });
});
