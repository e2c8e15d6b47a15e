// lib/store/crc32c.ts: published CRC-32C vectors, agreement with a plain bit-by-bit
// implementation, ranges, and continuing a sum across calls; each of the
// three ways a sum is made (WebAssembly over the staging area, WebAssembly
// over a copy, JavaScript) and the staging area itself; the embedded
// WebAssembly module against crc32c.wat.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CRC32C_ENGINE, STAGING_MAX_BYTES, crc32c, growStaging, releaseStaging, takeStaging } from '../lib/store/crc32c.js';
import { CRC32C_WASM } from '../lib/store/crc32c-wasm.js';
import { Queue, type Serializer } from '../lib/index.js';
import { tempDir, tempQueueDir } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.join(here, '..', '..');

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

describe('the three ways a sum is made agree with the definition', () => {
  test('this process sums in WebAssembly', () => {
    assert.equal(CRC32C_ENGINE, 'wasm');
  });

  test('in place over the staging area: every length from 0 to 300 at every start from 0 to 8', () => {
    const staging = takeStaging(1024);
    try {
      for (let start = 0; start <= 8; start++) {
        for (let length = 0; length <= 300; length++) {
          const bytes = pseudoRandomBytes(length, 50_000 + start * 1000 + length);
          staging.set(bytes, start);
          assert.equal(crc32c(staging, start, start + length), bitwiseCrc32c(bytes), `start ${start}, length ${length}`);
        }
      }
    } finally {
      releaseStaging(staging);
    }
  });

  test('over a copy (inputs of 256 bytes and more elsewhere), across the 64 KiB scratch pieces, continuing a sum', () => {
    for (const length of [256, 257, 1000, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 200_000]) {
      const bytes = pseudoRandomBytes(length + 7, length);
      assert.equal(crc32c(bytes, 7), bitwiseCrc32c(bytes.subarray(7)), `length ${length}`);
      const split = length >> 1;
      assert.equal(
        crc32c(bytes, 7 + split, bytes.length, crc32c(bytes, 7, 7 + split)),
        bitwiseCrc32c(bytes.subarray(7)),
        `length ${length} in two parts`,
      );
    }
  });

  test('in JavaScript, in a process without WebAssembly (PERQ_NO_WASM=1, as under node --jitless)', () => {
    const script = `
      import { CRC32C_ENGINE, crc32c, takeStaging, releaseStaging } from ${JSON.stringify(path.join(repoRoot, 'dist', 'lib', 'store', 'crc32c.js'))};
      const bytes = Buffer.alloc(70_000);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
      const staging = takeStaging(100);
      staging.set(bytes.subarray(0, 100));
      const sums = [crc32c(Buffer.from('123456789')), crc32c(bytes), crc32c(bytes, 5, 300), crc32c(staging, 0, 100)];
      releaseStaging(staging);
      console.log(JSON.stringify({ engine: CRC32C_ENGINE, sums }));
    `;
    const out = JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, PERQ_NO_WASM: '1' },
        encoding: 'utf8',
      }),
    ) as { engine: string; sums: number[] };
    const bytes = Buffer.alloc(70_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
    assert.equal(out.engine, 'script');
    assert.deepEqual(out.sums, [
      0xe3069283,
      bitwiseCrc32c(bytes),
      bitwiseCrc32c(bytes.subarray(5, 300)),
      bitwiseCrc32c(bytes.subarray(0, 100)),
    ]);
  });

  test('a queue works under node --jitless, where WebAssembly is missing', (t) => {
    const script = `
      import { Queue } from ${JSON.stringify(path.join(repoRoot, 'dist', 'lib', 'index.js'))};
      import { CRC32C_ENGINE } from ${JSON.stringify(path.join(repoRoot, 'dist', 'lib', 'store', 'crc32c.js'))};
      const q = await Queue.open(process.argv[1]);
      await q.putMany(['a', 'b', 'c'.repeat(1000)]);
      const got = await q.getMany(3);
      await q.taskDone(3);
      await q.close();
      console.log(JSON.stringify({ engine: CRC32C_ENGINE, got: got.map((s) => s.length) }));
    `;
    const out = JSON.parse(
      execFileSync(process.execPath, ['--jitless', '--no-warnings', '--input-type=module', '-e', script, tempQueueDir(t)], {
        encoding: 'utf8',
      }),
    ) as { engine: string; got: number[] };
    assert.deepEqual(out, { engine: 'script', got: [1, 1, 1000] });
  });
});

describe('the staging area', () => {
  test('a second take before the first is given back gets a buffer of its own', () => {
    const first = takeStaging(100);
    try {
      first.fill(1, 0, 100);
      const nested = takeStaging(100);
      nested.fill(2, 0, 100);
      releaseStaging(nested);
      assert.notEqual(nested.buffer, first.buffer);
      assert.ok(
        first.subarray(0, 100).every((byte) => byte === 1),
        'the nested take wrote into the first one',
      );
    } finally {
      releaseStaging(first);
    }
    const again = takeStaging(100);
    releaseStaging(again);
    assert.equal(again, first, 'given back, the shared area is handed out again');
  });

  test('growing keeps the bytes so far, through a growth of WebAssembly memory and past STAGING_MAX_BYTES', () => {
    let staging = takeStaging(64);
    try {
      const head = pseudoRandomBytes(5000, 99);
      staging.set(head);
      staging = growStaging(staging, staging.length + 1, head.length);
      assert.deepEqual(staging.subarray(0, head.length), Buffer.from(head));
      assert.equal(crc32c(staging, 0, head.length), bitwiseCrc32c(head));
      staging = growStaging(staging, STAGING_MAX_BYTES + 1, head.length);
      assert.ok(staging.length >= STAGING_MAX_BYTES + 1);
      assert.deepEqual(staging.subarray(0, head.length), Buffer.from(head));
    } finally {
      releaseStaging(staging);
    }
    const next = takeStaging(64);
    releaseStaging(next);
    assert.ok(next.length <= STAGING_MAX_BYTES, 'the shared area is given back after a growth past its limit');
  });

  test('a serializer that appends to another queue inside encode: both queues get their own items', async (t) => {
    const inner = await Queue.open<string>(tempQueueDir(t, 'inner'));
    const nesting: Serializer = {
      name: 'nesting',
      encode(value) {
        inner.putSync(`side effect of ${String(value)}`);
        return Buffer.from(String(value));
      },
      decode: (bytes) => Buffer.from(bytes).toString(),
    };
    const outer = await Queue.open<string>(tempQueueDir(t, 'outer'), { serializer: nesting });
    const values = Array.from({ length: 50 }, (_, i) => `item ${i} `.repeat(20));
    await outer.putMany(values);
    assert.deepEqual(await outer.getMany(100), values);
    assert.deepEqual(
      await inner.getMany(100),
      values.map((v) => `side effect of ${v}`),
    );
    await outer.close();
    await inner.close();
  });

  test('batches and items larger than the staging area are written and read back intact', async (t) => {
    const q = await Queue.open<Uint8Array>(tempQueueDir(t), { serializer: 'raw', chunkSize: 4 });
    const items = [1, 3 * 1024 * 1024, 100, STAGING_MAX_BYTES + 10, 7].map((n, i) => Buffer.from(pseudoRandomBytes(n, 700 + i)));
    await q.putMany(items);
    await q.put(Buffer.from('after'));
    const got = await q.getMany(10);
    assert.equal(got.length, items.length + 1);
    for (const [i, item] of items.entries()) assert.ok(item.equals(got[i]), `item ${i} (${item.length} bytes)`);
    assert.equal(Buffer.from(got[items.length]).toString(), 'after');
    await q.close();
  });
});

describe('the embedded WebAssembly module', () => {
  test('is what crc32c.wat assembles to (npm run build:wasm regenerates it)', (t) => {
    const wasm = path.join(tempDir(t), 'crc32c.wasm');
    execFileSync('wat2wasm', [path.join(repoRoot, 'lib', 'store', 'crc32c.wat'), '-o', wasm]);
    assert.equal(fs.readFileSync(wasm).toString('base64'), CRC32C_WASM);
  });
});
