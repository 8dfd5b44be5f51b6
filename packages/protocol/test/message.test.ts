import { expect } from 'chai';
import { escapePeerText } from '@tunnelrpc/protocol';
import {
  DEFAULT_DECODE_LIMITS,
  MAX_PING_DATA_BYTES,
  MessageType,
  encodePongPayload,
  decodeMessage,
  encodeMessage,
  isPlainMap,
  scanMessagePack,
  type Message,
  type RequestMessage,
} from '@tunnelrpc/protocol/internal';
import { expectThrows, fixstr, hex, repeat, toHex } from '@tunnelrpc/test-kit';

/** roundTrip encodes a message to a frame and decodes the frame's payload (the bytes after the 4-byte length). */
function roundTrip(message: Message): Message {
  const frame = encodeMessage(message);
  expect(frame.readUInt32BE(0)).to.equal(frame.length - 4);
  return decodeMessage(frame.subarray(4));
}

/** expectMalformed asserts that decodeMessage refuses `payload` as a protocol violation containing `fragment`. */
function expectMalformed(payload: Buffer, fragment: string): void {
  const error = expectThrows(() => decodeMessage(payload), 'INTERNAL', 'protocol violation: ');
  expect(error.message, toHex(payload)).to.include(fragment);
}

/** polluted reads the property a prototype-pollution attack would set on every object. */
function polluted(): unknown {
  return ({} as Record<string, unknown>)['polluted'];
}

// Fields reused in literal messages below.
const METHOD = fixstr('Echo.echo'); // a9 45 63 68 6f 2e 65 63 68 6f
const TIMEOUT = fixstr('timeout'); //  a7 74 69 6d 65 6f 75 74
const HEADERS = fixstr('headers'); //  a7 68 65 61 64 65 72 73
const CODE = fixstr('code'); //        a4 63 6f 64 65
const MESSAGE = fixstr('message'); //  a7 6d 65 73 73 61 67 65

describe('MessageType', () => {
  it('numbers the message types as wire-v1 does, with 4, 5 and 9 for streams', () => {
    expect(MessageType).to.deep.equal({ Request: 0, Response: 1, Notification: 2, Cancel: 3, StreamMessage: 4, HalfClose: 5, Ping: 6, Pong: 7, Goaway: 8, Credit: 9 });
  });
});

describe('encodeMessage', () => {
  it('returns the whole frame: the 4-byte length, then the message array', () => {
    const frame = encodeMessage({ type: 0, id: 7, method: 'Echo.echo', params: [64] });
    expect(toHex(frame)).to.equal(toHex(Buffer.concat([
      hex('00 00 00 0f'), //    length 15
      hex('94 00 07'), //       array of 4: type 0 (request), id 7
      METHOD, //                method "Echo.echo"
      hex('91 40'), //          params [64]
    ])));
  });

  it('writes a request without meta as 4 elements and with meta as 5', () => {
    const without = encodeMessage({ type: 0, id: 1, method: 'E', params: null });
    const withMeta = encodeMessage({ type: 0, id: 1, method: 'E', params: null, meta: { timeout: 5 } });
    expect(without[4]).to.equal(0x94);
    expect(withMeta[4]).to.equal(0x95);
  });

  it('writes the stream messages byte for byte (PROTOCOL.md 12)', () => {
    expect(toHex(encodeMessage({ type: 4, id: 1, message: 2 }))).to.equal(toHex(hex(
      '00 00 00 04' + // length 4
      '93 04 01' + //    array of 3: type 4 (stream message), id 1
      '02', //           message: 2
    )));
    expect(toHex(encodeMessage({ type: 5, id: 1 }))).to.equal('00 00 00 03 92 05 01'); // [5, 1] half-close
    expect(toHex(encodeMessage({ type: 9, id: 1, n: 16 }))).to.equal('00 00 00 04 93 09 01 10'); // [9, 1, 16]
    expect(toHex(encodeMessage({ type: 9, id: 1, n: 32, maxMessageSize: 131072 }))).to.equal(toHex(hex(
      '00 00 00 09' + //    length 9
      '94 09 01 20' + //    array of 4: type 9 (credit), id 1, n 32
      'ce 00 02 00 00', //  maxMessageSize 131072
    )));
  });

  it('round-trips stream messages, half-closes, credit and the stream opening meta', () => {
    const messages: Message[] = [
      { type: 4, id: 7, message: { a: [1, 'x'] } },
      { type: 5, id: 7 },
      { type: 9, id: 7, n: 0x7fff_ffff },
      { type: 9, id: 7, n: 1, maxMessageSize: 0xffff_ffff },
      { type: 0, id: 7, method: 'Echo.ticks', params: { n: 3 }, meta: { credit: 0, maxMessageSize: 1 } },
      { type: 0, id: 7, method: 'Echo.ticks', params: { n: 3 }, meta: { timeout: 5, credit: 32, maxMessageSize: 131072 } },
    ];
    for (const message of messages) expect(roundTrip(message)).to.deep.equal(message);
  });

  it('refuses an opening meta.credit outside 0 … 2^31-1 and a maxMessageSize of 0', () => {
    const open = (meta: unknown): Buffer => encodeMessage({ type: 0, id: 1, method: 'E', params: null, meta: meta as never }).subarray(4);
    expectMalformed(open({ credit: -1 }), 'meta.credit must be an integer from 0 to 2147483647');
    expectMalformed(open({ credit: 0x8000_0000 }), 'meta.credit must be');
    expectMalformed(open({ credit: 1, maxMessageSize: 0 }), 'meta.maxMessageSize must be an integer from 1');
  });

  it('writes a successful response as [1, id, nil, result]', () => {
    expect(toHex(encodeMessage({ type: 1, id: 1, result: 5 }).subarray(4))).to.equal('94 01 01 c0 05');
  });

  it('writes an error response with a nil result, whatever result holds', () => {
    const frame = encodeMessage({ type: 1, id: 1, error: { code: 'INTERNAL', message: 'x' }, result: 'ignored' });
    const payload = frame.subarray(4);
    expect(payload[payload.length - 1]).to.equal(0xc0);
    expect(decodeMessage(payload)).to.deep.equal({ type: 1, id: 1, error: { code: 'INTERNAL', message: 'x' }, result: undefined });
  });

  it('writes undefined as nil (c0)', () => {
    expect(toHex(encodeMessage({ type: 6, data: undefined }))).to.equal(toHex(hex(
      '00 00 00 03' + // length 3
      '92 06' + //       array of 2: type 6 (ping)
      'c0', //           data: nil
    )));
  });

  it('leaves out object properties holding undefined and writes undefined array elements as nil, never as the 0x00 extension', () => {
    const payload = encodeMessage({ type: 6, data: { a: undefined, b: [undefined], c: 1 } }).subarray(4);
    expect(() => scanMessagePack(payload, DEFAULT_DECODE_LIMITS)).to.not.throw();
    expect(decodeMessage(payload)).to.deep.equal({ type: 6, data: { b: [null], c: 1 } });
  });

  it('leaves out undefined properties of request params and results, which the envelope encoder writes', () => {
    const request = encodeMessage({ type: 0, id: 1, method: 'Echo.echo', params: { cursor: undefined, customerId: 'cus_1' } });
    expect(toHex(request.subarray(4))).to.equal(toHex(hex(
      '94 00 01' + //          request, id 1
      toHex(METHOD) + //       "Echo.echo"
      '81' + toHex(fixstr('customerId')) + toHex(fixstr('cus_1')), // { customerId: "cus_1" }: no cursor key
    )));
    const response = encodeMessage({ type: 1, id: 1, result: { note: undefined } }).subarray(4);
    expect(toHex(response)).to.equal('94 01 01 c0 80'); // [1, 1, nil, {}]
  });

  it('writes only standard MessagePack for Set, Map, Error, RegExp, typed arrays, Date, bigint and class instances', () => {
    class Point {
      constructor(readonly x: number, readonly y: number) {}
    }
    const values: Record<string, unknown> = {
      set: new Set([1, 2]),
      map: new Map([['a', 1]]),
      error: new Error('boom'),
      regexp: /a+/g,
      instance: new Point(1, 2),
      float64: new Float64Array([1.5]),
      bytes: new Uint8Array([1, 2]),
      date: new Date(1_000),
      dateMs: new Date(1_500),
      bigint: 2n ** 63n,
      nullProto: Object.create(null) as object,
      boxed: new String('x'),
      nan: Number.NaN,
    };
    for (const [name, value] of Object.entries(values)) {
      const payload = encodeMessage({ type: 6, data: value }).subarray(4);
      expect(() => scanMessagePack(payload, DEFAULT_DECODE_LIMITS), name).to.not.throw();
      expect(() => decodeMessage(payload), name).to.not.throw();
    }
  });

  it('writes a Date as timestamp 32, 64 or 96, the smallest that holds it', () => {
    const ping = (date: Date): string => toHex(encodeMessage({ type: 6, data: date }).subarray(6)); // after 92 06
    expect(ping(new Date(1_700_000_000_000))).to.equal('d6 ff 65 53 f1 00');
    expect(ping(new Date(1_700_000_000_123))).to.equal('d7 ff 1d 53 53 00 65 53 f1 00');
    expect(ping(new Date(-1_000))).to.equal('c7 0c ff 00 00 00 00 ff ff ff ff ff ff ff ff');
  });

  it('encodes a class instance as a map of its own fields', () => {
    class Point {
      constructor(readonly x: number, readonly y: number) {}
    }
    expect(roundTrip({ type: 6, data: new Point(1, 2) })).to.deep.equal({ type: 6, data: { x: 1, y: 2 } });
  });

  it('throws for a value MessagePack cannot hold (a symbol, a bigint over 64 bits)', () => {
    expect(() => encodeMessage({ type: 6, data: Symbol('s') })).to.throw();
    expect(() => encodeMessage({ type: 6, data: 2n ** 70n })).to.throw();
  });

  it('writes bigints from -2^63 to 2^64-1 as MessagePack integers', () => {
    expect(toHex(encodeMessage({ type: 6, data: 5n }).subarray(6))).to.equal('d3 00 00 00 00 00 00 00 05');
    expect(toHex(encodeMessage({ type: 6, data: -(2n ** 63n) }).subarray(6))).to.equal('d3 80 00 00 00 00 00 00 00');
    expect(toHex(encodeMessage({ type: 6, data: 2n ** 64n - 1n }).subarray(6))).to.equal('cf ff ff ff ff ff ff ff ff');
  });

  it('refuses a bigint beyond 64 bits with INVALID_ARGUMENT saying how to send it instead', () => {
    for (const big of [2n ** 64n, -(2n ** 63n) - 1n]) {
      for (const message of [
        { type: 6, data: { n: big } },
        { type: 0, id: 1, method: 'Echo.echo', params: { n: big } },
        { type: 1, id: 1, result: [big] },
      ] as Message[]) {
        const error = expectThrows(() => encodeMessage(message), 'INVALID_ARGUMENT', 'outside -2^63 … 2^64-1');
        expect(error.message).to.include('send it as a string');
      }
    }
  });
});

describe('decodeMessage', () => {
  describe('round trips', () => {
    const messages: [string, Message][] = [
      ['a request without meta', { type: 0, id: 1, method: 'Echo.echo', params: { a: [1, 'x', true, null, 1.5] } }],
      ['a request with meta', {
        type: 0, id: 4294967295, method: 'billing.Invoices.get', params: [{ n: -3 }],
        meta: { timeout: 1500, headers: { authorization: 'Bearer t', 'x-trace': 'abc' } },
      }],
      ['a request with id 0 and a timeout of 0', { type: 0, id: 0, method: 'E.e', params: null, meta: { timeout: 0 } }],
      ['a successful response', { type: 1, id: 2, result: { ok: true, list: [1, 2, 3] } }],
      ['an error response with data', {
        type: 1, id: 3, result: undefined,
        error: { code: 'INVALID_ARGUMENT', message: 'bad params', data: { issues: [{ path: ['a'], code: 'invalid_type' }] } },
      }],
      ['an error response without data', { type: 1, id: 3, result: undefined, error: { code: 'NOT_FOUND', message: 'no' } }],
      ['a notification without meta', { type: 2, method: 'Log.write', params: ['line'] }],
      ['a notification with meta', { type: 2, method: 'Log.write', params: ['line'], meta: { headers: { 'x-trace': '1' } } }],
      ['a cancel', { type: 3, id: 99 }],
      ['a ping', { type: 6, data: { n: 1 } }],
      ['a pong', { type: 7, data: 'same data' }],
      ['a goaway', { type: 8, lastId: 12, code: 'UNAVAILABLE', message: 'server draining' }],
    ];
    for (const [name, message] of messages) {
      it(`round-trips ${name}`, () => {
        expect(roundTrip(message)).to.deep.equal(message);
      });
    }

    it('gives meta.headers no prototype', () => {
      const decoded = roundTrip({ type: 0, id: 1, method: 'E.e', params: null, meta: { headers: { a: 'b' } } }) as RequestMessage;
      expect(Object.getPrototypeOf(decoded.meta?.headers)).to.equal(null);
    });

    it('decodes a successful response with an undefined result as null (MessagePack has one nil)', () => {
      expect(roundTrip({ type: 1, id: 1, result: undefined })).to.deep.equal({ type: 1, id: 1, result: null });
    });
  });

  describe('literal frames', () => {
    it('decodes a request with meta.timeout', () => {
      const payload = Buffer.concat([
        hex('95 00 07'), //  array of 5: type 0 (request), id 7
        METHOD, //           method "Echo.echo"
        hex('91 40'), //     params [64]
        hex('81'), //        meta: map of 1
        TIMEOUT, //          "timeout"
        hex('cd 03 e8'), //  1000 (uint16)
      ]);
      expect(decodeMessage(payload)).to.deep.equal({ type: 0, id: 7, method: 'Echo.echo', params: [64], meta: { timeout: 1000 } });
    });

    it('treats a nil meta as no meta', () => {
      const decoded = decodeMessage(Buffer.concat([hex('95 00 01'), METHOD, hex('c0 c0')])); // params nil, meta nil
      expect(decoded).to.deep.equal({ type: 0, id: 1, method: 'Echo.echo', params: null });
      expect(decoded).to.not.have.property('meta');
    });

    it('treats a nil meta.timeout and nil meta.headers as absent', () => {
      const payload = Buffer.concat([hex('95 00 01'), METHOD, hex('c0 82'), TIMEOUT, hex('c0'), HEADERS, hex('c0')]);
      expect(decodeMessage(payload)).to.deep.equal({ type: 0, id: 1, method: 'Echo.echo', params: null, meta: {} });
    });

    it('decodes a valid timestamp (d6 ff <u32>) as a Date', () => {
      const decoded = decodeMessage(hex(
        '92 06' + //       ping
        'd6 ff 00 00 00 01', // timestamp 32: 1 second after the epoch
      ));
      expect(decoded.type).to.equal(6);
      const data = (decoded as { data: unknown }).data;
      expect(data).to.be.instanceOf(Date);
      expect((data as Date).getTime()).to.equal(1000);
    });

    it('decodes the three timestamp examples of PROTOCOL.md 4.6', () => {
      const examples: [string, string][] = [
        ['d6 ff 65 53 f1 00', '2023-11-14T22:13:20.000Z'], //                        timestamp 32, seconds 1700000000
        ['d7 ff 1d 53 53 00 65 53 f1 00', '2023-11-14T22:13:20.123Z'], //            timestamp 64, 123000000 ns
        ['c7 0c ff 00 00 00 00 ff ff ff ff ff ff ff ff', '1969-12-31T23:59:59.000Z'], // timestamp 96, seconds -1
      ];
      for (const [bytes, iso] of examples) {
        const decoded = decodeMessage(hex(`92 06 ${bytes}`)) as { data: Date };
        expect(decoded.data, bytes).to.be.instanceOf(Date);
        expect(decoded.data.toISOString(), bytes).to.equal(iso);
      }
    });

    it('decodes integers up to 2^53 as numbers and larger uint64 values as bigint', () => {
      expect(decodeMessage(hex('92 06 cf 00 00 00 00 00 00 00 05'))).to.deep.equal({ type: 6, data: 5 });
      expect(decodeMessage(hex('92 06 cf ff ff ff ff ff ff ff ff'))).to.deep.equal({ type: 6, data: 18446744073709551615n });
    });

    it('copies bin values, so reusing the frame buffer does not change decoded params', () => {
      const payload = hex('92 06 c4 03 01 02 03'); // ping, bin8 of 3 bytes
      const decoded = decodeMessage(payload) as { data: Uint8Array };
      payload.fill(0x41);
      expect(toHex(decoded.data)).to.equal('01 02 03');
    });

    it('accepts params nested so that the message reaches maxDepth (32) and refuses one level more', () => {
      const head = Buffer.concat([hex('94 00 01'), METHOD]); // the message array is level 1
      expect(() => decodeMessage(Buffer.concat([head, repeat(hex('91'), 31), hex('c0')]))).to.not.throw();
      const error = expectThrows(() => decodeMessage(Buffer.concat([head, repeat(hex('91'), 32), hex('c0')])), 'INTERNAL', 'maxDepth 32');
      expect(error.data).to.deep.equal({ maxDepth: 32 });
    });

    it('applies the limits it is given', () => {
      const sixItems = hex('92 06 93 01 02 03'); // ping [1, 2, 3]: 6 values
      expect(() => decodeMessage(sixItems, { ...DEFAULT_DECODE_LIMITS, maxItemsPerFrame: 6 })).to.not.throw();
      expect(() => decodeMessage(hex('92 06 91 91 c0'), { ...DEFAULT_DECODE_LIMITS, maxDepth: 3 })).to.not.throw(); // 3 levels
      const error = expectThrows(() => decodeMessage(sixItems, { ...DEFAULT_DECODE_LIMITS, maxItemsPerFrame: 5 }), 'RESOURCE_EXHAUSTED');
      expect(error.data).to.deep.equal({ maxItemsPerFrame: 5 });
      expectThrows(() => decodeMessage(hex('92 06 91 91 91 c0'), { ...DEFAULT_DECODE_LIMITS, maxDepth: 3 }), 'INTERNAL', 'maxDepth 3');
    });
  });

  describe('hostile payloads', () => {
    const hostile: [string, string, string][] = [
      ['truncated a5 61 62', 'a5 61 62', 'truncated'],
      ['trailing bytes 01 02 03', '01 02 03', 'left over'],
      ['c1 alone', 'c1', '0xc1'],
      ['c1 nested', '92 06 c1', '0xc1'],
      ['a record definition', '92 06 d4 72 40 91 a4 65 76 69 6c 01', 'extension type 114'],
      ['a structured-clone cycle', '92 06 d6 69 00 00 00 01 91 d6 70 00 00 00 01', 'extension type 105'],
      ['a RegExp extension', '92 06 d4 78 00', 'extension type 120'],
      ['a timestamp of bad length', '92 06 c7 03 ff 01 02 03', 'protocol violation'],
      ['an array as a map key', '92 06 81 91 01 02', 'map key'],
      ['dd ff ff ff ff', 'dd ff ff ff ff', 'declares more values'],
    ];
    for (const [name, input, fragment] of hostile) {
      it(`refuses ${name} before msgpackr runs`, () => {
        const error = expectThrows(() => decodeMessage(hex(input)), 'INTERNAL', fragment);
        expect(error.message).to.not.include('evil');
      });
    }

    it('refuses the million-empty-maps frame with RESOURCE_EXHAUSTED at the default limits', () => {
      const payload = Buffer.concat([hex('dd 00 0f ff fb'), repeat(hex('80'), 1_048_571)]);
      expectThrows(() => decodeMessage(payload), 'RESOURCE_EXHAUSTED', 'maxItemsPerFrame 262144');
    });

    it('wraps a msgpackr failure in a protocol violation that does not quote the peer bytes', () => {
      // A bin map key passes the scan (a scalar) but msgpackr cannot make it a property name.
      const payload = hex(
        '92 06' + //                ping
        '81 c4 05 65 76 69 6c 21' + // map of 1, key: bin8 "evil!"
        '01', //                     value 1
      );
      const error = expectThrows(() => decodeMessage(payload), 'INTERNAL', 'not a valid MessagePack value');
      expect(error.message).to.not.include('evil');
      expect(error.cause).to.equal(undefined);
    });

    it('keeps no state across frames: an honest frame after a refused record decodes as sent', () => {
      expectThrows(() => decodeMessage(hex('92 06 d4 72 40 91 a4 65 76 69 6c 01')), 'INTERNAL');
      const honest = Buffer.concat([hex('92 06 82 a2 69 64 01 a1 6e 40')]); // ping {id: 1, n: 64}
      expect(decodeMessage(honest)).to.deep.equal({ type: 6, data: { id: 1, n: 64 } });
    });

    it('does not let a __proto__ key change Object.prototype or the decoded object', () => {
      const payload = Buffer.concat([
        hex('94 00 01'), METHOD, //            request 1 "Echo.echo"
        hex('82'), //                          params: map of 2
        fixstr('__proto__'), //                   key "__proto__" (fixstr)
        hex('81'), fixstr('polluted'), hex('c3'), //   {polluted: true}
        hex('a1 61 01'), //                    a: 1
      ]);
      const decoded = decodeMessage(payload) as RequestMessage;
      expect(polluted()).to.equal(undefined);
      const params = decoded.params as Record<string, unknown>;
      expect(Object.getPrototypeOf(params)).to.equal(Object.prototype);
      expect(params['polluted']).to.equal(undefined);
      expect(params['a']).to.equal(1);
    });

    it('does not let a __proto__ key written as str8 change Object.prototype', () => {
      const payload = Buffer.concat([
        hex('92 06 81'), //                             ping, map of 1
        hex('d9 09'), Buffer.from('__proto__'), //      key "__proto__" as str8
        hex('81'), fixstr('polluted'), hex('c3'), //        {polluted: true}
      ]);
      const decoded = decodeMessage(payload) as { data: Record<string, unknown> };
      expect(polluted()).to.equal(undefined);
      expect(Object.getPrototypeOf(decoded.data)).to.equal(Object.prototype);
      expect(decoded.data['polluted']).to.equal(undefined);
    });

    it('does not let constructor.prototype keys change Object.prototype', () => {
      const payload = Buffer.concat([
        hex('92 06 81'), fixstr('constructor'), //       ping {constructor:
        hex('81'), fixstr('prototype'), //               {prototype:
        hex('81'), fixstr('polluted'), hex('c3'), //     {polluted: true}}}
      ]);
      decodeMessage(payload);
      expect(polluted()).to.equal(undefined);
    });

    it('does not let a __proto__ header change Object.prototype or the headers object', () => {
      const payload = Buffer.concat([
        hex('95 00 01'), METHOD, hex('c0'), //   request 1 "Echo.echo", params nil
        hex('81'), HEADERS, hex('81'), //        meta {headers: {
        fixstr('__proto__'), fixstr('x'), //           "__proto__": "x"}}
      ]);
      const decoded = decodeMessage(payload) as RequestMessage;
      expect(polluted()).to.equal(undefined);
      const headers = decoded.meta?.headers as Record<string, unknown>;
      expect(Object.getPrototypeOf(headers)).to.equal(null);
      expect(Object.values(headers)).to.deep.equal(['x']);
    });
  });

  describe('shape checks', () => {
    const request = (tail: string): Buffer => Buffer.concat([hex('95 00 01'), METHOD, hex('c0'), hex(tail)]);
    const malformed: [string, Buffer, string][] = [
      ['an empty array', hex('90'), 'non-empty array'],
      ['nil instead of an array', hex('c0'), 'non-empty array'],
      ['an integer instead of an array', hex('01'), 'non-empty array'],
      ['a map instead of an array', hex('81 a1 61 01'), 'non-empty array'],
      ['a string instead of an array', hex('a1 61'), 'non-empty array'],
      ['unknown type 10', hex('92 0a 01'), 'unknown message type'],
      ['type -1', hex('92 ff 01'), 'unknown message type'],
      ['type "0" as a string', hex('94 a1 30 01 a1 45 c0'), 'unknown message type'],
      ['a stream message of 2 elements', hex('92 04 01'), 'stream message [4, id, message] has 2 elements'],
      ['a stream message of 4 elements', hex('94 04 01 c0 c0'), 'has 4 elements'],
      ['a half-close of 3 elements', hex('93 05 01 01'), 'half-close [5, id] has 3 elements'],
      ['a half-close id of -1', hex('92 05 ff'), 'half-close id must be an unsigned 32-bit integer'],
      ['a credit of 2 elements', hex('92 09 01'), 'credit [9, id, n, maxMessageSize?] has 2 elements'],
      ['a credit of 5 elements', hex('95 09 01 01 01 01'), 'has 5 elements'],
      ['a grant of 0', hex('93 09 01 00'), 'credit n must be an integer from 1 to 2147483647'],
      ['a grant of 2^31', hex('93 09 01 ce 80 00 00 00'), 'credit n must be an integer from 1 to 2147483647'],
      ['a grant of 1.5', hex('93 09 01 cb 3f f8 00 00 00 00 00 00'), 'credit n must be'],
      ['a grant with maxMessageSize 0', hex('94 09 01 01 00'), 'credit maxMessageSize must be an integer from 1 to 4294967295'],
      ['a request of 3 elements', Buffer.concat([hex('93 00 01'), METHOD]), 'request [0, id, method, params, meta?] has 3 elements'],
      ['a request of 6 elements', Buffer.concat([hex('96 00 01'), METHOD, hex('c0 c0 c0')]), 'has 6 elements'],
      ['a response of 3 elements', hex('93 01 01 c0'), 'response [1, id, error, result] has 3 elements'],
      ['a response of 5 elements', hex('95 01 01 c0 c0 c0'), 'has 5 elements'],
      ['a notification of 2 elements', Buffer.concat([hex('92 02'), METHOD]), 'notification [2, method, params, meta?] has 2 elements'],
      ['a notification of 5 elements', Buffer.concat([hex('95 02'), METHOD, hex('c0 c0 c0')]), 'has 5 elements'],
      ['a cancel of 1 element', hex('91 03'), 'cancel [3, id] has 1 elements'],
      ['a cancel of 3 elements', hex('93 03 01 01'), 'has 3 elements'],
      ['a ping of 1 element', hex('91 06'), 'ping [6, data] has 1 elements'],
      ['a ping of 3 elements', hex('93 06 c0 c0'), 'has 3 elements'],
      ['a pong of 1 element', hex('91 07'), 'pong [7, data] has 1 elements'],
      ['a pong of 3 elements', hex('93 07 c0 c0'), 'has 3 elements'],
      ['a goaway of 3 elements', hex('93 08 00 a1 78'), 'goaway [8, lastId, code, message] has 3 elements'],
      ['a goaway of 5 elements', hex('95 08 00 a1 78 a1 78 c0'), 'has 5 elements'],
      ['request id -1', Buffer.concat([hex('94 00 ff'), METHOD, hex('c0')]), 'request id must be an unsigned 32-bit integer'],
      ['request id 1.5', Buffer.concat([hex('94 00 cb 3f f8 00 00 00 00 00 00'), METHOD, hex('c0')]), 'request id must be'],
      ['request id "7"', Buffer.concat([hex('94 00 a1 37'), METHOD, hex('c0')]), 'request id must be'],
      ['request id 2^32', Buffer.concat([hex('94 00 cf 00 00 00 01 00 00 00 00'), METHOD, hex('c0')]), 'request id must be'],
      ['request id 2^64-1', Buffer.concat([hex('94 00 cf ff ff ff ff ff ff ff ff'), METHOD, hex('c0')]), 'request id must be'],
      ['request id nil', Buffer.concat([hex('94 00 c0'), METHOD, hex('c0')]), 'request id must be'],
      ['response id -1', hex('94 01 ff c0 c0'), 'response id must be'],
      ['response id 2^32', hex('94 01 cf 00 00 00 01 00 00 00 00 c0 c0'), 'response id must be'],
      ['cancel id "7"', hex('92 03 a1 37'), 'cancel id must be'],
      ['cancel id 2^64-1', hex('92 03 cf ff ff ff ff ff ff ff ff'), 'cancel id must be'],
      ['goaway lastId -1', hex('94 08 ff a1 78 a1 78'), 'goaway lastId must be'],
      ['a request method that is an integer', hex('94 00 01 01 c0'), 'method must be a string'],
      ['a request method that is nil', hex('94 00 01 c0 c0'), 'method must be a string'],
      ['a notification method that is bin', hex('93 02 c4 01 45 c0'), 'method must be a string'],
      ['meta that is an array', request('91 01'), 'meta must be a map'],
      ['meta that is an integer', request('01'), 'meta must be a map'],
      ['meta that is a string', request('a1 78'), 'meta must be a map'],
      ['meta that is bin', request('c4 00'), 'meta must be a map'],
      ['meta that is a timestamp', request('d6 ff 00 00 00 01'), 'meta must be a map'],
      ['notification meta that is an array', Buffer.concat([hex('94 02'), METHOD, hex('c0 90')]), 'meta must be a map'],
      ['meta.timeout -1', Buffer.concat([request('81'), TIMEOUT, hex('ff')]), 'meta.timeout must be a non-negative integer'],
      ['meta.timeout 1.5', Buffer.concat([request('81'), TIMEOUT, hex('cb 3f f8 00 00 00 00 00 00')]), 'meta.timeout must be'],
      ['meta.timeout "10"', Buffer.concat([request('81'), TIMEOUT, fixstr('10')]), 'meta.timeout must be'],
      ['meta.timeout true', Buffer.concat([request('81'), TIMEOUT, hex('c3')]), 'meta.timeout must be'],
      ['meta.timeout NaN', Buffer.concat([request('81'), TIMEOUT, hex('cb 7f f8 00 00 00 00 00 00')]), 'meta.timeout must be'],
      ['meta.timeout 2^64-1 (a bigint)', Buffer.concat([request('81'), TIMEOUT, hex('cf ff ff ff ff ff ff ff ff')]), 'meta.timeout must be'],
      ['meta.headers with a non-string value', Buffer.concat([request('81'), HEADERS, hex('81 a1 61 01')]), 'meta.headers must be a map of strings'],
      ['meta.headers with a nil value', Buffer.concat([request('81'), HEADERS, hex('81 a1 61 c0')]), 'meta.headers must be a map of strings'],
      ['meta.headers that is an array', Buffer.concat([request('81'), HEADERS, hex('91 a1 61')]), 'meta.headers must be a map of strings'],
      ['meta.headers that is a string', Buffer.concat([request('81'), HEADERS, hex('a1 61')]), 'meta.headers must be a map of strings'],
      ['a response error without code', Buffer.concat([hex('94 01 01 81'), MESSAGE, hex('a1 78 c0')]), 'response error must be a map'],
      ['a response error with an integer code', Buffer.concat([hex('94 01 01 82'), CODE, hex('01'), MESSAGE, hex('a1 78 c0')]), 'string code and message'],
      ['a response error without message', Buffer.concat([hex('94 01 01 81'), CODE, hex('a1 78 c0')]), 'string code and message'],
      ['a response error that is a string', hex('94 01 01 a1 78 c0'), 'response error must be a map'],
      ['a response error that is an array', hex('94 01 01 92 a1 78 a1 78 c0'), 'response error must be a map'],
      ['a response error that is false', hex('94 01 01 c2 c0'), 'response error must be a map'],
      ['a goaway code that is an integer', hex('94 08 00 01 a1 78'), 'goaway code must be a string'],
      ['a goaway code that is nil', hex('94 08 00 c0 a1 78'), 'goaway code must be a string'],
      ['a goaway message that is nil', hex('94 08 00 a1 78 c0'), 'goaway message must be a string'],
    ];
    for (const [name, payload, fragment] of malformed) {
      it(`refuses ${name}`, () => {
        expectMalformed(payload, fragment);
      });
    }

    it('accepts ids 0 and 4294967295 (uint32 ce ff ff ff ff)', () => {
      expect(decodeMessage(hex('92 03 00'))).to.deep.equal({ type: 3, id: 0 });
      expect(decodeMessage(hex('92 03 ce ff ff ff ff'))).to.deep.equal({ type: 3, id: 4294967295 });
    });

    it('accepts any string as a goaway code, for codes of newer peers', () => {
      expect(decodeMessage(hex('94 08 05 a1 78 a1 79'))).to.deep.equal({ type: 8, lastId: 5, code: 'x', message: 'y' });
    });
  });
});

describe('isPlainMap', () => {
  it('is true for decoded maps and false for arrays, dates, bytes, null and scalars', () => {
    expect(isPlainMap({})).to.equal(true);
    expect(isPlainMap(Object.create(null))).to.equal(true);
    for (const value of [[], new Date(0), Buffer.alloc(1), new Uint8Array(1), null, undefined, 'x', 1, true]) {
      expect(isPlainMap(value), String(value)).to.equal(false);
    }
  });
});

describe('decodeMessage byte arrays', () => {
  it('copies a byte array out of a frame under 64 KiB, so keeping it does not keep the frame', () => {
    const frame = encodeMessage({ type: 1, id: 1, result: Buffer.alloc(1024, 5) }).subarray(4);
    const { result } = decodeMessage(frame) as { result: Buffer };
    frame.fill(0);
    expect(result.every((byte) => byte === 5)).to.equal(true);
  });

  it('gives a Buffer copy of each byte array a request, a result or a stream message holds alone, in every bin form', () => {
    for (const length of [0, 1, 255, 256, 4000, 60000]) {
      const bytes = Buffer.alloc(length, 7);
      const messages: Message[] = [
        { type: 0, id: 1, method: 'Blob.put', params: bytes, meta: { timeout: 1000 } },
        { type: 1, id: 2, result: bytes },
        { type: 4, id: 3, message: bytes },
      ];
      for (const message of messages) {
        const frame = encodeMessage(message).subarray(4);
        const decoded = decodeMessage(frame) as unknown as Record<string, unknown>;
        const value = (decoded.params ?? decoded.result ?? decoded.message) as Buffer;
        expect(Buffer.isBuffer(value), `${length} in type ${message.type}`).to.equal(true);
        expect(value.equals(bytes), `${length} in type ${message.type}`).to.equal(true);
        expect(value.buffer === frame.buffer, `${length} in type ${message.type}`).to.equal(false);
      }
    }
  });

  it('returns a byte array of a frame of 64 KiB or more as a view of that frame, uncopied', () => {
    const frame = encodeMessage({ type: 1, id: 1, result: Buffer.alloc(64 * 1024, 5) }).subarray(4);
    const { result } = decodeMessage(frame) as { result: Buffer };
    expect(result.buffer).to.equal(frame.buffer);
    expect(result.length).to.equal(64 * 1024);
  });
});

describe('encodePongPayload', () => {
  it('answers with the very bytes of the ping data, whatever encoding the ping used for its header and type', () => {
    const data = hex('82 ab 63 6f 6e 73 74 72 75 63 74 6f 72 01 a6 74 6f 4a 53 4f 4e 01'); // {constructor: 1, toJSON: 1}
    for (const head of ['92 06', 'dc 00 02 06', 'dd 00 00 00 02 06', '92 cc 06', '92 d0 06', '92 cd 00 06', '92 cb 40 18 00 00 00 00 00 00']) {
      const ping = Buffer.concat([hex(head), data]);
      expect(decodeMessage(ping).type, head).to.equal(MessageType.Ping);
      expect(toHex(encodePongPayload(ping)), head).to.equal(toHex(Buffer.concat([hex('92 07'), data])));
    }
  });

  it('never grows invalid UTF-8: a pong of a 0xff string is the ping with type 7', () => {
    const ping = Buffer.concat([hex('92 06 d9 80'), Buffer.alloc(0x80, 0xff)]);
    const pong = encodePongPayload(ping);
    expect(pong.length).to.equal(ping.length);
    expect(toHex(pong.subarray(2))).to.equal(toHex(ping.subarray(2)));
  });

  it(`takes data up to MAX_PING_DATA_BYTES (${MAX_PING_DATA_BYTES}) and refuses one byte more as a protocol violation`, () => {
    const pingOf = (size: number): Buffer => Buffer.concat([hex('92 06 c5'), Buffer.from([(size - 3) >> 8, (size - 3) & 0xff]), Buffer.alloc(size - 3)]);
    expect(encodePongPayload(pingOf(MAX_PING_DATA_BYTES)).length).to.equal(MAX_PING_DATA_BYTES + 2);
    expectThrows(() => encodePongPayload(pingOf(MAX_PING_DATA_BYTES + 1)), 'INTERNAL', 'ping data of 1025 bytes exceeds 1024');
  });
});

describe('escapePeerText', () => {
  it('writes controls, DEL, C1, line separators, bidi controls and lone surrogates as escapes', () => {
    expect(escapePeerText('a\nb\r\u001b[31m\u007f\u0085\u2028\u202e\u2066\ud800z')).to.equal('a\\u000ab\\u000d\\u001b[31m\\u007f\\u0085\\u2028\\u202e\\u2066\\ud800z');
    expect(escapePeerText('emoji 😀 stays')).to.equal('emoji 😀 stays');
  });

  it('cuts long text and says how long it was', () => {
    expect(escapePeerText('x'.repeat(10), 4)).to.equal('xxxx…(10 chars)');
  });
});

describe('direct encoders', () => {
  it('write the same bytes as encodePayloadParts for a result and a stream message', async () => {
    const { encodePayloadParts, encodeResultPayload, encodeStreamMessagePayload, MessageType } = await import('@tunnelrpc/protocol/internal');
    const join = (parts: ReturnType<typeof encodePayloadParts>): Buffer => (Array.isArray(parts) ? Buffer.concat(parts as Uint8Array[]) : Buffer.from(parts as Uint8Array));
    for (const value of [undefined, null, 1, 'x'.repeat(40), { a: 1, b: [true, null] }, new Uint8Array(20_000).fill(7), 2n ** 63n]) {
      expect(join(encodeResultPayload(9, value))).to.deep.equal(join(encodePayloadParts({ type: MessageType.Response, id: 9, result: value })));
      expect(join(encodeStreamMessagePayload(4, value))).to.deep.equal(join(encodePayloadParts({ type: MessageType.StreamMessage, id: 4, message: value })));
    }
  });

  it('refuse what cannot be encoded with the same error as encodePayloadParts', async () => {
    const { RpcError } = await import('@tunnelrpc/protocol');
    const { encodeResultPayload } = await import('@tunnelrpc/protocol/internal');
    expect(() => encodeResultPayload(1, 2n ** 70n)).to.throw(RpcError, /bigint outside/);
  });
});
