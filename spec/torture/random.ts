// A small seeded generator (mulberry32), so that every randomized torture run
// can be replayed from the seed it prints.

export interface Random {
  /** A whole number in [0, n). */
  int(n: number): number;
  /** A whole number in [lo, hi]. */
  range(lo: number, hi: number): number;
  /** A float in [0, 1). */
  float(): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
  /** A fresh seed for a child generator (or a child process). */
  seed(): number;
}

export function random(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r: Random = {
    int: (n) => Math.floor(next() * n),
    range: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    float: next,
    pick: (items) => items[Math.floor(next() * items.length)],
    chance: (p) => next() < p,
    seed: () => Math.floor(next() * 2 ** 31) + 1,
  };
  return r;
}

/** The seed from `--seed S`, `PERQ_SEED`, or a fresh one. */
export function seedFrom(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): number {
  const at = argv.indexOf('--seed');
  const text = at >= 0 ? argv[at + 1] : env.PERQ_SEED;
  if (text !== undefined && text !== '') {
    const seed = Number(text);
    if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`--seed / PERQ_SEED must be a whole number, got ${text}`);
    return seed;
  }
  return Math.floor(Math.random() * 2 ** 31) + 1;
}
