// The frame around every item in a chunk file:
//
//   offset 0  u32 LE  payload length
//   offset 4  u32 LE  CRC-32C of the payload
//   offset 8  u32 LE  CRC-32C of bytes 0..8 (the header check)
//   offset 12 payload
//
// The header has its own checksum so that a damaged length is recognised as
// damage before it is trusted: it can never be mistaken for a torn tail, skip
// valid records or make a reader allocate a wrong amount.

import { crc32c } from './crc32c.js';

/** Bytes of framing before each payload. */
export const HEADER_BYTES = 12;

/** Bytes a payload of `payloadLength` takes in a chunk file. */
export function frameSize(payloadLength: number): number {
  return HEADER_BYTES + payloadLength;
}

/** Writes `payload` framed into `target` at `offset`; returns the offset after it. */
export function writeFrame(target: Buffer, offset: number, payload: Uint8Array): number {
  target.set(payload, offset + HEADER_BYTES);
  return sealFrame(target, offset, payload.length);
}

/**
 * Writes the header of a frame at `offset` whose `length`-byte payload is
 * already in place after it; returns the offset after the frame.
 */
export function sealFrame(target: Uint8Array, offset: number, length: number): number {
  const start = offset + HEADER_BYTES;
  const end = start + length;
  // Byte stores beat Buffer#writeUInt32LE by ~30% of the whole frame cost on small items.
  putU32(target, offset, length);
  putU32(target, offset + 4, crc32c(target, start, end));
  putU32(target, offset + 8, crc32c(target, offset, offset + 8));
  return end;
}

/**
 * The payload length in the header at `offset`, or -1 when the header check
 * fails (the header is damaged or was never fully written).
 */
export function readHeaderLength(source: Uint8Array, offset: number): number {
  if (crc32c(source, offset, offset + 8) !== getU32(source, offset + 8)) return -1;
  return getU32(source, offset);
}

/** Whether the payload after the header at `offset` matches its checksum. */
export function payloadIntact(source: Uint8Array, offset: number, length: number): boolean {
  const start = offset + HEADER_BYTES;
  return crc32c(source, start, start + length) === getU32(source, offset + 4);
}

function putU32(target: Uint8Array, at: number, value: number): void {
  target[at] = value;
  target[at + 1] = value >>> 8;
  target[at + 2] = value >>> 16;
  target[at + 3] = value >>> 24;
}

function getU32(source: Uint8Array, at: number): number {
  return (source[at] | (source[at + 1] << 8) | (source[at + 2] << 16) | (source[at + 3] << 24)) >>> 0;
}
