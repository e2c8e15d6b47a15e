// Opening a queue directory's store: the info file, the cursor (recovered
// from its log), acknowledged chunks left by a crash removed, the state file
// read (or rebuilt), and the first look at the files (QueueStore.startUp).
// The caller holds the directory lock.

import { CursorWriter } from './cursor.js';
import { Durability } from './durability.js';
import { QueueError, ioError } from '../errors.js';
import { isNetworkFileSystem } from './coherence.js';
import type { StoreOptions } from './options.js';
import {
  listDirectory,
  newestChunkListed,
  openInfo,
  recoverCursor,
  removeAcknowledgedChunks,
  repairQueue,
  warnQuarantined,
} from './recovery.js';
import { StateFile, initialState } from './state.js';
import { QueueStore } from './store.js';

/**
 * Opens (creating when absent) the queue in `dir`. With onCorrupt
 * 'quarantine', damage that stops the open (in the newest chunk, a missing
 * newest chunk) is repaired first.
 */
export function openStore(dir: string, options: StoreOptions): QueueStore {
  try {
    return openOnce(dir, options);
  } catch (error) {
    if (options.onCorrupt !== 'quarantine' || !(error instanceof QueueError) || error.code !== 'ERR_CORRUPT') throw error;
    const report = repairQueue(dir, options);
    if (report.moved.length === 0) throw error;
    warnQuarantined(dir, report.moved);
    return openOnce(dir, options);
  }
}

function openOnce(dir: string, options: StoreOptions): QueueStore {
  const network = isNetworkFileSystem(dir);
  // Another host's writes: sizes and small files this client cached are refreshed by a listing.
  if (network) listDirectory(dir);
  const { chunkSize, serializer } = openInfo(dir, options);
  const cursorState = recoverCursor(dir, chunkSize, options);
  const durable = options.fsync !== 'never' || network;
  removeAcknowledgedChunks(dir, Math.floor(cursorState.ackSeq / chunkSize), cursorState.headHint, durable);
  const stateFile = new StateFile(dir, network);
  let cursor: CursorWriter | undefined;
  try {
    cursor = new CursorWriter(dir, cursorState, durable);
    const durability = new Durability(options.fsync, dir, (error) => ioError(dir, 'fsync', error));
    const stored = stateFile.read();
    if (stored === null) stateFile.ensureHeader();
    const state = stored ?? initialState(cursorState.ackSeq);
    const store = new QueueStore(dir, options, serializer, chunkSize, cursor, stateFile, state, durability);
    // Open scans the newest chunk whatever the state says, as a queue without
    // one would: a state from before a crash or power loss may lag the files,
    // and damage near the head is found now rather than at a later get.
    // Without a state, the newest chunk is looked up in a listing: probing
    // forward from the cursor's hint would stop at the first missing chunk
    // and take the chunks past it for absent.
    store.startUp(Math.max(cursorState.headHint, stored === null ? newestChunkListed(dir) : state.headChunk));
    return store;
  } catch (error) {
    cursor?.closeLog();
    stateFile.close();
    throw error;
  }
}
