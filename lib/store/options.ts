// The options the store acts on, as Queue.open resolved them (lib/options.ts
// validates them and documents each one). They live here, with the layer that
// needs them, so the store imports nothing from the queue above it.

import type { LockingMode } from '../coordination/lock.js';
import type { Serializer } from '../serializers.js';
import type { FsyncMode } from './durability.js';

/** `'error'`: damage rejects ERR_CORRUPT; `'quarantine'`: it is moved into quarantine/ and the queue goes on. */
export type OnCorrupt = 'error' | 'quarantine';

export interface StoreOptions {
  chunkSize: number;
  /** Whether the caller passed `chunkSize` (only then can it conflict with info). */
  chunkSizeExplicit: boolean;
  serializer: Serializer;
  serializerExplicit: boolean;
  fsync: FsyncMode;
  locking: LockingMode;
  maxItemBytes: number;
  staleAfter: number;
  onCorrupt: OnCorrupt;
}
