// Items with their bookkeeping, as `get({ raw: true })` and its siblings give
// them, and the ids that `ack` and `nack` take (a number or an entry, or an
// array of them).

import { describeArgument } from './errors.js';
import { invalidArg } from './arguments.js';
import type { StoreEntry } from './store/store.js';

/** An item as the ack queue hands it out. */
export interface Entry<T> {
  /** The item's number: a safe integer, never given to another item of the directory (but see docs/format.md on power cuts). */
  id: number;
  data: T;
  /** When it was put, in ms since the epoch. */
  timestamp: number;
  /** Times it has been handed out, this time included (`peek`: so far). */
  deliveries: number;
}

/** What `ack` and `nack` take to name an item: its id, or the entry itself. */
export type EntryRef = number | { readonly id: number };

export function entryOf<T>(stored: StoreEntry): Entry<T> {
  return { id: stored.seq, data: stored.value as T, timestamp: stored.timestamp, deliveries: stored.deliveries };
}

/** The ids `target` names, each once, checked: ERR_INVALID_ARG for anything that is not an id, an entry or an array of them. */
export function idsOf(dir: string, target: unknown, call: string): number[] {
  const list = Array.isArray(target) ? (target as unknown[]) : [target];
  const ids = new Set<number>();
  for (const ref of list) ids.add(idOf(dir, ref, call));
  return [...ids];
}

function idOf(dir: string, ref: unknown, call: string): number {
  const id = typeof ref === 'object' && ref !== null && !Array.isArray(ref) ? (ref as { id?: unknown }).id : ref;
  if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return id;
  const what =
    typeof ref === 'object' && ref !== null && !Array.isArray(ref)
      ? `an object whose id is ${describeArgument(id)}`
      : describeArgument(ref);
  throw invalidArg(
    dir,
    `${call} takes an item's id (a whole number >= 0), an entry from get({ raw: true }), or an array of them; got ${what}`,
  );
}
