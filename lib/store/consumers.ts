// The consumer rows of the shared state, as this process sees them: its own
// row and lease (registered on its first take), and the rows of consumers
// whose process is gone, whose held items go back to wait. The rows live in
// the state the store passes in; the lease files in consumers/.

import fs from 'node:fs';
import path from 'node:path';
import { CONSUMERS_DIR, Lease, isLeaseFile, leaseAlive, leasePath, removeLease } from '../coordination/lease.js';
import type { StoreOptions } from './options.js';
import { countFrom, dropBelow, insertRange } from './ranges.js';
import { waitingIn, type ConsumerRow, type SharedState } from './state.js';

export class Consumers {
  readonly #dir: string;
  readonly #options: StoreOptions;
  /** This process's lease, once it has taken an item as a consumer. */
  #lease: Lease | null = null;

  constructor(dir: string, options: StoreOptions) {
    this.#dir = dir;
    this.#options = options;
  }

  /** Whether this process is registered as a consumer. */
  get registered(): boolean {
    return this.#lease !== null;
  }

  /** This process's row in `state`; undefined when it has none. */
  mine(state: SharedState): ConsumerRow | undefined {
    const id = this.#lease?.id;
    if (id === undefined) return undefined;
    return state.consumers.find((row) => row.id === id);
  }

  /** This process's row, registering it (with its lease) on first use. */
  ensure(state: SharedState): ConsumerRow {
    const existing = this.mine(state);
    if (existing !== undefined) return existing;
    if (this.#lease !== null) {
      // Our row is gone: another process took us for dead (a lease not touched in time).
      process.emitWarning(
        `perq queue ${this.#dir}: this consumer was taken for dead and its items were handed out again; registering anew`,
        { code: 'PERQ_LEASE_LOST' },
      );
      this.end();
    }
    // Skip ids with a lease file: after the state was rebuilt, the counter
    // restarts while consumers from before may still live.
    let id = state.nextConsumer++;
    while (fs.existsSync(leasePath(this.#dir, id))) id = state.nextConsumer++;
    this.#lease = Lease.take(this.#dir, id, this.#options.locking, this.#options.staleAfter, this.#options.fsync !== 'never');
    const row: ConsumerRow = { id, held: [] };
    state.consumers.push(row);
    return row;
  }

  /** Another consumer's row whose lease shows its process gone. */
  isDeadOther(row: ConsumerRow): boolean {
    return row.id !== this.#lease?.id && !this.#alive(row.id);
  }

  /**
   * Items waiting in `state`, counting those that consumers now gone still
   * hold (they will be handed out again, to whoever asks next). Probes the
   * lease of each other consumer that holds items.
   */
  waitingCountingGone(state: SharedState): number {
    let waiting = waitingIn(state);
    for (const row of state.consumers) {
      if (row.held.length > 0 && this.isDeadOther(row)) waiting += countFrom(row.held, state.ackSeq);
    }
    return waiting;
  }

  /** The other consumers in `state` whose process is gone (each one's lease probed). */
  deadOthers(state: SharedState): ConsumerRow[] {
    return state.consumers.filter((row) => this.isDeadOther(row));
  }

  /** Whether another consumer holds items and looks dead. */
  anyDeadHolding(state: SharedState): boolean {
    return state.consumers.some((row) => row.held.length > 0 && this.isDeadOther(row));
  }

  /** Drops `row` from `state`, its unacknowledged items going back to wait; true if there were any. */
  handBack(state: SharedState, row: ConsumerRow): boolean {
    dropBelow(row.held, state.ackSeq);
    for (const range of row.held) insertRange(state.returned, range);
    state.consumers.splice(state.consumers.indexOf(row), 1);
    return row.held.length > 0;
  }

  /** Hands back the rows of dead consumers and removes their leases; true if items came back. */
  reclaimDead(state: SharedState, dead: readonly ConsumerRow[]): boolean {
    let returned = false;
    for (const row of dead) {
      returned = this.handBack(state, row) || returned;
      removeLease(this.#dir, row.id);
    }
    return returned;
  }

  /** Lease files with no row: consumers that died before they were registered. */
  removeOrphanLeases(state: SharedState): void {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(this.#dir, CONSUMERS_DIR));
    } catch {
      return;
    }
    const known = new Set(state.consumers.map((row) => String(row.id)));
    for (const name of names) {
      const id = Number(name);
      if (known.has(name) || !Number.isSafeInteger(id) || String(id) !== name) continue;
      // Never remove a file perq did not write, whatever its name.
      if (!isLeaseFile(leasePath(this.#dir, id))) continue;
      if (!this.#alive(id)) removeLease(this.#dir, id);
    }
  }

  /** Ends this process's lease (its row is the caller's to hand back first). */
  end(): void {
    this.#lease?.end();
    this.#lease = null;
  }

  #alive(id: number): boolean {
    return leaseAlive(this.#dir, id, this.#options.locking, this.#options.staleAfter);
  }
}
