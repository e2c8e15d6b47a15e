// CRC-32C (Castagnoli), the checksum of every record and cursor entry.
// Castagnoli's polynomial detects more error patterns than the IEEE CRC-32 at
// the same cost. Node has no built-in CRC-32C, so perq sums in WebAssembly
// (crc32c.wat, ~1.8x the JavaScript loop) where it can, and in JavaScript by
// slicing-by-8 tables where it cannot (`node --jitless`) and for short
// inputs that would first have to be copied into WebAssembly's memory.
//
// The copy is what would eat the gain on small records, so the append path
// builds its records in WebAssembly's memory to begin with: takeStaging()
// hands out that buffer, and a sum over it runs in place.

import { CRC32C_WASM } from './crc32c-wasm.js';

/** Reversed Castagnoli polynomial. */
const POLY = 0x82f63b78;
/** Bytes folded per step of the slicing loop (one table per byte). */
const SLICES = 8;

const TABLES = buildTables();

function buildTables(): Int32Array[] {
  const tables = Array.from({ length: SLICES }, () => new Int32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    tables[0][n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[0][n];
    for (let t = 1; t < SLICES; t++) {
      c = tables[0][c & 0xff] ^ (c >>> 8);
      tables[t][n] = c;
    }
  }
  return tables;
}

const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES;

/** The JavaScript sum: every input where WebAssembly is missing, short inputs elsewhere. */
function crc32cScript(bytes: Uint8Array, start: number, end: number, crc: number): number {
  let c = ~crc;
  let i = start;
  const fastEnd = end - ((end - start) & (SLICES - 1));
  while (i < fastEnd) {
    const lo = c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    c =
      T7[lo & 0xff] ^
      T6[(lo >>> 8) & 0xff] ^
      T5[(lo >>> 16) & 0xff] ^
      T4[lo >>> 24] ^
      T3[bytes[i + 4]] ^
      T2[bytes[i + 5]] ^
      T1[bytes[i + 6]] ^
      T0[bytes[i + 7]];
    i += SLICES;
  }
  while (i < end) c = T0[(c ^ bytes[i++]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

// WebAssembly memory: the tables (crc32c.wat), then SCRATCH_BYTES into which
// other inputs are copied piece by piece, then the append staging area.
const SCRATCH_AT = 8192;
const SCRATCH_BYTES = 64 * 1024;
const STAGING_AT = SCRATCH_AT + SCRATCH_BYTES;
/**
 * The staging area grows to this and no further: WebAssembly memory never
 * shrinks, so a batch larger than this (one item of many MiB) gets a buffer
 * of its own, which garbage collection can take back.
 */
export const STAGING_MAX_BYTES = 16 * 1024 * 1024;
/** Below this many bytes, copying into WebAssembly memory costs more than it saves. */
const COPY_MIN_BYTES = 256;
const PAGE_BYTES = 64 * 1024;
/** The staging area's size until an append needs more. */
const FIRST_STAGING_BYTES = 1024 * 1024;

/** The parts of WebAssembly used here (@types/node declares none of it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: object };
}

interface CrcModule {
  readonly memory: WasmMemory;
  crc(at: number, length: number, crc: number): number;
  intactFrames(at: number, end: number): number;
}

/** The WebAssembly sum, or null where WebAssembly cannot run. */
const wasm: CrcModule | null = instantiate();

function instantiate(): CrcModule | null {
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (api === undefined || process.env.PERQ_NO_WASM === '1') return null;
  try {
    const instance = new api.Instance(new api.Module(Buffer.from(CRC32C_WASM, 'base64')));
    const exports = instance.exports as unknown as CrcModule & { init(): void };
    exports.init();
    // Room for the scratch area and a first staging area beside the tables.
    exports.memory.grow(Math.ceil((STAGING_AT + FIRST_STAGING_BYTES) / PAGE_BYTES) - exports.memory.buffer.byteLength / PAGE_BYTES);
    return exports;
  } catch {
    return null; // e.g. node --jitless: the JavaScript sum gives the same results
  }
}

/** What the sums run on: 'wasm' or 'script' (PERQ_NO_WASM=1 forces 'script', for tests). */
export const CRC32C_ENGINE: 'wasm' | 'script' = wasm === null ? 'script' : 'wasm';

/** The staging area and the scratch area as views of WebAssembly memory; made again after a growth (which detaches the old ones). */
let wasmStaging: Buffer | null = null;
let scratch: Uint8Array | null = wasm === null ? null : new Uint8Array(wasm.memory.buffer, SCRATCH_AT, SCRATCH_BYTES);
/** The staging area where WebAssembly is missing. */
let scriptStaging: Buffer | null = null;

/**
 * CRC-32C of `bytes[start, end)`, continuing from `crc` (0 for a fresh sum).
 * Returns an unsigned 32-bit number.
 */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length, crc = 0): number {
  // The staging area is told by identity: reading `bytes.buffer` costs more
  // than a short sum (V8 may have to move a small array's bytes off its heap).
  if (bytes === wasmStaging) return (wasm as CrcModule).crc(STAGING_AT + start, end - start, crc) >>> 0;
  if (wasm !== null && end - start >= COPY_MIN_BYTES) return crc32cCopied(wasm, bytes, start, end, crc);
  return crc32cScript(bytes, start, end, crc);
}

function crc32cCopied(module: CrcModule, bytes: Uint8Array, start: number, end: number, crc: number): number {
  const area = scratch as Uint8Array;
  let c = crc;
  for (let at = start; at < end; at += SCRATCH_BYTES) {
    const length = Math.min(SCRATCH_BYTES, end - at);
    area.set(bytes.subarray(at, at + length));
    c = module.crc(SCRATCH_AT, length, c);
  }
  return c >>> 0;
}

/**
 * How many bytes of `bytes[start, end)` (at most SCRATCH_BYTES) are whole
 * records of record.ts's layout, walking from `start`, whose header check and
 * payload checksum hold; 0 where WebAssembly is missing (nothing is vouched
 * for, and the reader checks each record itself). One copy and one call for
 * a whole read-ahead buffer instead of two sums in JavaScript per record.
 */
export function wasmIntactFrames(bytes: Uint8Array, start: number, end: number): number {
  if (wasm === null) return 0;
  const length = Math.min(SCRATCH_BYTES, end - start);
  (scratch as Uint8Array).set(bytes.subarray(start, start + length));
  return wasm.intactFrames(SCRATCH_AT, SCRATCH_AT + length);
}

/** Whether an append holds the staging area (a serializer's encode could itself append to another queue). */
let stagingTaken = false;

/**
 * The buffer an append builds its records in, at least `minBytes` long;
 * sums over it run in place. One area serves every queue of the process:
 * an append takes it, holds it across no await (appends are synchronous)
 * and gives it back with releaseStaging. A nested append, or a batch larger
 * than STAGING_MAX_BYTES, gets a buffer of its own.
 */
export function takeStaging(minBytes: number): Buffer {
  if (stagingTaken || minBytes > STAGING_MAX_BYTES) return Buffer.allocUnsafe(minBytes);
  stagingTaken = true;
  return wasm === null ? scriptStagingOf(minBytes) : wasmStagingOf(wasm, minBytes);
}

/** A buffer from takeStaging grown to at least `minBytes`, keeping its first `keep` bytes. */
export function growStaging(current: Buffer, minBytes: number, keep: number): Buffer {
  if (!isStaging(current) || minBytes > STAGING_MAX_BYTES) {
    const grown = Buffer.allocUnsafe(minBytes);
    current.copy(grown, 0, 0, keep);
    releaseStaging(current);
    return grown;
  }
  // Growing WebAssembly memory keeps its bytes in place (and detaches `current`).
  return wasm === null ? scriptStagingOf(minBytes) : wasmStagingOf(wasm, minBytes);
}

/** Gives back what takeStaging or growStaging returned. */
export function releaseStaging(current: Buffer): void {
  if (isStaging(current)) stagingTaken = false;
}

function isStaging(buffer: Buffer): boolean {
  return buffer === wasmStaging || buffer === scriptStaging;
}

function scriptStagingOf(minBytes: number): Buffer {
  if (scriptStaging === null || scriptStaging.length < minBytes) {
    const grown = Buffer.allocUnsafe(Math.max(minBytes, 2 * (scriptStaging?.length ?? 0)));
    scriptStaging?.copy(grown);
    scriptStaging = grown;
  }
  return scriptStaging;
}

function wasmStagingOf(module: CrcModule, minBytes: number): Buffer {
  if (wasmStaging !== null && wasmStaging.length >= minBytes) return wasmStaging;
  const have = module.memory.buffer.byteLength - STAGING_AT;
  if (have < minBytes) {
    const want = Math.min(STAGING_MAX_BYTES, Math.max(minBytes, 2 * Math.max(have, 0)));
    module.memory.grow(Math.ceil((STAGING_AT + want - module.memory.buffer.byteLength) / PAGE_BYTES));
  }
  const buffer = module.memory.buffer;
  scratch = new Uint8Array(buffer, SCRATCH_AT, SCRATCH_BYTES);
  wasmStaging = Buffer.from(buffer, STAGING_AT, Math.min(STAGING_MAX_BYTES, buffer.byteLength - STAGING_AT));
  return wasmStaging;
}
