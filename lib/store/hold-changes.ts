// What one hold of the directory lock has changed, and so what letting it go
// must do. The one way the store records a change:
// - `changedState()`: the hand-out bookkeeping, in memory only. A holder that
//   dies loses its hand-outs, whose items simply wait again.
// - `changingFiles()`: before the first file change of the hold. The state is
//   marked dirty on disk first, so that a holder that dies from here on is
//   recovered from the files by the next one.

export type HoldChangeKind = 'none' | 'state' | 'files';

export class HoldChanges {
  #kind: HoldChangeKind = 'none';
  readonly #markDirty: () => void;

  /** `markDirty` writes the state with its dirty mark (once per hold, before the first file change). */
  constructor(markDirty: () => void) {
    this.#markDirty = markDirty;
  }

  get kind(): HoldChangeKind {
    return this.#kind;
  }

  changedState(): void {
    if (this.#kind === 'none') this.#kind = 'state';
  }

  changingFiles(): void {
    if (this.#kind === 'files') return;
    this.#markDirty();
    this.#kind = 'files';
  }

  /** Published, or the state re-read from disk: nothing of this hold is pending. */
  reset(): void {
    this.#kind = 'none';
  }
}
