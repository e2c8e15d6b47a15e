// Opening a queue directory and bringing it in line with its durable files:
// the info file (or a new queue in an empty directory), the cursor (rebuilt
// when lost), acknowledged chunks a crash left, the newest chunk's head; and
// repairing a whole queue. Functions of the directory alone; QueueStore calls
// them under the lock.

import fs from 'node:fs';
import path from 'node:path';
import { ChunkWriter, chunkExists, chunkPath, parseChunkFileName, resumeChunk } from './chunk.js';
import { CURSOR_FILE, CURSOR_LOG_FILE, acknowledgedIn, isCursorFile, loadCursor, writeCursorFile, type CursorState } from './cursor.js';
import { QueueError, ioError } from '../errors.js';
import { INFO_FILE, readInfo, writeInfo } from './info.js';
import { CONSUMERS_DIR, isLeaseFile, prepareLeases } from '../coordination/lease.js';
import { FLOCK_FILE, LOCKFILE_DIR } from '../coordination/lock.js';
import { BUILTIN_SERIALIZERS, resolveSerializer, type Serializer } from '../serializers.js';
import type { StoreOptions } from './options.js';
import { countOf, dropBelow, endOf, gapsBetween, insertRange, subtractRanges } from './ranges.js';
import { repairChunk, type QuarantinedStretch } from './repair.js';
import { fileSize, isFileAt, type Inode } from '../fs/files.js';
import { STATE_FILE, StateFile, isStateFile, type SharedState } from './state.js';

/** write-file-atomic's temporary files (name + '.' + a murmur hash), left behind only by a crash mid-write. */
const ATOMIC_TEMP = /^(info|cursor)\.\d+$/;

/** Reads the info file, creating the queue when the directory is new. */
export function openInfo(dir: string, options: StoreOptions): { chunkSize: number; serializer: Serializer } {
  const info = readInfo(dir);
  if (info === null) {
    assertFreshDirectory(dir);
    writeInfo(dir, options.chunkSize, options.serializer.name);
    // The reserve lease's name is fsync'd as a lease's is (unless 'never'); the
    // cursor's directory fsync below makes consumers/ itself durable.
    prepareLeases(dir, options.fsync !== 'never');
    writeCursorFile(dir, { ackSeq: 0, headHint: 0, acked: [] }, true);
    return { chunkSize: options.chunkSize, serializer: options.serializer };
  }
  const file = path.join(dir, INFO_FILE);
  if (options.chunkSizeExplicit && options.chunkSize !== info.chunkSize) {
    throw new QueueError(
      'ERR_FORMAT',
      dir,
      `the queue was created with chunkSize ${info.chunkSize}, not ${options.chunkSize}; omit chunkSize to use the stored one`,
      { file },
    );
  }
  let serializer = options.serializer;
  if (options.serializerExplicit) {
    if (serializer.name !== info.serializer) {
      throw new QueueError('ERR_FORMAT', dir, `the queue was created with serializer '${info.serializer}', not '${serializer.name}'`, {
        file,
      });
    }
  } else if (info.serializer !== serializer.name) {
    if (!(BUILTIN_SERIALIZERS as readonly string[]).includes(info.serializer)) {
      throw new QueueError(
        'ERR_FORMAT',
        dir,
        `the queue was created with the custom serializer '${info.serializer}'; pass it as the serializer option`,
        { file },
      );
    }
    serializer = resolveSerializer(info.serializer, () => new Error('unreachable'));
  }
  return { chunkSize: info.chunkSize, serializer };
}

/**
 * A directory without an info file may become a queue only if it holds
 * nothing else (an empty lock file and temporary files perq makes first are
 * fine). Files that are perq's by their names and first bytes mean a queue
 * lost its info file (ERR_CORRUPT); anything else is someone else's
 * (ERR_FORMAT). Either way nothing is changed.
 */
function assertFreshDirectory(dir: string): void {
  const names = listDirectory(dir).filter(
    (name) => !ATOMIC_TEMP.test(name) && name !== LOCKFILE_DIR && !(name === FLOCK_FILE && fileSize(path.join(dir, name)) === 0),
  );
  if (names.length === 0) return;
  const queueData = names.filter((name) => isQueueData(dir, name));
  if (queueData.length > 0) {
    throw new QueueError(
      'ERR_CORRUPT',
      dir,
      `the info file is missing but the directory holds queue data (${queueData.slice(0, 3).join(', ')}); restore the info file rather than start over`,
      { file: path.join(dir, INFO_FILE) },
    );
  }
  throw new QueueError(
    'ERR_FORMAT',
    dir,
    `the directory is not a perq queue and is not empty (it holds ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''}); choose an empty or new directory`,
  );
}

/** Whether `name` in `dir` is one of perq's data files, by its name and content. */
function isQueueData(dir: string, name: string): boolean {
  const file = path.join(dir, name);
  if (parseChunkFileName(name) >= 0) return true;
  if (name === CURSOR_FILE || name === CURSOR_LOG_FILE) return isCursorFile(file, name === CURSOR_LOG_FILE);
  if (name === STATE_FILE) return isStateFile(file);
  if (name === CONSUMERS_DIR) {
    try {
      const leases = fs.readdirSync(file);
      return leases.length > 0 && leases.every((lease) => isLeaseFile(path.join(file, lease)));
    } catch {
      return false;
    }
  }
  return false;
}

/**
 * The persisted cursor: the larger of the cursor file and its log. When the
 * cursor file is missing or damaged, the cursor is rebuilt from the chunk files
 * and the log, erring towards handing items out again rather than skipping any.
 */
export function recoverCursor(dir: string, chunkSize: number, options: StoreOptions, gapsAllowed = false): CursorState {
  const loaded = loadCursor(dir);
  if (loaded.file !== null) return { ...acknowledgedIn(loaded), headHint: loaded.file.headHint };
  const chunks = listedChunks(dir);
  // Repair fills the gaps with stand-ins; an open must not guess past one.
  for (let i = 1; i < chunks.length && !gapsAllowed; i++) {
    if (chunks[i] !== chunks[i - 1] + 1) {
      throw new QueueError(
        'ERR_CORRUPT',
        dir,
        `the cursor file is ${loaded.fileStatus} and chunk ${chunks[i - 1] + 1} is missing between others`,
        { file: chunkPath(dir, chunks[i - 1] + 1) },
      );
    }
  }
  let ackSeq: number;
  if (chunks.length === 0) {
    // No items are left: continue numbering at a chunk boundary after the log's value.
    ackSeq = Math.ceil((loaded.logAckSeq ?? 0) / chunkSize) * chunkSize;
  } else {
    const first = chunks[0] * chunkSize;
    const last = (chunks[chunks.length - 1] + 1) * chunkSize;
    const logged = loaded.logAckSeq;
    ackSeq = logged !== null && logged >= first && logged <= last ? logged : first;
  }
  const acked = loaded.logAcked.map((range) => ({ ...range }));
  dropBelow(acked, ackSeq);
  const state = { ackSeq, headHint: chunks.length > 0 ? chunks[chunks.length - 1] : Math.floor(ackSeq / chunkSize), acked };
  writeCursorFile(dir, state, options.fsync !== 'never');
  process.emitWarning(
    `perq queue ${dir}: the cursor file was ${loaded.fileStatus}; rebuilt it from the chunk files (items from sequence ${ackSeq} on are handed out, some perhaps again)`,
    { code: 'PERQ_CURSOR_RECOVERED' },
  );
  return state;
}

/**
 * Up to this many chunks from the prefix to the cursor's head hint, open
 * lists the directory to find every acknowledged chunk a crash left. A larger
 * queue only probes down from the prefix (a listing would cost time and memory
 * in proportion to its backlog: 250 ms and 20 MiB at 100,000 chunks); chunks
 * left further down wait for an open when the queue is small.
 */
export const SWEEP_BY_LISTING_CHUNKS = 256;

/** Deletes chunks below the cursor's chunk (`tailChunk`) that a crash left behind. */
export function removeAcknowledgedChunks(dir: string, tailChunk: number, headHint: number, durable: boolean): void {
  // Deferred deletions cut short by a crash can leave chunks with gaps
  // between them and the oldest one kept: a listing finds them all.
  const acknowledged =
    headHint - tailChunk <= SWEEP_BY_LISTING_CHUNKS
      ? listedChunks(dir).filter((chunk) => chunk < tailChunk)
      : chunksRightBelow(dir, tailChunk);
  if (acknowledged.length === 0) return;
  // The cursor that frees them may be another process's entry not yet synced: sync it first.
  if (durable) syncFile(dir, path.join(dir, CURSOR_LOG_FILE));
  for (const chunk of acknowledged) {
    try {
      fs.unlinkSync(chunkPath(dir, chunk));
    } catch (error) {
      // Another process's deferred deletion took it meanwhile: what was wanted.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw ioError(dir, 'deleting an acknowledged chunk', error, chunkPath(dir, chunk));
    }
  }
}

/** The run of chunk files right below `tailChunk`, found by probing. */
function chunksRightBelow(dir: string, tailChunk: number): number[] {
  const found: number[] = [];
  for (let chunk = tailChunk - 1; chunk >= 0 && chunkExists(dir, chunk); chunk--) found.push(chunk);
  return found;
}

/** fdatasyncs `file` if it exists. */
function syncFile(dir: string, file: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return;
  }
  try {
    fs.fdatasyncSync(fd);
  } catch (error) {
    throw ioError(dir, 'fsync', error, file);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Brings `state`'s head and hand-out record in line with the durable files
 * (the caller marked the hold): the newest chunk is found and scanned from
 * `headHint`, the cursor's acknowledgements are merged in, and a hand-out
 * record the files no longer bear out is reset. Returns the newest chunk's
 * writer (null: the next append starts a chunk) and the prefix the files
 * allow, which may be above state.ackSeq (the caller moves it).
 */
export function alignWithFiles(
  dir: string,
  state: SharedState,
  chunkSize: number,
  headHint: number,
  maxItemBytes: number,
): { writer: ChunkWriter | null; ackSeq: number } {
  const durable = acknowledgedIn(loadCursor(dir));
  const head = findHead(dir, chunkSize, Math.max(state.ackSeq, durable.ackSeq), Math.max(0, headHint), maxItemBytes);
  const { writer } = head;
  const ackSeq = head.ackSeq;
  for (const range of durable.acked) insertRange(state.acked, range);
  dropBelow(state.acked, ackSeq);
  let headSeq = head.headSeq;
  const needed = Math.max(ackSeq, endOf(state.acked));
  if (headSeq < needed) {
    // Acknowledged items are missing from the head (a power cut kept the
    // cursor log but not the chunk): go on at the next chunk boundary, so
    // that a new item never takes the number of one acknowledged.
    const boundary = Math.ceil(needed / chunkSize) * chunkSize;
    const lost = countOf(gapsBetween(headSeq, needed, state.acked));
    if (lost > 0) warnLost(dir, lost, headSeq, needed, writer?.file ?? chunkPath(dir, Math.floor(headSeq / chunkSize)));
    insertRange(state.acked, { start: headSeq, count: boundary - headSeq });
    headSeq = boundary;
  }
  state.headSeq = headSeq;
  state.headChunk = writer?.chunk ?? -1;
  state.headBytes = writer?.size ?? 0;
  if (state.readSeq < ackSeq || state.readSeq > headSeq) {
    // The hand-out record is older than the prefix, or names items the
    // files no longer hold: everything after the prefix waits again.
    state.readSeq = ackSeq;
    state.readOffset = -1;
    state.returned = [];
    for (const row of state.consumers) row.held = [];
  }
  return { writer, ackSeq };
}

/**
 * Item `seq` is not in its chunk, and the records after it in that chunk
 * cannot be found either. Below the newest chunk that is data a power cut
 * took (the chunk was written after, or while, a newer one began): those
 * items are passed over. In the newest chunk the state and the file
 * disagree, which is damage. Changes `state` (the caller marked the hold).
 */
export function passOverLost(dir: string, state: SharedState, chunkSize: number, seq: number): void {
  const chunk = Math.floor(seq / chunkSize);
  const file = chunkPath(dir, chunk);
  if (chunk >= state.headChunk) {
    throw new QueueError(
      'ERR_CORRUPT',
      dir,
      `the newest chunk holds no whole record of item ${seq}, which the shared state says is there`,
      { file },
    );
  }
  const end = (chunk + 1) * chunkSize;
  const before = countOf(state.returned);
  subtractRanges(state.returned, [{ start: seq, count: end - seq }]);
  let lost = before - countOf(state.returned);
  if (state.readSeq >= seq && state.readSeq < end) {
    lost += end - state.readSeq;
    state.readSeq = end;
    state.readOffset = 0;
  }
  warnLost(dir, lost, seq, end, file);
}

/**
 * Finds the newest chunk (probing forward from `headHint`) and scans it,
 * cutting off a torn tail: a writer for it and the head sequence. The prefix
 * comes back moved up when the chunks it points into are gone but newer ones
 * are there: a chunk is deleted only once all its items are acknowledged, so
 * a prefix behind the oldest chunk lost its newest cursor entries in a power
 * cut (under fsync 'never'), or the files were removed by hand; either way
 * the queue goes on at the oldest item there is, with a warning.
 */
export function findHead(
  dir: string,
  chunkSize: number,
  ackSeq: number,
  headHint: number,
  maxItemBytes: number,
): { writer: ChunkWriter | null; headSeq: number; ackSeq: number } {
  let tailChunk = Math.floor(ackSeq / chunkSize);
  if (!chunkExists(dir, tailChunk) && (ackSeq % chunkSize !== 0 || chunkExists(dir, tailChunk + 1) || headHint > tailChunk)) {
    const later = listedChunks(dir).filter((chunk) => chunk > tailChunk);
    const next = (later.length > 0 ? later[0] : Math.max(tailChunk, headHint) + 1) * chunkSize;
    warnLost(dir, next - ackSeq, ackSeq, next, chunkPath(dir, tailChunk));
    ackSeq = next;
    tailChunk = next / chunkSize;
  }
  let newest = Math.max(tailChunk, headHint);
  if (!chunkExists(dir, newest)) {
    // A chunk that was the newest is gone while older ones are there: deleted behind perq's back.
    if (newest > tailChunk)
      throw new QueueError(
        'ERR_CORRUPT',
        dir,
        'the newest chunk file is missing (its items are lost); run perq repair to go on without it',
        { file: chunkPath(dir, newest) },
      );
    return { writer: null, headSeq: ackSeq, ackSeq };
  }
  while (chunkExists(dir, newest + 1)) newest++;
  const writer = resumeChunk(dir, newest, maxItemBytes, newest * chunkSize);
  if (writer.count > chunkSize) {
    writer.close();
    throw new QueueError('ERR_CORRUPT', dir, `the newest chunk holds ${writer.count} records, more than chunkSize ${chunkSize}`, {
      file: writer.file,
    });
  }
  return { writer, headSeq: newest * chunkSize + writer.count, ackSeq };
}

/** Says what quarantining moved where. */
export function warnQuarantined(dir: string, moved: readonly QuarantinedStretch[]): void {
  const what = moved
    .map(
      (m) =>
        `${m.bytes} bytes at offset ${m.offset} of ${m.file} (items ${m.firstSeq}..${m.lastSeq}: ${m.reason}) to ${m.movedTo ?? 'nowhere (no bytes)'}`,
    )
    .join('; ');
  process.emitWarning(`perq queue ${dir}: quarantined damaged records: ${what}`, { code: 'PERQ_QUARANTINED' });
}

/** Says that items [from, to) (`count` of them not acknowledged) cannot be handed out: their records are gone. */
export function warnLost(dir: string, count: number, from: number, to: number, file: string): void {
  process.emitWarning(
    `perq queue ${dir}: ${count} item(s) between ${from} and ${to - 1} are not in ${file}: written shortly before a power cut and never synced, or removed; going on with item ${to}`,
    { code: 'PERQ_RECORDS_LOST' },
  );
}

/** The numbers of the chunk files in `dir`, in order. */
export function listedChunks(dir: string): number[] {
  return listDirectory(dir)
    .map(parseChunkFileName)
    .filter((n) => n >= 0)
    .sort((a, b) => a - b);
}

/** The highest chunk number among the files of `dir`; -1 when there is none. */
export function newestChunkListed(dir: string): number {
  return listedChunks(dir).at(-1) ?? -1;
}

export function listDirectory(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (error) {
    throw ioError(dir, 'listing the queue directory', error);
  }
}

/** What Queue.repair did. */
export interface RepairReport {
  dir: string;
  /** Chunk files checked (from the acknowledged prefix to the newest). */
  chunks: number;
  /** Each damaged stretch moved into quarantine/ (or missing chunk made again of stand-ins), in order. */
  moved: QuarantinedStretch[];
}

/**
 * Quarantines every damaged record of the queue in `dir` (the caller holds
 * the lock): the chunks from the acknowledged prefix to the newest, and the
 * chunks missing between them; the processes that have the queue open move
 * to the new files at their next hold. Works where open itself fails.
 */
export function repairQueue(dir: string, options: StoreOptions): RepairReport {
  if (readInfo(dir) === null) throw new QueueError('ERR_FORMAT', dir, 'there is no queue here to repair (no info file)');
  const { chunkSize, serializer } = openInfo(dir, options);
  const cursor = recoverCursor(dir, chunkSize, options, true);
  const tail = Math.floor(cursor.ackSeq / chunkSize);
  const listed = listedChunks(dir).filter((chunk) => chunk >= tail);
  const newest = listed.at(-1) ?? tail - 1;
  const stateFile = new StateFile(dir);
  try {
    const state = stateFile.read();
    let told = false;
    // Before the first file changes, every process that has the queue open
    // is told to drop its descriptors on chunks and scan the head again:
    // a repair cut short must not leave a writer appending to a replaced file.
    const tellOthers = (): void => {
      if (told || state === null) return;
      told = true;
      state.gen++;
      state.rewrites++;
      state.dirty = true;
      stateFile.write(state);
    };
    const check = {
      chunkSize,
      maxItemBytes: options.maxItemBytes,
      decode: (payload: Uint8Array) => serializer.decode(payload),
      beforeChange: tellOthers,
    };
    const moved: QuarantinedStretch[] = [];
    for (let chunk = tail; chunk <= newest; chunk++) moved.push(...repairChunk(dir, chunk, { ...check, newest: chunk === newest }));
    const lostHead = Math.max(cursor.headHint, state?.headChunk ?? -1);
    if (lostHead > Math.max(newest, tail)) {
      // The newest chunk (or more) is gone: its items are lost, and the queue goes on after the newest there is.
      tellOthers();
      moved.push({
        file: chunkPath(dir, lostHead),
        offset: 0,
        bytes: 0,
        firstSeq: (newest + 1) * chunkSize,
        lastSeq: Math.max((newest + 1) * chunkSize, (state?.headSeq ?? 0) - 1),
        movedTo: null,
        reason: 'the newest chunk file was missing',
      });
      writeCursorFile(dir, { ...cursor, headHint: Math.max(newest, tail) }, options.fsync !== 'never');
      if (state !== null) {
        state.gen++;
        state.headChunk = newest;
        stateFile.write(state);
      }
    }
    return { dir, chunks: newest - tail + 1, moved };
  } finally {
    stateFile.close();
  }
}

/** The inode of `dir`'s lock file, to notice later that the directory was replaced; null without one (a store used on its own, as in specs). */
export function lockFileIdentity(dir: string): Inode | null {
  try {
    return fs.statSync(path.join(dir, FLOCK_FILE));
  } catch {
    return null;
  }
}

/**
 * Throws unless the `lock` file is still the one this queue locks. When the
 * directory was removed (or removed and made again by another queue), the
 * kernel lock no longer excludes anyone, and the descriptors held point at
 * deleted files or, worse, at the new queue's: every call fails instead.
 */
export function assertSameDirectory(dir: string, lockInode: Inode | null): void {
  if (lockInode === null || isFileAt(path.join(dir, FLOCK_FILE), lockInode)) return;
  throw new QueueError(
    'ERR_IO',
    dir,
    'the queue directory was removed or replaced while this queue had it open (its lock file is not the one this queue locked); nothing more is written through this queue: close it and open the directory again',
    {
      file: path.join(dir, FLOCK_FILE),
    },
  );
}

/**
 * Quarantines the damage of chunk `chunk` (the caller holds the lock and has
 * let its descriptors on chunks go), with a warning; counts a rewrite in
 * `state` so that the other processes drop theirs. False when nothing moved.
 */
export function quarantineChunk(
  dir: string,
  state: SharedState,
  chunk: number,
  check: { chunkSize: number; maxItemBytes: number; decode: (payload: Uint8Array) => unknown },
): boolean {
  const moved = repairChunk(dir, chunk, { ...check, newest: chunk >= state.headChunk });
  if (moved.length === 0) return false;
  state.rewrites++;
  warnQuarantined(dir, moved);
  return true;
}
