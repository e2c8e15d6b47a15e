// lib/serializers.ts: what each serializer keeps through a round trip, what it
// refuses to encode, that decoded values never alias the bytes they came from
// (perq decodes out of a reused read buffer), and custom serializer checks.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BUILTIN_SERIALIZERS, encodesInPlace, resolveSerializer, type Serializer, type SerializerOption } from '../lib/serializers.js';
import { inspect } from 'node:util';

class Invalid extends Error {}

function serializer(option: SerializerOption): Serializer {
  return resolveSerializer(option, (why) => new Invalid(why));
}

/** Encodes and decodes `value`. */
function roundTrip(s: Serializer, value: unknown): unknown {
  return s.decode(s.encode(value));
}

/**
 * Decodes from a view in the middle of a reused buffer, as the store does,
 * then scribbles over the buffer: the value must not change.
 */
function decodeFromReusedBuffer(s: Serializer, value: unknown): unknown {
  const encoded = s.encode(value);
  const buffer = Buffer.alloc(encoded.length + 64, 0x5a);
  buffer.set(encoded, 32);
  const decoded = s.decode(buffer.subarray(32, 32 + encoded.length));
  buffer.fill(0xa5);
  return decoded;
}

function cycle(): Record<string, unknown> {
  const a: Record<string, unknown> = { name: 'a' };
  a.self = { back: a };
  return a;
}

describe('cbor (the default)', () => {
  const cbor = serializer('cbor');

  test('is named cbor', () => {
    assert.equal(cbor.name, 'cbor');
  });

  test('a Date comes back a Date at the same time', () => {
    const date = new Date(Date.UTC(2024, 1, 29, 12, 34, 56, 789));
    const back = roundTrip(cbor, date);
    assert.ok(back instanceof Date);
    assert.equal(back.getTime(), date.getTime());
  });

  test('a Map comes back a Map, with non-string keys and order kept', () => {
    const key = { id: 1 };
    const map = new Map<unknown, unknown>([
      [2, 'two'],
      ['b', { nested: true }],
      [key, [1, 2]],
      [true, null],
    ]);
    const back = roundTrip(cbor, map);
    assert.ok(back instanceof Map);
    assert.deepEqual([...back.entries()], [...map.entries()]);
  });

  test('an empty Map comes back an empty Map', () => {
    const back = roundTrip(cbor, new Map());
    assert.ok(back instanceof Map);
    assert.equal(back.size, 0);
  });

  test('a plain object stays a plain object (not a Map)', () => {
    const value = { a: 1, b: 'two', c: { d: [3] } };
    const back = roundTrip(cbor, value);
    assert.deepEqual(back, value);
    assert.equal(Object.getPrototypeOf(back), Object.prototype);
    assert.equal(Object.getPrototypeOf(back.c), Object.prototype);
  });

  test('a Set comes back a Set', () => {
    const back = roundTrip(cbor, new Set([1, 'x', 3]));
    assert.ok(back instanceof Set);
    assert.deepEqual([...back], [1, 'x', 3]);
  });

  test('BigInt values come back as BigInt, small, large and negative', () => {
    for (const n of [0n, 1n, -5n, 2n ** 63n - 1n, 2n ** 64n, -(2n ** 70n), 12345678901234567890123n]) {
      assert.equal(roundTrip(cbor, n), n, String(n));
    }
  });

  test('typed arrays keep their type and contents', () => {
    const values = [
      Uint8Array.from([0, 1, 255]),
      Int8Array.from([-128, 0, 127]),
      Uint16Array.from([0, 65535]),
      Int32Array.from([-1, 2 ** 31 - 1]),
      Float32Array.from([1.5, -0.25]),
      Float64Array.from([Math.PI, -1e300]),
      BigInt64Array.from([-(2n ** 63n), 7n]),
    ];
    for (const value of values) {
      const back = roundTrip(cbor, value);
      assert.equal(Object.getPrototypeOf(back), Object.getPrototypeOf(value), value.constructor.name);
      assert.deepEqual(back, value, value.constructor.name);
    }
  });

  test('undefined, at the top level and nested, stays undefined', () => {
    assert.equal(roundTrip(cbor, undefined), undefined);
    const back = roundTrip(cbor, { a: undefined, list: [1, undefined, 3] }) as { a: unknown; list: unknown[] };
    assert.ok('a' in back);
    assert.equal(back.a, undefined);
    assert.deepEqual(back.list, [1, undefined, 3]);
  });

  test('scalars: null, booleans, numbers (including NaN and infinities), strings', () => {
    for (const value of [null, true, false, 0, 1, -1, 2 ** 53 - 1, 0.1, -1e-300, Infinity, -Infinity, '', 'h\u00e9llo \u{1f600}']) {
      assert.equal(roundTrip(cbor, value), value, String(value));
    }
    assert.ok(Number.isNaN(roundTrip(cbor, Number.NaN)));
  });

  test('a nested mix of all of these', () => {
    const value = {
      when: new Date(0),
      tags: new Set(['a', 'b']),
      index: new Map<unknown, unknown>([
        [1, { big: 2n ** 65n }],
        ['k', new Map([['inner', new Uint16Array([1, 2])]])],
      ]),
      list: [undefined, null, [new Float64Array([0.5])], { deep: { deeper: { deepest: 'yes' } } }],
    };
    assert.deepEqual(roundTrip(cbor, value), value);
  });

  test('decoded bytes are copies, not views into the buffer they were read from', () => {
    const value = { bytes: Uint8Array.from([1, 2, 3, 4]), text: 'keep me', list: [new Uint8Array(100).fill(9)] };
    assert.deepEqual(decodeFromReusedBuffer(cbor, value), value);
  });

  test('each serializer instance is independent: two queues do not share encoder state', () => {
    const other = serializer('cbor');
    const a = cbor.encode({ x: 1 });
    const b = other.encode({ y: 2 });
    assert.deepEqual(cbor.decode(a), { x: 1 });
    assert.deepEqual(other.decode(b), { y: 2 });
  });

  describe('strings written in place (encodeInto)', () => {
    assert.ok(encodesInPlace(cbor));
    const inPlace = cbor as Serializer & { encodeInto(value: unknown, target: Buffer, offset: number): number | undefined };
    // Lengths around each size of CBOR's length field (1, 2, 3, 5 bytes),
    // counted in UTF-16 units (by which the field is first sized) and in
    // UTF-8 bytes (by which it may have to grow), in 1- to 4-byte characters.
    const strings = [
      '',
      'a',
      'x'.repeat(7),
      'x'.repeat(8),
      'x'.repeat(23),
      'x'.repeat(24),
      'x'.repeat(85),
      'x'.repeat(86),
      'x'.repeat(255),
      'x'.repeat(256),
      'x'.repeat(21_845),
      'x'.repeat(21_846),
      'x'.repeat(65_535),
      'x'.repeat(65_536),
      'x'.repeat(70_000),
      'é'.repeat(40),
      '€'.repeat(85),
      '€'.repeat(86),
      '😀'.repeat(30),
      'é'.repeat(12),
      '€'.repeat(8),
      'x'.repeat(200) + '€'.repeat(20),
      '€'.repeat(21_845),
      '€'.repeat(21_846),
      'mixed é € 😀 text',
      '\u0000nul inside',
    ];

    test('writes the bytes encode gives, at any offset', () => {
      for (const text of strings) {
        const target = Buffer.alloc(300_000, 0xee);
        const length = inPlace.encodeInto(text, target, 5);
        assert.ok(length !== undefined, `written in place: ${text.length} units`);
        assert.equal(target[4], 0xee, 'nothing before the offset');
        assert.deepEqual(target.subarray(5, 5 + length), Buffer.from(cbor.encode(text)), `${text.length} units`);
        assert.equal(cbor.decode(target.subarray(5, 5 + length)), text);
      }
    });

    test('leaves to encode what it does not take: other types, lone surrogates, too little room', () => {
      const target = Buffer.alloc(64, 0xee);
      for (const value of [1, null, undefined, { a: 'b' }, ['x'], Buffer.from('x'), 'lone \ud800 surrogate', '\udc00', 'x'.repeat(30)]) {
        assert.equal(inPlace.encodeInto(value, target, 0), undefined, inspect(value));
      }
      assert.ok(
        target.every((byte) => byte === 0xee),
        'nothing written',
      );
    });

    test('only the built-in cbor writes in place; a custom serializer is used as given', () => {
      for (const name of ['json', 'msgpack', 'raw'] as const) assert.equal(encodesInPlace(serializer(name)), false, name);
      const custom = serializer({ name: 'mine', encode: () => new Uint8Array(0), decode: () => null, encodeInto: () => 0 } as Serializer);
      assert.equal(encodesInPlace(custom), false);
    });
  });
});

describe('json', () => {
  const json = serializer('json');

  test('is named json and round trips JSON values', () => {
    assert.equal(json.name, 'json');
    const value = { a: [1, 'two', null, true, { b: -0.5 }], s: 'h\u00e9llo \u{1f600}\n"' };
    assert.deepEqual(roundTrip(json, value), value);
    for (const scalar of [null, 0, 'x', false]) assert.equal(roundTrip(json, scalar), scalar);
  });

  test('encodes as UTF-8 JSON text', () => {
    assert.equal(Buffer.from(json.encode({ a: '\u00e9' })).toString('utf8'), '{"a":"\u00e9"}');
  });

  test("a Date becomes its ISO string (JSON's own rule)", () => {
    assert.equal(roundTrip(json, new Date(Date.UTC(2020, 0, 2))), '2020-01-02T00:00:00.000Z');
  });

  test('decodes from a plain Uint8Array view as well as a Buffer', () => {
    const encoded = json.encode({ k: 'v' });
    const backing = new Uint8Array(encoded.length + 10);
    backing.set(encoded, 5);
    assert.deepEqual(json.decode(backing.subarray(5, 5 + encoded.length)), { k: 'v' });
    assert.deepEqual(decodeFromReusedBuffer(json, { k: 'v' }), { k: 'v' });
  });
});

describe('msgpack', () => {
  const msgpack = serializer('msgpack');

  test('is named msgpack and round trips plain values, dates, sets, BigInt and typed arrays', () => {
    assert.equal(msgpack.name, 'msgpack');
    const value = {
      a: [1, 'two', null, true, { b: -0.5 }],
      when: new Date(12345),
      tags: new Set([1, 2]),
      big: 2n ** 70n,
      floats: Float64Array.from([1.25]),
      bytes: Uint8Array.from([7, 8]),
      nothing: undefined,
    };
    const back = roundTrip(msgpack, value);
    assert.deepEqual(back, value);
    assert.equal(Object.getPrototypeOf(back), Object.prototype);
  });

  test('decoded bytes are copies, not views into the buffer they were read from', () => {
    const value = { bytes: Uint8Array.from([1, 2, 3, 4]), text: 'keep me' };
    assert.deepEqual(decodeFromReusedBuffer(msgpack, value), value);
  });

  test('whatever msgpack encodes, it can decode: a Map with object keys', () => {
    // A value that encodes but cannot be decoded would sit in the queue as an
    // ERR_CORRUPT record forever; it must be refused at encode time or round trip.
    const map = new Map<unknown, unknown>([
      [{ id: 1 }, 'one'],
      [[2], 'two'],
    ]);
    assert.throws(() => msgpack.encode(map), /cannot read this item back/);
  });

  test('a Map with string or number keys comes back as a plain object (msgpack has no Map type)', () => {
    const map = new Map<unknown, unknown>([
      [1, 'one'],
      ['k', 'v'],
    ]);
    assert.deepEqual(roundTrip(msgpack, map), { 1: 'one', k: 'v' });
  });
});

describe('raw', () => {
  const raw = serializer('raw');

  test('is named raw: a Uint8Array in, the same bytes out as a Uint8Array', () => {
    assert.equal(raw.name, 'raw');
    const bytes = Uint8Array.from([0, 1, 2, 254, 255]);
    const back = roundTrip(raw, bytes);
    assert.ok(back instanceof Uint8Array);
    assert.deepEqual(Uint8Array.from(back), bytes);
  });

  test('a Buffer is accepted (it is a Uint8Array)', () => {
    const back = roundTrip(raw, Buffer.from('hello'));
    assert.ok(back instanceof Uint8Array);
    assert.equal(Buffer.from(back).toString(), 'hello');
  });

  test('an empty Uint8Array round trips', () => {
    const back = roundTrip(raw, new Uint8Array(0));
    assert.ok(back instanceof Uint8Array);
    assert.equal(back.length, 0);
  });

  test('decode returns a copy, not a view of the bytes it was given', () => {
    const source = Uint8Array.from([1, 2, 3, 4, 5, 6]);
    const view = source.subarray(1, 4);
    const back = raw.decode(view);
    assert.ok(back instanceof Uint8Array);
    assert.notEqual(back.buffer, source.buffer);
    source.fill(0);
    assert.deepEqual(Uint8Array.from(back), Uint8Array.from([2, 3, 4]));
    assert.deepEqual(decodeFromReusedBuffer(raw, Uint8Array.from([9, 8, 7])), Uint8Array.from([9, 8, 7]));
  });

  test('anything that is not a Uint8Array throws, naming what it got', () => {
    for (const [value, named] of [
      ['text', 'string'],
      [42, 'number'],
      [null, 'null'],
      [undefined, 'undefined'],
      [[1, 2], 'Array'],
      [{ length: 2 }, 'Object'],
      [new ArrayBuffer(4), 'ArrayBuffer'],
      [new Uint16Array(2), 'Uint16Array'],
      [new DataView(new ArrayBuffer(2)), 'DataView'],
    ] as Array<[unknown, string]>) {
      assert.throws(
        () => raw.encode(value),
        (error: unknown) => {
          assert.ok(error instanceof Error);
          assert.ok(error.message.includes(named), error.message);
          return true;
        },
        named,
      );
    }
  });
});

describe('values a serializer cannot encode throw', () => {
  const unencodable: Array<[string, () => unknown]> = [
    ['a function', () => () => 1],
    ['a symbol', () => Symbol('s')],
  ];

  for (const name of ['cbor', 'msgpack', 'json'] as const) {
    test(`${name}: a function and a symbol at the top level`, () => {
      const s = serializer(name);
      for (const [what, make] of unencodable) assert.throws(() => s.encode(make()), Error, `${name}: ${what}`);
    });
  }

  for (const name of ['cbor', 'msgpack'] as const) {
    test(`${name}: a function or a symbol nested inside an object or array`, () => {
      const s = serializer(name);
      assert.throws(() => s.encode({ ok: 1, fn: () => 1 }), Error);
      assert.throws(() => s.encode([1, [2, () => 3]]), Error);
      assert.throws(() => s.encode({ s: Symbol('x') }), Error);
      assert.throws(() => s.encode(new Map([['k', () => 1]])), Error);
    });

    test(`${name}: after a refused value, the next value encodes correctly`, () => {
      const s = serializer(name);
      assert.throws(() => s.encode({ text: 'x'.repeat(10_000), fn: () => 1 }), Error);
      assert.throws(() => s.encode(cycle()));
      const value = { after: 'refusal', n: [1, 2, 3] };
      assert.deepEqual(s.decode(s.encode(value)), value);
    });
  }

  for (const name of ['cbor', 'msgpack'] as const) {
    test(`${name}: a string with a lone surrogate, anywhere in the item (UTF-8 would change it)`, () => {
      const s = serializer(name);
      const lone = ['a\ud800b', '\udfff', 'x'.repeat(100) + '\ud800'];
      for (const text of lone) {
        for (const item of [
          text,
          { k: text },
          { [text]: 1 },
          [1, [2, text]],
          new Map([[text, 1]]),
          new Map([[1, text]]),
          new Set([text]),
        ]) {
          assert.throws(() => s.encode(item), /lone surrogate/, `${name}: ${JSON.stringify(item)}`);
        }
      }
      // A whole pair is one character and fine; so are U+FFFD itself and
      // bytes that look like a surrogate's UTF-8 outside a string.
      const fine = {
        text: 'a\ud83d\ude00b',
        list: ['😀'],
        replacement: '\ufffd'.repeat(40),
        bytes: Uint8Array.from([0xed, 0xa0, 0x80, 0xef, 0xbf, 0xbd]),
      };
      assert.deepEqual(s.decode(s.encode(fine)), fine);
    });
  }

  test('json keeps a string with a lone surrogate', () => {
    const json = serializer('json');
    const item = { k: 'a\ud800b', list: ['\udfff'] };
    assert.deepEqual(json.decode(json.encode(item)), item);
  });

  for (const name of ['cbor', 'msgpack', 'json'] as const) {
    test(`${name}: a cycle`, () => {
      assert.throws(() => serializer(name).encode(cycle()));
    });
  }

  test('json: undefined and BigInt', () => {
    const json = serializer('json');
    assert.throws(() => json.encode(undefined), Error);
    assert.throws(() => json.encode(1n), Error);
  });

  test('json: what JSON would silently drop or flatten is refused, wherever it sits', () => {
    const json = serializer('json');
    for (const lossy of [{ fn() {} }, [1, () => 2], { s: Symbol('s') }, new Map([[1, 2]]), { nested: { set: new Set([1]) } }]) {
      assert.throws(() => json.encode(lossy), /has no JSON form/);
    }
    assert.deepEqual(roundTrip(json, { a: [1, { b: 'c' }] }), { a: [1, { b: 'c' }] });
  });
});

describe('custom serializers', () => {
  test('are used as given, with this bound to the object', () => {
    const custom = {
      name: 'upper',
      prefix: 'U:',
      encode(value: unknown): Uint8Array {
        return Buffer.from(this.prefix + String(value).toUpperCase());
      },
      decode(bytes: Uint8Array): unknown {
        return Buffer.from(bytes).toString().slice(this.prefix.length);
      },
    };
    const s = serializer(custom);
    assert.equal(s.name, 'upper');
    // serializer() binds the custom methods: they work called on their own too.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const { encode, decode } = s;
    assert.equal(Buffer.from(encode('abc')).toString(), 'U:ABC');
    assert.equal(decode(encode('abc')), 'ABC');
  });

  test('a thrown error from a custom encode reaches the caller', () => {
    const s = serializer({
      name: 'picky',
      encode: () => {
        throw new RangeError('no thanks');
      },
      decode: () => null,
    });
    assert.throws(() => s.encode(1), /no thanks/);
  });

  test('invalid serializer options are rejected with a reason', () => {
    const noop = { encode: () => new Uint8Array(0), decode: () => null };
    const cases: Array<[string, unknown, RegExp]> = [
      ['an unknown name', 'xml', /'cbor', 'json', 'msgpack', 'raw'/],
      ['an empty string', '', /'cbor'/],
      ['a number', 42, /'cbor'/],
      ['null', null, /'cbor'/],
      ['a function', () => null, /'cbor'/],
      ['no name', { ...noop }, /name/],
      ['an empty name', { name: '', ...noop }, /name/],
      ['a name too long', { name: 'n'.repeat(201), ...noop }, /name/],
      ['a non-string name', { name: 5, ...noop }, /name/],
      ['a built-in name', { name: 'cbor', ...noop }, /built-in/],
      ['no encode', { name: 'x', decode: noop.decode }, /encode/],
      ['no decode', { name: 'x', encode: noop.encode }, /decode/],
      ['encode not a function', { name: 'x', encode: 'yes', decode: noop.decode }, /encode/],
    ];
    for (const [what, option, reason] of cases) {
      assert.throws(
        () => resolveSerializer(option, (why) => new Invalid(why)),
        (error: unknown) => {
          assert.ok(error instanceof Invalid, `${what}: ${String(error)}`);
          assert.match(error.message, reason, what);
          return true;
        },
        what,
      );
    }
  });

  test('every built-in name resolves to a serializer of that name', () => {
    assert.deepEqual([...BUILTIN_SERIALIZERS].sort(), ['cbor', 'json', 'msgpack', 'raw']);
    for (const name of BUILTIN_SERIALIZERS) assert.equal(serializer(name).name, name);
  });
});
