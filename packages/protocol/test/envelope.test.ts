import { expect } from 'chai';
import { decodeMessage, encodeMessage, encodePayload, lastPayloadIsFlat, scanMessagePack, DEFAULT_DECODE_LIMITS, FLAT_MAX_ITEMS } from '@tunnelrpc/protocol/internal';

// The hand-written request/response encoder must give what msgpackr's decoder reads back as the same value.
const VALUES: unknown[] = [
  null, undefined, true, false, 0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, -1, -32, -33, -128,
  -129, -32768, -32769, -2147483648, -2147483649, 2 ** 53 - 1, -(2 ** 53) + 1, 1.5, -0.25, Number.MAX_VALUE, NaN, Infinity,
  '', 'a', 'x'.repeat(31), 'x'.repeat(32), 'é'.repeat(11), 'é'.repeat(16), '日本語テキスト', 'x'.repeat(255), 'x'.repeat(256),
  'y'.repeat(70_000), '😀'.repeat(10), Buffer.alloc(0), Buffer.from([1, 2, 3]), new Uint8Array(300).fill(9), Buffer.alloc(70_000, 7),
  [1, 'two', null], { a: 1, b: [true, { c: 'd' }] }, new Date(1_700_000_000_123), [Buffer.from([5])],
];

function roundTrip(payload: Uint8Array): unknown {
  scanMessagePack(payload, DEFAULT_DECODE_LIMITS);
  return decodeMessage(payload);
}

describe('encodePayload (hand-written envelope)', () => {
  for (const value of VALUES) {
    const label = Buffer.isBuffer(value) || value instanceof Uint8Array ? `bytes(${value.length})` : typeof value === 'string' ? `string(${value.length})` : String(value);
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

describe('lastPayloadIsFlat', () => {
  // Limits a flat message must always pass: nesting 2 (the least maxDepth allows) and FLAT_MAX_ITEMS values.
  const TIGHT = { maxDepth: 2, maxItemsPerFrame: FLAT_MAX_ITEMS };

  it('is true only for messages that pass the tightest depth and the FLAT_MAX_ITEMS item cap', () => {
    let flat = 0;
    for (const value of VALUES) {
      for (const message of [
        { type: 0 as const, id: 70_000, method: 'Svc.do', params: value, meta: { timeout: 30_000 } },
        { type: 0 as const, id: 1, method: 'Svc.do', params: value, meta: { timeout: 1, headers: { h: 'v' } } },
        { type: 1 as const, id: 3, result: value },
        { type: 4 as const, id: 3, message: value },
      ]) {
        const payload = encodePayload(message);
        if (!lastPayloadIsFlat()) continue;
        flat++;
        expect(() => scanMessagePack(payload, TIGHT), JSON.stringify(message)).to.not.throw();
      }
    }
    expect(flat).to.be.greaterThan(100);
  });

  it('is false once any value went through msgpackr, and for messages the envelope does not write', () => {
    encodePayload({ type: 1, id: 3, result: { a: 1 } });
    expect(lastPayloadIsFlat()).to.equal(false);
    encodePayload({ type: 0, id: 1, method: 'Svc.do', params: 1, meta: { headers: { h: 'v' } } });
    expect(lastPayloadIsFlat()).to.equal(false);
    encodePayload({ type: 1, id: 3, result: 1 });
    expect(lastPayloadIsFlat()).to.equal(true);
    encodePayload({ type: 3, id: 3 });
    expect(lastPayloadIsFlat()).to.equal(false);
  });
});
