// The bodies of Queue's calls, each written once (see operation.ts): what
// runs with the lock held for a take, a peek, an append, an acknowledgement
// (taskDone, ack), a give-back (nack) and a clear. queue.ts drives them: its
// sync and async forms through OperationRunner, get and put through waiting
// loops of their own around take and append.

import { Full, QueueError } from './errors.js';
import { entryOf, idsOf, type Entry, type EntryRef } from './entries.js';
import type { HandOutCount } from './hand-outs.js';
import { dueOf, rawOption, type NackOptions, type PeekOptions } from './arguments.js';
import type { Operation } from './operation.js';
import type { RunOptions } from './coordination/session.js';
import type { ResolvedOptions } from './options.js';
import type { QueueStore, StoreEntry, StoreStats } from './store/store.js';
import type { WaitList } from './wakeup/waiters.js';

/** A getter that finds nothing looks for dead consumers' items at most this often. */
export const RECLAIM_WHEN_IDLE_MS = 50;
/** A busy consumer looks for them at least this often. */
const RECLAIM_WHEN_BUSY_MS = 1000;

const FINISHING: RunOptions = { finishing: true };

/** A take that getSync asks for: how many, and whether as entries. */
export interface TakeRequest {
  max: number;
  raw: boolean;
}

/** One consumer of the queue, as `stats()` and `consumers()` give it. */
export interface ConsumerStats {
  name: string;
  /** Items it may be handed now. */
  waiting: number;
  /** Handed out to its processes and not acknowledged. */
  held: number;
  /** When one of its processes last took, acknowledged or gave back an item (ms since the epoch); null: not since the shared state was made. */
  lastSeen: number | null;
}

/** What `stats()` gives. */
export interface QueueStats {
  /** `size`: items that may be handed out now. */
  waiting: number;
  /** Handed out and not acknowledged, by any process. */
  held: number;
  /** Given back (nack) with a delay that has not passed. */
  delayed: number;
  /** Items in the dead-letter queue (none until ackFailed and maxDeliveries exist). */
  deadLetters: number;
  /** Bytes in chunk files, and how many there are. */
  bytes: number;
  chunks: number;
  consumers: ConsumerStats[];
}

function statsFrom(store: StoreStats): QueueStats {
  const { waiting, held, delayed, bytes, chunks, lastSeen } = store;
  // One consumer for now: named consumers come with issue 12's next part.
  return { waiting, held, delayed, deadLetters: 0, bytes, chunks, consumers: [{ name: 'default', waiting, held, lastSeen }] };
}

/** What ack and nack work on: the ids named, each once, and (nack) when they may go out again. */
interface NamedItems {
  ids: number[];
  /** ms since the epoch; 0: at once. */
  due: number;
}

/** What makes ack and nack differ (see QueueCalls.#byIds). */
interface ByIdCall<In> {
  prepare: (input: In) => NamedItems;
  /** Changes the state; returns the ids this consumer does not hold (then changes nothing). */
  apply: (named: NamedItems) => number[];
  after: (named: NamedItems) => void;
  /** For the ERR_NOT_HELD message: "nothing was <done>". */
  done: string;
  settles: boolean;
}

/** nack's arguments as the caller gave them. */
export interface NackInput {
  target: unknown;
  options: NackOptions;
}

/** The calls written once for both forms. */
export interface QueueOperations<T> {
  peek: Operation<PeekOptions, T | Entry<T> | undefined, boolean>;
  head: Operation<void, number>;
  stats: Operation<void, QueueStats>;
  taskDone: Operation<number, void>;
  ack: Operation<unknown, void, NamedItems>;
  nack: Operation<NackInput, void, NamedItems>;
  clear: Operation<void, void>;
  putNowait: Operation<readonly T[], void>;
  take: Operation<TakeRequest, Array<T | Entry<T>>>;
}

/** What the bodies need of the queue around them. */
export interface CallContext {
  readonly dir: string;
  readonly options: ResolvedOptions;
  readonly store: QueueStore;
  readonly handOuts: HandOutCount;
  readonly getters: WaitList;
  readonly putters: WaitList;
  /** Resolves the join() calls the queue has now reached. */
  resolveJoined(): void;
}

export class QueueCalls<T> {
  readonly operations: QueueOperations<T>;
  readonly #context: CallContext;
  readonly #store: QueueStore;
  #lastReclaim = -Infinity;

  constructor(context: CallContext) {
    this.#context = context;
    this.#store = context.store;
    this.operations = this.#makeOperations();
  }

  /** Takes up to `max` items (as entries into `entries` too, when given); finding none, first takes back what dead consumers held. */
  takeOrReclaim(max: number, entries?: StoreEntry[]): T[] {
    const taken = this.#take(max, entries);
    return taken.length === 0 && this.#reclaim(RECLAIM_WHEN_IDLE_MS) ? this.#take(max, entries) : taken;
  }

  /** Appends `items` and wakes this queue's getters. */
  append(items: readonly T[]): void {
    this.#store.append(items);
    this.#context.getters.wake(items.length);
  }

  isFull(): boolean {
    const { maxSize } = this.#context.options;
    return maxSize > 0 && this.#store.waiting >= maxSize;
  }

  #makeOperations(): QueueOperations<T> {
    const { dir, options, handOuts, putters } = this.#context;
    const store = this.#store;
    const autosave = options.autosave;
    return {
      peek: { prepare: (peekOptions) => rawOption(dir, peekOptions, 'peek'), body: (raw) => this.#peek(raw), locked: true, settles: false },
      head: { body: () => store.headSeq, locked: true, settles: false },
      stats: { body: () => statsFrom(store.stats()), locked: true, settles: false },
      taskDone: {
        // A bad count throws here, before any lock is taken.
        prepare: (count) => {
          handOuts.acknowledge(count);
          return count;
        },
        body: (count) => {
          // With autosave, get acknowledged the items already.
          if (!autosave) store.acknowledgeOldest(count);
          this.#context.resolveJoined();
        },
        locked: !autosave,
        settles: true,
        runOptions: FINISHING,
      },
      ack: this.#byIds({
        prepare: (target: unknown) => ({ ids: idsOf(dir, target, 'ack'), due: 0 }),
        apply: ({ ids }) => store.acknowledge(ids),
        after: () => this.#context.resolveJoined(),
        done: 'acknowledged',
        // Durable like a taskDone; a nack changes `state` alone.
        settles: true,
      }),
      nack: this.#byIds({
        prepare: ({ target, options }: NackInput) => ({ ids: idsOf(dir, target, 'nack'), due: dueOf(dir, options) }),
        apply: ({ ids, due }) => store.giveBack(ids, due),
        after: ({ ids }) => this.#context.getters.wake(ids.length),
        done: 'given back',
        settles: false,
      }),
      // Durable like a put: under fsync 'always', cleared items never come back after a power cut.
      clear: {
        body: () => {
          store.clear();
          handOuts.acknowledgeAll();
          this.#context.resolveJoined();
          putters.wakeAll();
        },
        locked: true,
        settles: true,
      },
      putNowait: {
        body: (items) => {
          if (this.isFull()) throw new Full(dir, `the queue holds maxSize (${options.maxSize}) items`);
          this.append(items);
        },
        locked: true,
        settles: true,
      },
      // With autosave the take is the acknowledgement, so it settles.
      take: { body: ({ max, raw }) => this.takeAs(max, raw), locked: true, settles: autosave },
    };
  }

  /**
   * A call on the items a caller names by id (ack, nack): all of them must be
   * held by this queue's consumer (`apply` says which are not, having changed
   * nothing), else ERR_NOT_HELD saying what was not `done`.
   */
  #byIds<In>(call: ByIdCall<In>): Operation<In, void, NamedItems> {
    const { dir, options, handOuts } = this.#context;
    return {
      prepare: call.prepare,
      body: (named) => {
        if (named.ids.length === 0) return;
        const missing = options.autosave ? named.ids : call.apply(named);
        if (missing.length > 0) throw notHeld(dir, missing, call.done, options.autosave);
        handOuts.release(named.ids.length);
        call.after(named);
      },
      locked: true,
      settles: call.settles,
      runOptions: FINISHING,
    };
  }

  /** What a get would take now, reclaiming dead consumers' items as a get would. */
  #peek(raw: boolean): T | Entry<T> | undefined {
    this.#reclaim(RECLAIM_WHEN_BUSY_MS);
    let next = this.#store.peekEntry();
    if (next === undefined && this.#reclaim(RECLAIM_WHEN_IDLE_MS)) next = this.#store.peekEntry();
    if (next === undefined) return undefined;
    return raw ? entryOf<T>(next) : (next.value as T);
  }

  /** `takeOrReclaim`, as entries with `raw`: the take of get, getMany and getSync. */
  takeAs(max: number, raw: boolean): Array<T | Entry<T>> {
    if (!raw) return this.takeOrReclaim(max);
    const entries: StoreEntry[] = [];
    this.takeOrReclaim(max, entries);
    return entries.map((entry) => entryOf<T>(entry));
  }

  #take(max: number, entries: StoreEntry[] | undefined): T[] {
    this.#reclaim(RECLAIM_WHEN_BUSY_MS);
    const values = this.#store.take(max, this.#context.options.autosave ? 'acknowledge' : 'hold', entries);
    if (values.length > 0) {
      this.#context.handOuts.handOut(values.length);
      this.#context.putters.wake(values.length);
    }
    return values as T[];
  }

  /** Looks for consumers that died holding items, if not done within `interval` ms; true if items came back. */
  #reclaim(interval: number): boolean {
    const now = performance.now();
    if (now - this.#lastReclaim < interval) return false;
    this.#lastReclaim = now;
    return this.#store.reclaimDead();
  }
}

function notHeld(dir: string, ids: readonly number[], what: string, autosave: boolean): QueueError {
  const shown = ids.length > 5 ? `${ids.slice(0, 5).join(', ')} and ${ids.length - 5} more` : ids.join(', ');
  const why = autosave
    ? 'with autosave, get acknowledges every item as it hands it out'
    : 'never handed out to it, acknowledged or given back already, or handed to another consumer since';
  return new QueueError(
    'ERR_NOT_HELD',
    dir,
    `this queue does not hold item${ids.length === 1 ? '' : 's'} ${shown} (${why}); nothing was ${what}`,
  );
}

export type { EntryRef };
