// The items the torture workers put: each derived from its id, so that a
// wrong, mixed-up or half-written item is recognised wherever it turns up.

export interface TortureItem {
  id: number;
  /** Derived from id; a few items are larger than the 64 KiB read-ahead buffer. */
  pad: string;
}

/** Ids of producer `tag` start here: ids stay unique across producers and restarts. */
export const ID_SPACE = 10_000_000;

function hash(id: number): number {
  let h = Math.imul(id ^ 0x9e3779b9, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export function padOf(id: number): string {
  const h = hash(id);
  const length = h % 509 === 0 ? 70_000 + (h % 1000) : 1 + (h % 150);
  const mark = `<${id}:${h.toString(36)}>`;
  return mark.repeat(Math.ceil(length / mark.length)).slice(0, length);
}

export function tortureItem(id: number): TortureItem {
  return { id, pad: padOf(id) };
}

/** The id of `value` if it is exactly the item of that id, else a description of what it is. */
export function checkItem(value: unknown): { id: number } | { wrong: string } {
  if (typeof value !== 'object' || value === null) return { wrong: `not an item: ${describe(value)}` };
  const { id, pad } = value as Partial<TortureItem>;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) return { wrong: `item with a bad id: ${describe(value)}` };
  if (pad !== padOf(id) || Object.keys(value).length !== 2) return { wrong: `item ${id} with wrong content: ${describe(value)}` };
  return { id };
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
