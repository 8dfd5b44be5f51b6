import { expect } from 'chai';
import { type RpcError } from '@tunnelrpc/protocol';
import { DEFAULT_DECODE_LIMITS, decodeFrame, decodeMessage, encodePayload, type Message } from '@tunnelrpc/protocol/internal';
import { hex, fixstr, toHex } from '@tunnelrpc/test-kit';
import { Packr } from 'msgpackr';

// Decodes `payload` where it lies inside a larger buffer, between bytes that are not MessagePack (0xc1), so that a
// decoder reading past its range or from offset 0 fails.
function decodeInPlace(payload: Uint8Array): Message {
  const buffer = Buffer.concat([Buffer.alloc(7, 0xc1), payload, Buffer.alloc(5, 0xc1)]);
  return decodeFrame(buffer, 7, 7 + payload.length, DEFAULT_DECODE_LIMITS);
}

// What a decode says of a payload: the message, or the error's code and message.
function outcome(decode: () => Message): unknown {
  try {
    return decode();
  } catch (error) {
    return `${(error as RpcError).code}: ${(error as RpcError).message}`;
  }
}

const METHOD = fixstr('Echo.echo');

describe('decodeFrame (in place, with the hand-read envelope)', () => {
  const messages: Message[] = [];
  for (const id of [0, 1, 127, 128, 255, 256, 65_535, 65_536, 0xffff_ffff]) {
    messages.push({ type: 0, id, method: 'Echo.echo', params: { a: 1, b: 'x' } });
    messages.push({ type: 1, id, result: [1, 'two', null] });
    messages.push({ type: 4, id, message: 'tick' });
  }
  for (const timeout of [0, 5, 127, 128, 30_000, 70_000, 0xffff_ffff]) {
    messages.push({ type: 0, id: 9, method: 'Echo.echo', params: null, meta: { timeout } });
  }
  messages.push({ type: 0, id: 3, method: 'Echo.echo', params: 1, meta: { timeout: 10, headers: { authorization: 'Bearer t' } } });
  messages.push({ type: 0, id: 3, method: 'Échec.ü', params: 'non-ASCII method names take the general path' });
  messages.push({ type: 0, id: 3, method: 'A'.repeat(40), params: true });
  for (const value of [0, 1, 127, -1, -32, -33, 255, 1.5, true, false, null, '', 'é', new Uint8Array([1, 2, 3]), new Date(0), { nested: { deep: [1] } }]) {
    messages.push({ type: 1, id: 4, result: value });
    messages.push({ type: 0, id: 4, method: 'Echo.echo', params: value, meta: { timeout: 1 } });
  }
  messages.push({ type: 1, id: 5, error: { code: 'NOT_FOUND', message: 'no such thing' }, result: undefined });
  messages.push({ type: 3, id: 6 });
  messages.push({ type: 9, id: 6, n: 8, maxMessageSize: 1024 });
  messages.push({ type: 2, method: 'Echo.note', params: [1] });

  it('reads every message as decodeMessage reads the same bytes alone, and as it was sent', () => {
    for (const message of messages) {
      const payload = encodePayload(message);
      const alone = decodeMessage(payload);
      expect(decodeInPlace(payload), toHex(payload)).to.deep.equal(alone);
      if (message.type !== 1 || message.error === undefined) expect(alone, toHex(payload)).to.deep.equal(message);
    }
  });

  it('reads the forms an encoder may choose that the hand reader leaves to msgpackr', () => {
    const cases: [string, Message][] = [
      // id as uint64 and as float64 1.0
      ['94 00 cf 00 00 00 00 00 00 00 07' + toHex(METHOD) + 'c0', { type: 0, id: 7, method: 'Echo.echo', params: null }],
      ['94 01 cb 3f f0 00 00 00 00 00 00 c0 01', { type: 1, id: 1, result: 1 }],
      // method as str16
      ['94 00 01 da 00 09' + toHex(METHOD).slice(3) + 'c0', { type: 0, id: 1, method: 'Echo.echo', params: null }],
      // meta nil, meta {}, meta {timeout: 2} with timeout as uint64
      ['95 00 01' + toHex(METHOD) + '01 c0', { type: 0, id: 1, method: 'Echo.echo', params: 1 }],
      ['95 00 01' + toHex(METHOD) + '01 80', { type: 0, id: 1, method: 'Echo.echo', params: 1, meta: {} }],
      ['95 00 01' + toHex(METHOD) + '01 81 a7 74 69 6d 65 6f 75 74 cf 00 00 00 00 00 00 00 02', { type: 0, id: 1, method: 'Echo.echo', params: 1, meta: { timeout: 2 } }],
      // a response with an explicit nil error and a nil result
      ['94 01 02 c0 c0', { type: 1, id: 2, result: null }],
    ];
    for (const [bytes, expected] of cases) {
      expect(decodeInPlace(hex(bytes)), bytes).to.deep.equal(expected);
      expect(decodeMessage(hex(bytes)), bytes).to.deep.equal(expected);
    }
  });

  it('refuses what decodeMessage refuses, with the same words', () => {
    const refused = [
      '95 00 01' + toHex(METHOD) + '01 81 a7 74 69 6d 65 6f 75 74 ff', // timeout -1
      '95 00 01' + toHex(METHOD) + '01 81 a7 74 69 6d 65 6f 75 74 cb 3f f8 00 00 00 00 00 00', // timeout 1.5
      '95 00 01' + toHex(METHOD) + '01 01', // meta not a map
      '94 00 01 05 c0', // method not a string
      '94 00 ff' + toHex(METHOD) + 'c0', // id -1
      '93 01 01 c0', // response of 3 elements
      '94 04 01 c0 c0', // stream message of 4 elements
      '96 00 01' + toHex(METHOD) + 'c0 c0 c0', // request of 6 elements
      '94 01 01 a1 61 c0', // error not a map
    ];
    for (const bytes of refused) {
      const alone = outcome(() => decodeMessage(hex(bytes)));
      expect(alone, bytes).to.be.a('string').and.match(/^INTERNAL: protocol violation/);
      expect(outcome(() => decodeInPlace(hex(bytes))), bytes).to.equal(alone);
    }
  });

  it('keeps method names apart when more of them arrive than its cache holds', () => {
    const names = Array.from({ length: 2000 }, (_, i) => `Svc${i % 7}.m${i}`);
    for (let round = 0; round < 2; round++) {
      for (const method of names) {
        const payload = encodePayload({ type: 0, id: 1, method, params: null });
        expect((decodeInPlace(payload) as { method: string }).method).to.equal(method);
      }
    }
  });

  describe('small maps of scalars, read by hand', () => {
    // msgpackr's own forms (uint16 and the like), not the envelope's: the hand reader must agree with msgpackr on
    // everything any encoder may send.
    const packr = new Packr({ useRecords: false, variableMapSize: true });
    const asResult = (map: unknown): Uint8Array => packr.pack([1, 7, null, map]);

    it('agree with msgpackr on every value form, key order and duplicate key', () => {
      const values = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 0xffff_ffff, -1, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31), 1.5, -0.25, NaN, true, false, null, '', 'a', 'x'.repeat(8), 'x'.repeat(9), 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(255), 'é', 'ascii then é'];
      let seed = 5;
      const next = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
      for (let i = 0; i < 3000; i++) {
        const map: Record<string, unknown> = {};
        const size = next() % 16;
        for (let k = 0; k < size; k++) map[['a', 'b', 'key', 'name', 'x'.repeat(20), 'ü', '1'][next() % 7]!] = values[next() % values.length];
        const payload = asResult(map);
        expect(decodeInPlace(payload), toHex(payload)).to.deep.equal(decodeMessage(payload));
      }
      // A duplicate key: the later value wins, in the first key's place, as msgpackr assigns them.
      const duplicate = hex('94 01 07 c0 83 a1 61 01 a1 62 02 a1 61 03');
      expect(decodeInPlace(duplicate)).to.deep.equal(decodeMessage(duplicate));
      expect(Object.keys((decodeInPlace(duplicate) as { result: object }).result)).to.deep.equal(['a', 'b']);
    });

    it('rename a "__proto__" key as msgpackr does, so that a map never sets its object\'s prototype', () => {
      const payload = hex('94 01 07 c0 82 a9' + toHex(Buffer.from('__proto__')) + '81 a1 70 01 a1 61 02');
      const nested = decodeInPlace(payload);
      expect(nested).to.deep.equal(decodeMessage(payload));
      const flat = hex('94 01 07 c0 82 a9' + toHex(Buffer.from('__proto__')) + 'a1 70 a1 61 02');
      const result = (decodeInPlace(flat) as { result: Record<string, unknown> }).result;
      expect(result).to.deep.equal((decodeMessage(flat) as { result: unknown }).result);
      expect(Object.getPrototypeOf(result)).to.equal(Object.prototype);
      expect(result.__proto_).to.equal('p');
    });

    it('leave every other map to msgpackr, with the same result', () => {
      const others = [
        { nested: { deep: 1 } }, { list: [1] }, { big: 2 ** 40 }, { neg: -(2 ** 40) }, { when: new Date(5) }, { bytes: Buffer.from([1]) },
        { ['k'.repeat(40)]: 1 }, { é: 1 }, Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])),
      ];
      for (const map of others) {
        const payload = asResult(map);
        expect(decodeInPlace(payload), toHex(payload)).to.deep.equal(decodeMessage(payload));
      }
      // float 32, and a key that is an integer.
      for (const bytes of ['94 01 07 c0 81 a1 66 ca 3f c0 00 00', '94 01 07 c0 81 01 a1 61']) {
        expect(decodeInPlace(hex(bytes)), bytes).to.deep.equal(decodeMessage(hex(bytes)));
      }
    });
  });
});
