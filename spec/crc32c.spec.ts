// lib/store/crc32c.ts: published CRC-32C vectors, agreement with a plain bit-by-bit
// implementation, ranges, and continuing a sum across calls.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crc32c } from '../lib/store/crc32c.js';

/** The textbook one-bit-at-a-time CRC-32C: slow, but obviously right. */
function bitwiseCrc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** Deterministic pseudo-random bytes (a fixed LCG), so failures reproduce. */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    bytes[i] = s >>> 24;
  }
  return bytes;
}

describe('known CRC-32C vectors', () => {
  test('the check value of "123456789" is 0xe3069283', () => {
    assert.equal(crc32c(Buffer.from('123456789', 'ascii')), 0xe3069283);
  });

  test('RFC 3720 (iSCSI) vectors: 32 zero bytes, 32 0xff bytes, ascending and descending bytes', () => {
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
    assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
  });

  test('the empty input sums to 0', () => {
    assert.equal(crc32c(new Uint8Array(0)), 0);
  });

  test('the result is an unsigned 32-bit number', () => {
    // 0x62a8ab43 has its top bit clear; find inputs whose sum has it set and check the sign.
    let sawHighBit = false;
    for (let n = 0; n < 64; n++) {
      const sum = crc32c(pseudoRandomBytes(n, n));
      assert.ok(Number.isInteger(sum) && sum >= 0 && sum <= 0xffffffff, String(sum));
      if (sum >= 0x80000000) sawHighBit = true;
    }
    assert.ok(sawHighBit, 'no input among 64 produced a sum with the top bit set');
  });
});

describe('agreement with the bit-by-bit definition', () => {
  test('every length from 0 to 300 bytes (all tails of the 8-byte slicing loop)', () => {
    for (let length = 0; length <= 300; length++) {
      const bytes = pseudoRandomBytes(length, 1000 + length);
      assert.equal(crc32c(bytes), bitwiseCrc32c(bytes), `length ${length}`);
    }
  });

  test('a 1 MiB buffer', () => {
    const bytes = pseudoRandomBytes(1 << 20, 7);
    assert.equal(crc32c(bytes), bitwiseCrc32c(bytes));
  });

  test('a Buffer and a Uint8Array view with a byte offset give the same sum as a copy', () => {
    const backing = pseudoRandomBytes(100, 3);
    const view = new Uint8Array(backing.buffer, 13, 50);
    const copy = Uint8Array.from(view);
    assert.equal(crc32c(view), bitwiseCrc32c(copy));
    assert.equal(crc32c(Buffer.from(backing.buffer, 13, 50)), bitwiseCrc32c(copy));
  });
});

describe('ranges', () => {
  test('crc32c(bytes, start, end) equals the sum of the bytes in [start, end)', () => {
    const bytes = pseudoRandomBytes(64, 11);
    for (let start = 0; start <= bytes.length; start += 3) {
      for (let end = start; end <= bytes.length; end += 5) {
        assert.equal(crc32c(bytes, start, end), bitwiseCrc32c(bytes.subarray(start, end)), `[${start}, ${end})`);
      }
    }
  });

  test('end defaults to the end of the input', () => {
    const bytes = pseudoRandomBytes(40, 12);
    assert.equal(crc32c(bytes, 9), bitwiseCrc32c(bytes.subarray(9)));
  });

  test('bytes outside the range do not affect the sum', () => {
    const bytes = pseudoRandomBytes(50, 13);
    const before = crc32c(bytes, 10, 30);
    bytes[9] ^= 0xff;
    bytes[30] ^= 0xff;
    assert.equal(crc32c(bytes, 10, 30), before);
    bytes[29] ^= 0x01;
    assert.notEqual(crc32c(bytes, 10, 30), before);
  });
});

describe('continuing a sum', () => {
  test('summing in two parts, passing the first sum on, equals one-shot at every split point', () => {
    const bytes = pseudoRandomBytes(70, 21);
    const whole = crc32c(bytes);
    for (let split = 0; split <= bytes.length; split++) {
      const first = crc32c(bytes, 0, split);
      assert.equal(crc32c(bytes, split, bytes.length, first), whole, `split at ${split}`);
    }
  });

  test('summing byte by byte equals one-shot', () => {
    const bytes = Buffer.from('123456789', 'ascii');
    let sum = 0;
    for (let i = 0; i < bytes.length; i++) sum = crc32c(bytes, i, i + 1, sum);
    assert.equal(sum, 0xe3069283);
  });

  test('summing separate buffers in sequence equals summing their concatenation', () => {
    const parts = [pseudoRandomBytes(5, 1), pseudoRandomBytes(17, 2), pseudoRandomBytes(0, 3), pseudoRandomBytes(33, 4)];
    let sum = 0;
    for (const part of parts) sum = crc32c(part, 0, part.length, sum);
    assert.equal(sum, bitwiseCrc32c(Buffer.concat(parts)));
  });
});
