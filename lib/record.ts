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
  const start = offset + HEADER_BYTES;
  target.set(payload, start);
  target.writeUInt32LE(payload.length, offset);
  target.writeUInt32LE(crc32c(target, start, start + payload.length), offset + 4);
  target.writeUInt32LE(crc32c(target, offset, offset + 8), offset + 8);
  return start + payload.length;
}

/**
 * The payload length in the header at `offset`, or -1 when the header check
 * fails (the header is damaged or was never fully written).
 */
export function readHeaderLength(source: Uint8Array, offset: number): number {
  const view = Buffer.isBuffer(source) ? source : Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  if (crc32c(view, offset, offset + 8) !== view.readUInt32LE(offset + 8)) return -1;
  return view.readUInt32LE(offset);
}

/** Whether the payload after the header at `offset` matches its checksum. */
export function payloadIntact(source: Buffer, offset: number, length: number): boolean {
  const start = offset + HEADER_BYTES;
  return crc32c(source, start, start + length) === source.readUInt32LE(offset + 4);
}
