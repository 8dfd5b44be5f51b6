import { expect } from 'chai';
import { decodeMessage, encodeMessage, encodePayload, encodePayloadParts, lastFlatPayloadDepth, lastFlatPayloadItems, scanMessagePack, DEFAULT_DECODE_LIMITS } from '@tunnelrpc/protocol/internal';

// The hand-written request/response encoder must give what msgpackr's decoder reads back as the same value.
const VALUES: unknown[] = [
  null, undefined, true, false, 0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, -1, -32, -33, -128,
  -129, -32768, -32769, -2147483648, -2147483649, 2 ** 53 - 1, -(2 ** 53) + 1, 1.5, -0.25, Number.MAX_VALUE, NaN, Infinity,
  '', 'a', 'x'.repeat(31), 'x'.repeat(32), 'é'.repeat(11), 'é'.repeat(16), '日本語テキスト', 'x'.repeat(63), 'x'.repeat(64), `${'x'.repeat(40)}é`, `é${'x'.repeat(40)}`, 'x'.repeat(255), 'x'.repeat(256),
  'y'.repeat(70_000), '😀'.repeat(10), Buffer.alloc(0), Buffer.from([1, 2, 3]), new Uint8Array(300).fill(9), Buffer.alloc(70_000, 7),
  [1, 'two', null], { a: 1, b: [true, { c: 'd' }] }, new Date(1_700_000_000_123), [Buffer.from([5])],
  Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${i}`, i])), Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
  { big: Buffer.alloc(20_000, 1), after: 'x', nested: { more: Buffer.alloc(20_000, 2), tail: [1, { t: 2 }] } },
  Array.from({ length: 20 }, (_, i) => ({ id: i, s: 'x'.repeat(i * 10), when: new Date(i), tags: ['a', 'b'], m: { x: i, y: null } })),
  nest(12), Array.from({ length: 70 }, (_, i) => i - 35), { '': 0, 'é': 'ü', '1': 'one', __proto__: null },
];

function labelOf(value: unknown): string {
  if (typeof value !== 'object' || value === null) return String(value);
  const json = JSON.stringify(value, (_key, item: unknown) => (item instanceof Map ? '<Map>' : item));
  return `${Object.getPrototypeOf(value) === null ? 'null-prototype ' : ''}${json.length > 60 ? `${json.slice(0, 60)}…` : json}`;
}

function nest(levels: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < levels; i++) value = { level: i, inner: value, list: [value] };
  return value;
}

function roundTrip(payload: Uint8Array): unknown {
  scanMessagePack(payload, DEFAULT_DECODE_LIMITS);
  return decodeMessage(payload);
}

describe('encodePayload (hand-written envelope)', () => {
  for (const value of VALUES) {
    const label = Buffer.isBuffer(value) || value instanceof Uint8Array ? `bytes(${value.length})` : typeof value === 'string' ? `string(${value.length})` : labelOf(value);
    it(`round-trips ${label} as request params, as a result and as a stream message`, () => {
      const request = roundTrip(encodePayload({ type: 0, id: 70_000, method: 'Svc.do', params: value, meta: { timeout: 30_000, headers: { h: 'v' } } }));
      const response = roundTrip(encodePayload({ type: 1, id: 3, result: value }));
      // undefined travels as nil and comes back as null, like msgpackr does.
      const expected = value === undefined ? null : value instanceof Uint8Array ? Buffer.from(value) : value;
      expect(request).to.deep.equal({ type: 0, id: 70_000, method: 'Svc.do', params: expected, meta: { timeout: 30_000, headers: { h: 'v' } } });
      expect(response).to.deep.equal({ type: 1, id: 3, result: expected });
      expect(roundTrip(encodePayload({ type: 4, id: 70_000, message: value }))).to.deep.equal({ type: 4, id: 70_000, message: expected });
    });
  }

  it('leaves out object keys that hold undefined, as msgpackr does, and writes them in their order', () => {
    const payload = encodePayload({ type: 1, id: 1, result: { a: undefined, b: 2, c: { d: undefined }, e: [undefined] } });
    expect(roundTrip(payload)).to.deep.equal({ type: 1, id: 1, result: { b: 2, c: {}, e: [null] } });
    expect(Object.keys((roundTrip(encodePayload({ type: 1, id: 1, result: { z: 1, a: 2, m: 3 } })) as { result: object }).result)).to.deep.equal(['z', 'a', 'm']);
  });

  it('keeps every object header right while messages cross slab ends, byte arrays are cut out and objects nest', () => {
    let seed = 7;
    const next = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
    for (let i = 0; i < 3000; i++) {
      const value = {
        n: i,
        text: 'q'.repeat(next() % 3000),
        inner: { bytes: Buffer.alloc(next() % 2 === 0 ? 10 : 17_000, i & 0xff), more: { s: 'r'.repeat(next() % 500), list: [i, { deep: 'x' }] } },
        after: 'tail',
      };
      expect(roundTrip(Buffer.concat([encodePayload({ type: 1, id: i + 1, result: value })]))).to.deep.equal({ type: 1, id: i + 1, result: value });
    }
  });

  it('encodes the next message correctly after one that could not be encoded midway', () => {
    expect(() => encodePayload({ type: 1, id: 1, result: [Buffer.alloc(20_000, 3), { bad: Symbol('no') }] })).to.throw();
    expect(roundTrip(encodePayload({ type: 1, id: 2, result: { ok: [1, 2] } }))).to.deep.equal({ type: 1, id: 2, result: { ok: [1, 2] } });
  });

  it('encodes the next message whole after one that threw past a large byte array cut out of the slab', () => {
    const throwing = Object.defineProperty({}, 'h', {
      enumerable: true,
      get: () => {
        throw new Error('getter bug');
      },
    }) as Record<string, string>;
    expect(() => encodePayload({ type: 0, id: 1, method: 'A.b', params: Buffer.alloc(20_000, 4), meta: { timeout: 5, headers: throwing } })).to.throw(/getter bug/);
    expect(roundTrip(Buffer.concat(([] as Uint8Array[]).concat(encodePayloadParts({ type: 1, id: 2, result: 'after' }))))).to.deep.equal({ type: 1, id: 2, result: 'after' });
  });

  it('writes a request without meta as a 4-element array', () => {
    expect(Buffer.from(encodePayload({ type: 0, id: 1, method: 'A.b', params: 1 })).toString('hex')).to.equal('940001a3412e6201');
  });

  it('writes the smallest integer forms for ids', () => {
    expect(Buffer.from(encodePayload({ type: 1, id: 200, result: null })).toString('hex')).to.equal('9401ccc8c0c0');
    expect(Buffer.from(encodePayload({ type: 1, id: 4294967295, result: null })).toString('hex')).to.equal('9401ceffffffffc0c0');
  });

  it('writes integers as integers, never as floats', () => {
    expect(Buffer.from(encodePayload({ type: 1, id: 1, result: -5 })).toString('hex')).to.equal('940101c0fb');
    expect(Buffer.from(encodePayload({ type: 1, id: 1, result: -40000 })).toString('hex')).to.equal('940101c0d2ffff63c0');
  });

  it('keeps earlier payloads intact while later ones fill new slabs', () => {
    const first = encodePayload({ type: 1, id: 1, result: 'first' });
    const copy = Buffer.from(first);
    for (let i = 0; i < 2000; i++) encodePayload({ type: 1, id: i, result: 'z'.repeat(100) });
    expect(Buffer.from(first)).to.deep.equal(copy);
  });

  it('matches encodeMessage, which frames the same payload', () => {
    const message = { type: 0 as const, id: 9, method: 'A.b', params: { x: 1 } };
    expect(encodeMessage(message).subarray(4)).to.deep.equal(Buffer.from(encodePayload(message)));
  });
});

describe('lastFlatPayloadItems', () => {
  it('counts exactly the values the scan counts, and the depth the scan allows at the least', () => {
    let flat = 0;
    for (const value of VALUES) {
      for (const message of [
        { type: 0 as const, id: 70_000, method: 'Svc.do', params: value, meta: { timeout: 30_000 } },
        { type: 0 as const, id: 1, method: 'Svc.do', params: value, meta: { timeout: 1, headers: { h: 'v' } } },
        { type: 1 as const, id: 3, result: value },
        { type: 4 as const, id: 3, message: value },
      ]) {
        const payload = encodePayload(message);
        const items = lastFlatPayloadItems();
        if (items < 0) continue;
        flat++;
        const depth = lastFlatPayloadDepth();
        expect(scanMessagePack(payload, { maxDepth: depth, maxItemsPerFrame: items }), JSON.stringify(message)).to.equal(items);
        if (depth > 2) expect(() => scanMessagePack(payload, { maxDepth: depth - 1, maxItemsPerFrame: items })).to.throw(/maxDepth/);
      }
    }
    expect(flat).to.be.greaterThan(150);
  });

  it('is -1 once any value went through msgpackr, and for messages the envelope does not write', () => {
    encodePayload({ type: 1, id: 3, result: { a: 1, list: [1] } });
    expect(lastFlatPayloadItems()).to.equal(-1);
    encodePayload({ type: 1, id: 3, result: { a: 1, n: 2 ** 40 } });
    expect(lastFlatPayloadItems()).to.equal(-1);
    encodePayload({ type: 0, id: 1, method: 'Svc.do', params: 1, meta: { headers: { h: 'v' } } });
    expect([lastFlatPayloadItems(), lastFlatPayloadDepth()]).to.deep.equal([10, 3]);
    encodePayload({ type: 1, id: 3, result: 1 });
    expect([lastFlatPayloadItems(), lastFlatPayloadDepth()]).to.deep.equal([5, 2]);
    encodePayload({ type: 3, id: 3 });
    expect(lastFlatPayloadItems()).to.equal(-1);
  });
});

describe('plain objects written by the envelope', () => {
  const decoded = (result: unknown): unknown => (roundTrip(encodePayload({ type: 1, id: 1, result })) as { result: unknown }).result;

  it('round-trip every scalar kind, with undefined keys left out and key order kept', () => {
    const value = { z: 1, s: 'text', u: undefined, n: null, t: true, f: -2.5, neg: -70_000, b: Buffer.from([1, 2]), e: '' };
    expect(decoded(value)).to.deep.equal({ z: 1, s: 'text', n: null, t: true, f: -2.5, neg: -70_000, b: Buffer.from([1, 2]), e: '' });
    expect(lastFlatPayloadItems()).to.equal(4 + 1 + 2 * 8);
    // A 64-bit integer is msgpackr's to write: the message is then scanned before it is sent.
    expect(decoded({ ...value, big: 2 ** 33 })).to.deep.include({ big: 2 ** 33, s: 'text' });
    expect(lastFlatPayloadItems()).to.equal(-1);
    expect(Object.keys(decoded({ b: 1, a: 2, 10: 3, 2: 4 }) as object)).to.deep.equal(['2', '10', 'b', 'a']);
  });

  it('use a 16-bit map header from 16 keys, and leave objects of more than 32 keys to msgpackr', () => {
    for (const size of [15, 16, 31, 32, 33, 40]) {
      const value = Object.fromEntries(Array.from({ length: size }, (_, i) => [`key${i}`, i]));
      expect(decoded(value)).to.deep.equal(value);
      expect(lastFlatPayloadItems()).to.equal(size <= 32 ? 5 + 2 * size : -1);
    }
  });

  it('keep their headers right across slab ends, and rewind cleanly for a nested value or a large byte array met late', () => {
    let seed = 11;
    const next = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
    for (let i = 0; i < 2000; i++) {
      const keys = 1 + (next() % 20);
      const value: Record<string, unknown> = {};
      for (let k = 0; k < keys; k++) value[`k${k}`] = k % 3 === 0 ? 'v'.repeat(next() % 4000) : k;
      const late = i % 3;
      if (late === 1) value.nested = { x: [i] };
      if (late === 2) value.large = Buffer.alloc(17_000, i & 0xff);
      const back = roundTrip(Buffer.concat(([] as Uint8Array[]).concat(encodePayloadParts({ type: 1, id: i + 1, result: value }))));
      expect(back).to.deep.equal({ type: 1, id: i + 1, result: value });
      expect(lastFlatPayloadItems()).to.equal(late === 0 ? 5 + 2 * keys : -1);
    }
  });

  it('read each property once, so a getter that changes its answer cannot break the map header', () => {
    let reads = 0;
    const value = Object.defineProperty({ a: 1 }, 'flaky', { enumerable: true, get: () => (reads++ === 0 ? 'first' : undefined) });
    expect(decoded(value)).to.deep.equal({ a: 1, flaky: 'first' });
    expect(reads).to.equal(1);
    // Seen holding an object, the whole object goes to msgpackr, which reads it again: a well-formed frame still.
    let nested = 0;
    const turning = Object.defineProperty({ a: 1 }, 'turns', { enumerable: true, get: () => (nested++ === 0 ? { deep: true } : 'flat') });
    expect(decoded(turning)).to.have.keys('a', 'turns');
  });

  it('leave class instances, null-prototype objects with nested values and symbol keys to the same rules as msgpackr', () => {
    class Point {
      constructor(public x: number, public y: number) {}
    }
    expect(decoded(new Point(1, 2))).to.deep.equal({ x: 1, y: 2 });
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, inner: { b: 2 } });
    expect(decoded(bare)).to.deep.equal({ a: 1, inner: { b: 2 } });
    expect(decoded({ a: 1, [Symbol('hidden')]: 2 })).to.deep.equal({ a: 1 });
  });
});
