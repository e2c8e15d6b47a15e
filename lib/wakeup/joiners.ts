// Callers of `join`, each waiting for the queue to reach the head it saw when
// it called: resolved as acknowledgements come in (this process's, or another
// process's through a wake-up), rejected all at once when the queue closes.

interface Joiner {
  target: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class JoinList {
  #joiners: Joiner[] = [];

  get length(): number {
    return this.#joiners.length;
  }

  /** Resolves once `resolveReached` finds `target` reached. */
  wait(target: number): Promise<void> {
    return new Promise<void>((resolve, reject) => this.#joiners.push({ target, resolve, reject }));
  }

  /** Resolves the joiners whose target `reached` says the queue has reached. */
  resolveReached(reached: (target: number) => boolean): void {
    if (this.#joiners.length === 0) return;
    this.#joiners = this.#joiners.filter((joiner) => {
      if (!reached(joiner.target)) return true;
      joiner.resolve();
      return false;
    });
  }

  failAll(error: unknown): void {
    for (const joiner of this.#joiners.splice(0)) joiner.reject(error);
  }
}
