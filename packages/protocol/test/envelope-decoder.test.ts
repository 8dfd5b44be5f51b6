import { expect } from 'chai';
import { type RpcError } from '@tunnelrpc/protocol';
import { DEFAULT_DECODE_LIMITS, decodeFrame, decodeMessage, encodePayload, type Message } from '@tunnelrpc/protocol/internal';
import { hex, fixstr, toHex } from '@tunnelrpc/test-kit';

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
});
