// The random schedule of a multi-process spec (when to kill whom), replayable:
// a failure prints its seed, and PERQ_SEED=<seed> runs the same schedule again.

/** The seed of a run: PERQ_SEED if set, else a fresh one. */
export function runSeed(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.PERQ_SEED;
  if (text === undefined || text === '') return Date.now();
  const seed = Number(text);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`PERQ_SEED must be a whole number, got '${text}'`);
  return seed;
}

/** A small deterministic generator (xorshift32): a whole number in [0, n), the same sequence for the same seed. */
export function randomFrom(seed: number): (n: number) => number {
  let state = seed >>> 0 || 1;
  return (n) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % n;
  };
}
