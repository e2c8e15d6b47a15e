// The items the power-loss workers put: each names its producer and its
// number, and carries a payload derived from both, so an item read back can
// be checked byte for byte against what was put (a mixed-up, torn or stale
// item is recognised, never counted as good).

export interface PowerItem {
  /** The producer: unique in the run, so a key is never put twice. */
  p: string;
  /** The producer's count: 0, 1, 2, ... */
  k: number;
  /** Derived from p and k; now and then longer than a page of LazyFS's cache. */
  pad: string;
}

/** One item in this many is large (crosses LazyFS's 4 KiB cache pages). */
const LARGE_EVERY = 23;
const LARGE_BYTES = 6000;
const SMALL_BYTES = 120;

export function keyOf(p: string, k: number): string {
  return `${p}/${k}`;
}

function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export function powerItem(p: string, k: number): PowerItem {
  const key = keyOf(p, k);
  const h = hash(key);
  const length = h % LARGE_EVERY === 0 ? LARGE_BYTES + (h % 3000) : 8 + (h % SMALL_BYTES);
  const unit = `${key}:${(h % 9973).toString(36)}|`;
  return { p, k, pad: unit.repeat(Math.ceil(length / unit.length)).slice(0, length) };
}

/** The key of `value` if it is exactly an item powerItem made; otherwise why not. */
export function checkItem(value: unknown): { key: string } | { wrong: string } {
  if (typeof value !== 'object' || value === null) return { wrong: `not an item: ${describe(value)}` };
  const { p, k, pad } = value as Partial<PowerItem>;
  if (typeof p !== 'string' || typeof k !== 'number' || !Number.isSafeInteger(k) || typeof pad !== 'string') {
    return { wrong: `not an item: ${describe(value)}` };
  }
  const expected = powerItem(p, k);
  const keys = Object.keys(value);
  if (keys.length !== 3 || pad !== expected.pad) return { wrong: `item ${keyOf(p, k)} differs from what was put: ${describe(value)}` };
  return { key: keyOf(p, k) };
}

function describe(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 120 ? `${text.slice(0, 120)}...` : text;
}
