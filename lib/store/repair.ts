// Getting a queue past damage without losing a byte: each damaged stretch of
// a chunk file is copied into quarantine/, and the chunk is rewritten (a new
// file, renamed over the old one) with the intact records as they were and a
// stand-in record (record.ts, sealQuarantined) for every item the stretch
// held, so each item keeps its place and the queue goes on past it.
//
// Where a damaged header hides where the next record starts, the next intact
// record is found by trying every offset after it: a record counts only if
// its header checksum, its sequence number (one of the items still to come
// in this chunk) and its payload checksum all match, so stray bytes are
// never taken for an item. The caller holds the directory lock.

import fs from 'node:fs';
import path from 'node:path';
import { chunkFileName, chunkPath, isAllZero, recordsCutOut } from './chunk.js';
import { fsyncDirectory } from '../fs/dirsync.js';
import { QueueError, ioError } from '../errors.js';
import { HEADER_BYTES, headerSeq, isQuarantined, payloadIntact, readHeaderLength, sealQuarantined } from './record.js';

export const QUARANTINE_DIR = 'quarantine';

/** One damaged stretch moved out of a chunk. */
export interface QuarantinedStretch {
  /** The chunk file it was in, and where in it (bytes). */
  file: string;
  offset: number;
  bytes: number;
  /** The items it held: firstSeq .. lastSeq (none when the chunk was missing). */
  firstSeq: number;
  lastSeq: number;
  /** Where its bytes are now (inside quarantine/); null when there were none (a missing chunk, records cut out). */
  movedTo: string | null;
  reason: string;
}

/** Where a chunk's records are good or damaged, as repair sees it. */
interface ChunkVerdict {
  /** Pieces of the new file, in order: intact records (offset, length in the old file) and stand-ins. */
  pieces: Array<{ kind: 'intact'; offset: number; length: number } | { kind: 'stand-in'; seq: number }>;
  damaged: Array<{ offset: number; end: number; firstSeq: number; lastSeq: number; reason: string }>;
}

export interface ChunkCheck {
  /** Decodes an intact payload, throwing when it cannot (a poison record is quarantined too). */
  decode?: (payload: Uint8Array) => unknown;
  maxItemBytes: number;
  chunkSize: number;
  /** The chunk is the newest: damage at its end ends it (a torn tail is no damage anywhere). */
  newest: boolean;
  /** Called before the first file is changed (to tell the other processes first). */
  beforeChange?: () => void;
}

/**
 * Checks chunk `chunk` of `dir` and, where it is damaged, quarantines the
 * damage and rewrites it. A missing chunk (a gap below the newest) is made
 * again of stand-ins. Returns what was moved; nothing when the chunk is sound.
 */
export function repairChunk(dir: string, chunk: number, check: ChunkCheck): QuarantinedStretch[] {
  const file = chunkPath(dir, chunk);
  const firstSeq = chunk * check.chunkSize;
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || check.newest) throw ioError(dir, 'reading a chunk to repair', error, file);
    const pieces = Array.from({ length: check.chunkSize }, (_, i) => ({ kind: 'stand-in' as const, seq: firstSeq + i }));
    check.beforeChange?.();
    replaceChunk(dir, file, Buffer.alloc(0), pieces);
    return [
      { file, offset: 0, bytes: 0, firstSeq, lastSeq: firstSeq + check.chunkSize - 1, movedTo: null, reason: 'the chunk file was missing' },
    ];
  }
  const verdict = verifyChunk(bytes, firstSeq, check);
  if (verdict.damaged.length === 0) return [];
  check.beforeChange?.();
  const moved = verdict.damaged.map((stretch) => {
    const movedTo =
      stretch.end > stretch.offset ? quarantine(dir, chunk, stretch.offset, bytes.subarray(stretch.offset, stretch.end)) : null;
    return {
      file,
      offset: stretch.offset,
      bytes: stretch.end - stretch.offset,
      firstSeq: stretch.firstSeq,
      lastSeq: stretch.lastSeq,
      movedTo,
      reason: stretch.reason,
    };
  });
  replaceChunk(dir, file, bytes, verdict.pieces);
  return moved;
}

/** Walks the records of a chunk, finding damaged stretches and what follows them. */
function verifyChunk(bytes: Buffer, firstSeq: number, check: ChunkCheck): ChunkVerdict {
  const verdict: ChunkVerdict = { pieces: [], damaged: [] };
  const endSeq = firstSeq + check.chunkSize;
  let pos = 0;
  let seq = firstSeq;
  while (seq < endSeq && pos < bytes.length) {
    const found = recordAt(bytes, pos, seq, check);
    if (found.kind === 'record') {
      verdict.pieces.push({ kind: 'intact', offset: pos, length: found.length });
      pos += found.length;
      seq++;
      continue;
    }
    if (found.kind === 'end') break; // a torn or zero tail, or an older chunk's bytes: no damage
    // Damage: find the next intact record of a later item of this chunk (here
    // itself, when the records before it were cut out).
    let next = pos;
    let nextSeq = -1;
    for (; next + HEADER_BYTES <= bytes.length; next++) {
      const length = readHeaderLength(bytes, next);
      if (length < 0) continue;
      const at = headerSeq(bytes, next);
      // The same item counts too: bytes inserted before a record shift it whole.
      if (!(at >= seq && at < endSeq) || recordAt(bytes, next, at, check).kind !== 'record') continue;
      nextSeq = at;
      break;
    }
    if (nextSeq < 0) {
      // Nothing intact follows. In the newest chunk the damage ends the data
      // (how many items it held cannot be known); below it, the rest of the
      // chunk's items were in it.
      const lastSeq = check.newest ? seq : endSeq - 1;
      verdict.damaged.push({ offset: pos, end: bytes.length, firstSeq: seq, lastSeq, reason: found.reason });
      if (!check.newest) for (; seq < endSeq; seq++) verdict.pieces.push({ kind: 'stand-in', seq });
      break;
    }
    verdict.damaged.push({ offset: pos, end: next, firstSeq: seq, lastSeq: nextSeq - 1, reason: found.reason });
    for (; seq < nextSeq; seq++) verdict.pieces.push({ kind: 'stand-in', seq });
    pos = next;
  }
  return verdict;
}

/** What lies at `pos` where item `seq` should be. */
function recordAt(
  bytes: Buffer,
  pos: number,
  seq: number,
  check: ChunkCheck,
): { kind: 'record'; length: number } | { kind: 'end' } | { kind: 'damage'; reason: string } {
  if (bytes.length - pos < HEADER_BYTES) return { kind: 'end' };
  const length = readHeaderLength(bytes, pos);
  if (length < 0) return isAllZero(bytes, pos) ? { kind: 'end' } : { kind: 'damage', reason: 'damaged record header (checksum mismatch)' };
  const at = headerSeq(bytes, pos);
  if (at !== seq) return at > seq ? { kind: 'damage', reason: recordsCutOut(at, seq) } : { kind: 'end' };
  if (isQuarantined(bytes, pos)) return { kind: 'record', length: HEADER_BYTES };
  if (length > check.maxItemBytes)
    return { kind: 'damage', reason: `record of ${length} bytes exceeds maxItemBytes (${check.maxItemBytes})` };
  if (pos + HEADER_BYTES + length > bytes.length) return { kind: 'end' };
  if (!payloadIntact(bytes, pos, length)) {
    return isAllZero(bytes, pos + HEADER_BYTES)
      ? { kind: 'end' }
      : { kind: 'damage', reason: 'damaged record payload (checksum mismatch)' };
  }
  if (check.decode !== undefined) {
    try {
      check.decode(bytes.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + length));
    } catch (error) {
      return { kind: 'damage', reason: `the serializer cannot decode an intact record: ${(error as Error)?.message ?? String(error)}` };
    }
  }
  return { kind: 'record', length: HEADER_BYTES + length };
}

/** Copies a damaged stretch into quarantine/ (durably); returns its path. */
function quarantine(dir: string, chunk: number, offset: number, stretch: Buffer): string {
  const folder = path.join(dir, QUARANTINE_DIR);
  const file = path.join(folder, `${chunkFileName(chunk)}.${offset}`);
  try {
    if (fs.mkdirSync(folder, { recursive: true }) !== undefined) fsyncDirectory(dir);
    // 'wx': a stretch quarantined before is never overwritten.
    const fd = fs.openSync(fs.existsSync(file) ? `${file}.${Date.now()}` : file, 'wx');
    try {
      fs.writeSync(fd, stretch);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fsyncDirectory(folder);
  } catch (error) {
    throw ioError(dir, 'copying damaged bytes into quarantine/', error, file);
  }
  return file;
}

/** Writes the new chunk from `pieces` beside the old one, syncs it, and renames it over the old one. */
function replaceChunk(dir: string, file: string, old: Buffer, pieces: ChunkVerdict['pieces']): void {
  let size = 0;
  for (const piece of pieces) size += piece.kind === 'intact' ? piece.length : HEADER_BYTES;
  const out = Buffer.alloc(size);
  let at = 0;
  for (const piece of pieces) {
    if (piece.kind === 'intact') at += old.copy(out, at, piece.offset, piece.offset + piece.length);
    else at = sealQuarantined(out, at, piece.seq);
  }
  const temp = `${file}.repair`;
  try {
    const fd = fs.openSync(temp, 'w');
    try {
      fs.writeSync(fd, out);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
    fsyncDirectory(dir);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw ioError(dir, 'rewriting a repaired chunk', error, file);
  }
}

/** The chunk file an ERR_CORRUPT is about, or -1 when it is not about a chunk. */
export function damagedChunk(error: unknown, dir: string, parseName: (name: string) => number): number {
  if (!(error instanceof QueueError) || error.code !== 'ERR_CORRUPT' || error.file === undefined) return -1;
  if (path.dirname(error.file) !== dir) return -1;
  return parseName(path.basename(error.file));
}
