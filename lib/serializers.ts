// How items become bytes and back. Each serializer is named; the name is
// stored in the queue's info file so that a queue is always read with the
// serializer it was written with.

import { Encoder } from 'cbor-x';
import { Packr } from 'msgpackr';

export interface Serializer {
  /** Stored in the info file; reopening with another name is `ERR_FORMAT`. */
  readonly name: string;
  /** Turns an item into bytes; throws when the item cannot be encoded. */
  encode(value: unknown): Uint8Array;
  /** Turns bytes back into an item. The bytes are only valid during the call. */
  decode(bytes: Uint8Array): unknown;
}

/**
 * A built-in serializer that writes some values straight into perq's write
 * buffer: no payload buffer allocated per item and no copy of it.
 */
export interface InPlaceSerializer extends Serializer {
  /**
   * Writes `value`'s encoding at `target[offset..]` and returns its length in
   * bytes; undefined (nothing written) when this value, or the room left in
   * `target`, needs `encode` instead. What it writes decodes as what `encode`
   * would have written does.
   */
  encodeInto(value: unknown, target: Buffer, offset: number): number | undefined;
}

export function encodesInPlace(serializer: Serializer): serializer is InPlaceSerializer {
  return typeof (serializer as Partial<InPlaceSerializer>).encodeInto === 'function';
}

export type SerializerName = 'cbor' | 'json' | 'msgpack' | 'raw';
export type SerializerOption = SerializerName | Serializer;

export const BUILTIN_SERIALIZERS: readonly SerializerName[] = ['cbor', 'json', 'msgpack', 'raw'];

/** CBOR's major type 3 (text string), ORed with the additional information. */
const CBOR_TEXT = 0x60;
/** Additional information: the length follows in 1, 2 or 4 bytes. */
const CBOR_LENGTH_U8 = 24;
const CBOR_LENGTH_U16 = 25;
const CBOR_LENGTH_U32 = 26;
/** First bytes of a surrogate's 3-byte form and of U+FFFD in UTF-8. */
const UTF8_SURROGATE_LEAD = 0xed;
const UTF8_REPLACEMENT_LEAD = 0xef;
/** A UTF-16 code unit takes at most 3 bytes of UTF-8. */
const MAX_UTF8_PER_UNIT = 3;

/**
 * Buffer's own UTF-8 writer, which Buffer#write calls after normalising its
 * arguments: called straight, it saves ~10% of a small string's put (cbor-x
 * and msgpackr call it the same way). Missing from @types/node.
 */
interface Utf8Writable extends Buffer {
  utf8Write(value: string, offset: number, length: number): number;
}

/** Buffer#write where a runtime lacks utf8Write (it is not public API). */
const writeUtf8: (target: Buffer, value: string, at: number) => number =
  typeof (Buffer.prototype as Partial<Utf8Writable>).utf8Write === 'function'
    ? (target, value, at) => (target as Utf8Writable).utf8Write(value, at, target.length - at)
    : (target, value, at) => target.write(value, at);

/** Bytes of a CBOR text string's header for `length` bytes of UTF-8. */
function cborTextHeaderBytes(length: number): number {
  return length < CBOR_LENGTH_U8 ? 1 : length <= 0xff ? 2 : length <= 0xffff ? 3 : 5;
}

/**
 * A string as a CBOR text string (most items are strings), byte for byte as
 * cbor-x writes it: the header is sized for one byte per UTF-16 unit (UTF-8
 * takes at least that) and the text moved up in the rare case that it came
 * out long enough to need a bigger one. A string with a lone surrogate is
 * left to encode, which refuses it (see refuseLoneSurrogates).
 */
function cborStringInto(value: unknown, target: Buffer, offset: number): number | undefined {
  if (typeof value !== 'string') return undefined;
  const most = value.length * MAX_UTF8_PER_UNIT;
  if (offset + cborTextHeaderBytes(most) + most > target.length || !value.isWellFormed()) return undefined;
  const guessed = cborTextHeaderBytes(value.length);
  const at = offset + guessed;
  const length = writeUtf8(target, value, at);
  const header = cborTextHeaderBytes(length);
  if (header !== guessed) target.copyWithin(offset + header, offset + guessed, offset + guessed + length);
  if (header === 1) {
    target[offset] = CBOR_TEXT | length;
  } else if (header === 2) {
    target[offset] = CBOR_TEXT | CBOR_LENGTH_U8;
    target[offset + 1] = length;
  } else if (header === 3) {
    target[offset] = CBOR_TEXT | CBOR_LENGTH_U16;
    target.writeUInt16BE(length, offset + 1);
  } else {
    target[offset] = CBOR_TEXT | CBOR_LENGTH_U32;
    target.writeUInt32BE(length, offset + 1);
  }
  return header + length;
}

function cbor(): InPlaceSerializer {
  // Self-describing records (no shared structures between items, which a
  // reader in another process could not know), tag 259 so that a Map comes
  // back as a Map and an object as an object, and copied buffers because the
  // bytes handed to decode are perq's reusable read buffer.
  // (useTag259ForMaps is honoured by cbor-x but missing from its typings.)
  const options = { useRecords: false, mapsAsObjects: true, useTag259ForMaps: true, copyBuffers: true };
  const encoder = new Encoder(options);
  return {
    name: 'cbor',
    encode(value) {
      const bytes = encoder.encode(value);
      refuseLoneSurrogates(value, bytes);
      return bytes;
    },
    encodeInto: cborStringInto,
    decode: (bytes): unknown => encoder.decode(bytes),
  };
}

function msgpack(): Serializer {
  const packr = new Packr({
    useRecords: false,
    moreTypes: true,
    copyBuffers: true,
    // msgpackr would silently write a function as nil; perq refuses it instead.
    writeFunction: () => {
      throw new TypeError('a function cannot be serialized');
    },
  });
  return {
    name: 'msgpack',
    encode(value) {
      const bytes = packr.pack(value);
      refuseLoneSurrogates(value, bytes);
      // msgpack has no Map type: a Map is written as a map and read back as an
      // object, and one with object keys cannot be read back at all. Refuse
      // those here rather than write an item no get could ever return.
      try {
        packr.unpack(bytes);
      } catch (error) {
        throw new TypeError(
          `msgpack cannot read this item back (${(error as Error).message}); a Map with non-string keys needs the 'cbor' serializer`,
        );
      }
      return bytes;
    },
    decode: (bytes): unknown => packr.unpack(bytes),
  };
}

/**
 * CBOR and msgpack carry text as UTF-8, which has no form for a lone
 * surrogate: cbor-x and msgpackr write its 3-byte form (ED A0..BF ..) in a
 * short string and U+FFFD (EF BF BD) in a long one, and either reads back as
 * other characters. So such an item is refused; JSON escapes the character
 * and keeps it. The item is walked only when its encoding has one of those
 * lead bytes, which most items' encodings have not.
 */
function refuseLoneSurrogates(value: unknown, encoded: Uint8Array): void {
  if (encoded.indexOf(UTF8_SURROGATE_LEAD) === -1 && encoded.indexOf(UTF8_REPLACEMENT_LEAD) === -1) return;
  if (holdsLoneSurrogate(value)) {
    throw new TypeError(
      "a string in the item has a lone surrogate (half of a UTF-16 pair), which UTF-8 cannot carry; the 'json' serializer keeps it",
    );
  }
}

function holdsLoneSurrogate(value: unknown): boolean {
  if (typeof value === 'string') return !value.isWellFormed();
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value) || value instanceof Date) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (holdsLoneSurrogate(value[i])) return true;
    return false;
  }
  if (value instanceof Map) {
    for (const [key, entry] of value) if (holdsLoneSurrogate(key) || holdsLoneSurrogate(entry)) return true;
    return false;
  }
  if (value instanceof Set) {
    for (const entry of value) if (holdsLoneSurrogate(entry)) return true;
    return false;
  }
  // for-in, not Object.keys: no array allocated per object, and inherited
  // enumerable keys are looked at too (a superset of what an encoder writes).
  for (const key in value) {
    if (!key.isWellFormed() || holdsLoneSurrogate((value as Record<string, unknown>)[key])) return true;
  }
  return false;
}

/**
 * JSON.stringify would drop a nested function or symbol and turn a Map or Set
 * into {} without a word; perq refuses them instead, so nothing is lost silently.
 */
function refuseLossy(this: unknown, key: string, value: unknown): unknown {
  if (typeof value === 'function' || typeof value === 'symbol' || value instanceof Map || value instanceof Set) {
    const what = typeof value === 'object' ? (value as object).constructor.name : `a ${typeof value}`;
    throw new TypeError(`${what}${key === '' ? '' : ` (at key ${JSON.stringify(key)})`} has no JSON form; use the 'cbor' serializer`);
  }
  return value;
}

const json: Serializer = {
  name: 'json',
  encode(value) {
    const text = JSON.stringify(value, refuseLossy);
    if (text === undefined) throw new TypeError(`${typeof value} has no JSON form`);
    return Buffer.from(text, 'utf8');
  },
  decode: (bytes): unknown => JSON.parse(asBuffer(bytes).toString('utf8')),
};

const raw: Serializer = {
  name: 'raw',
  encode(value) {
    if (!(value instanceof Uint8Array)) throw new TypeError(`the raw serializer takes a Uint8Array, got ${describeValue(value)}`);
    return value;
  },
  decode: (bytes) => new Uint8Array(bytes),
};

/** Turns the `serializer` option into a Serializer; `invalid(why)` builds the error. */
export function resolveSerializer(option: unknown, invalid: (why: string) => Error): Serializer {
  switch (option) {
    case 'cbor':
      return cbor();
    case 'msgpack':
      return msgpack();
    case 'json':
      return json;
    case 'raw':
      return raw;
  }
  if (typeof option !== 'object' || option === null) {
    throw invalid(`must be one of ${BUILTIN_SERIALIZERS.map((n) => `'${n}'`).join(', ')} or { name, encode, decode }`);
  }
  const custom = option as Partial<Serializer>;
  if (typeof custom.name !== 'string' || custom.name.length === 0 || custom.name.length > 200) {
    throw invalid('needs a name: a string of 1 to 200 characters');
  }
  if ((BUILTIN_SERIALIZERS as readonly string[]).includes(custom.name)) {
    throw invalid(
      `has the name '${custom.name}' of a built-in serializer; pass the string '${custom.name}' instead or choose another name`,
    );
  }
  if (typeof custom.encode !== 'function' || typeof custom.decode !== 'function') {
    throw invalid('needs encode(value) and decode(bytes) functions');
  }
  return { name: custom.name, encode: custom.encode.bind(custom), decode: custom.decode.bind(custom) };
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return value.constructor?.name ?? 'an object';
  return typeof value;
}
