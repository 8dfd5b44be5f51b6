/**
 * The 25 hostile and fault cases T1-T25 of SECURITY.md, one describe per row, in one place.
 *
 * Server rows (T1-T23) run a real RpcServer with the Echo fixture and the Hostile service (test/helpers): a raw
 * socket plays the attacker on its own tunnel while a real client, connected before the attack and with reconnect
 * off, is the bystander that must keep getting correct answers. Client rows (T24, T25) run the real client against
 * a scripted server. After every case Object.prototype must be as it was. Timing rows assert codes and closes,
 * never durations; memory rows use generous bounds and no GC.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { Packr } from 'msgpackr';
import { z } from 'zod';
import { connect, createClient, type ClientOptions, type RpcClient, type TypedClient } from '@tunnelrpc/client';
import { Echo, createEchoService } from '@tunnelrpc/examples';
import { RpcError, defineService } from '@tunnelrpc/protocol';
import {
  MessageType,
  encodeMessage,
  type GoawayMessage,
  type Message,
  type ResponseMessage,
} from '@tunnelrpc/protocol/internal';
import { RpcServer, type ServerOptions } from '@tunnelrpc/server';
import { map, pack, str8 } from '../helpers/bytes.js';
import { Cleanup } from '../helpers/cleanup.js';
import { Hostile, createHostileService, type HostileState } from '../helpers/hostile-service.js';
import { expectErrorResponse, expectOnlyGoaway, expectRejects, expectResult, fixstr, frame, hex, rawRequest, rawSocket, RawTunnel, type ScriptedPeer, ScriptedServer } from '@tunnelrpc/test-kit';
import { expectPrototypeClean, mayHaveRunOf } from '../helpers/rpc-error.js';
import { startEchoServer, type EchoServer } from '../helpers/servers.js';

const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype);
const MiB = 1024 * 1024;
const cleanup = new Cleanup();

/** Rig is a server under attack and the bystander client that was connected before the attack. */
interface Rig {
  server: EchoServer;
  hostile: HostileState;
  client: RpcClient;
  echo: TypedClient<typeof Echo>;
  port: number;
  /** The server side of the bystander's tunnel. */
  bystanderSockets: ReadonlySet<Duplex>;
}

/** rig starts the Echo + Hostile server with `options` and connects the bystander (reconnect off). */
async function rig(options: ServerOptions = {}, clientOptions: ClientOptions = {}): Promise<Rig> {
  const server = await startEchoServer(cleanup, { server: { shutdownTimeout: 500, ...options } });
  const { impl, state } = createHostileService();
  server.rpc.register(Hostile, impl);
  // Reconnect off: if the attack took the bystander's tunnel down, its next call fails instead of redialing.
  const client = cleanup.add(await connect(server.url, { reconnect: false, ...clientOptions }), (each) => each.close());
  const echo = createClient(Echo, client);
  expect(await echo.add({ a: 1, b: 1 })).to.equal(2);
  return { server, hostile: state, client, echo, port: server.port!, bystanderSockets: new Set(server.tunnels) };
}

/**
 * attackersClosed resolves once the server has closed its side of every tunnel but the bystander's. The attacker's
 * own 'close' can come first, and a paused attacker never reads the FIN at all.
 */
async function attackersClosed(r: Rig): Promise<void> {
  const attackers = [...r.server.tunnels].filter((socket) => !r.bystanderSockets.has(socket));
  await Promise.all(attackers.map((socket) => (socket.closed ? undefined : once(socket, 'close'))));
  expect(r.server.rpc.connectionCount).to.equal(1);
}

/** raw opens an attacker tunnel (with `early` bytes in the CONNECT write) that cleanup destroys. */
async function raw(r: Rig, early?: Buffer): Promise<RawTunnel> {
  return cleanup.add(await RawTunnel.open(r.port, early), (tunnel) => tunnel.destroy());
}

/** expectIsolated checks the section 4 invariants: the bystander still gets correct answers, no pollution. */
async function expectIsolated(r: Rig): Promise<void> {
  const [sum, value] = await Promise.all([r.echo.add({ a: 20, b: 22 }), r.echo.echo({ still: ['fine', 64] })]);
  expect(sum).to.equal(42);
  expect(value).to.deep.equal({ still: ['fine', 64] });
  expectPrototypeClean(PROTOTYPE_KEYS);
}


/** request is the frame of an honest request. */
function request(id: number, method: string, params: unknown, timeout?: number): Buffer {
  return encodeMessage(timeout === undefined ? { type: 0, id, method, params } : { type: 0, id, method, params, meta: { timeout } });
}

/** memory reads what this process holds: the server and the attackers share it, so bounds are generous. */
function memory(): { heap: number; buffers: number; rss: number } {
  const usage = process.memoryUsage();
  return { heap: usage.heapUsed, buffers: usage.arrayBuffers, rss: usage.rss };
}

/** peakMemoryWhile samples memory every 5 ms until `work` settles and returns the largest growth seen. */
async function peakMemoryWhile<T>(work: Promise<T>): Promise<{ value: T; heap: number; buffers: number; rss: number }> {
  const start = memory();
  const peak = { ...start };
  const sample = (): void => {
    const now = memory();
    peak.heap = Math.max(peak.heap, now.heap);
    peak.buffers = Math.max(peak.buffers, now.buffers);
    peak.rss = Math.max(peak.rss, now.rss);
  };
  const timer = setInterval(sample, 5);
  try {
    const value = await work;
    sample();
    return { value, heap: peak.heap - start.heap, buffers: peak.buffers - start.buffers, rss: peak.rss - start.rss };
  } finally {
    clearInterval(timer);
  }
}

/** deepArrays is `depth` nested one-element arrays around nil: 91 × depth, c0. */
function deepArrays(depth: number): Buffer {
  return Buffer.concat([Buffer.alloc(depth, 0x91), hex('c0')]);
}

/** attack opens one raw tunnel per input on `r`, writes each, and resolves with every tunnel's messages. */
async function attack(r: Rig, inputs: Buffer[]): Promise<Message[][]> {
  const tunnels = await Promise.all(inputs.map(() => raw(r)));
  tunnels.forEach((tunnel, i) => tunnel.write(inputs[i]!));
  return Promise.all(tunnels.map((tunnel) => tunnel.messagesUntilClose()));
}

describe('SECURITY.md T1-T25: hostile and fault cases', () => {
  afterEach(() => cleanup.run());

  describe('T1: frame header over maxFrameSize, then silence', () => {
    it('answers ff ff ff ff, 80 00 00 00 and maxFrameSize + 1 with goaway RESOURCE_EXHAUSTED from the 4 header bytes alone', async () => {
      const r = await rig();
      const headers = [hex('ff ff ff ff'), hex('80 00 00 00'), hex('00 80 00 01')];
      const { value: results, heap, buffers } = await peakMemoryWhile(attack(r, headers));
      for (const messages of results) expect(expectOnlyGoaway(messages, 'RESOURCE_EXHAUSTED', 0).message).to.include('exceeds maxFrameSize 8388608');
      // No buffer of the declared size (up to 4 GiB) was allocated for a frame that never came.
      expect(buffers, 'ArrayBuffer growth').to.be.below(8 * MiB);
      expect(heap, 'heap growth').to.be.below(8 * MiB);
      await expectIsolated(r);
    });
  });

  describe('T2: many tunnels that declare maxFrameSize and stall', () => {
    it('closes 200 tunnels, each stalled 10 bytes into an 8 MiB frame, at frameTimeout without preallocating', async () => {
      const r = await rig({ frameTimeout: 300 });
      const stall = Buffer.concat([hex('00 80 00 00'), Buffer.alloc(10, 0x61)]); // declares exactly 8 MiB
      const { value: results, buffers, rss } = await peakMemoryWhile(attack(r, Array.from({ length: 200 }, () => stall)));
      for (const messages of results) expect(expectOnlyGoaway(messages, 'PROTOCOL_ERROR', 0).message).to.include('frameTimeout 300');
      // Preallocating the declared length would be 200 × 8 MiB = 1.6 GiB of ArrayBuffers.
      expect(buffers, 'ArrayBuffer growth').to.be.below(64 * MiB);
      expect(rss, 'RSS growth').to.be.below(100 * MiB);
      await attackersClosed(r);
      await expectIsolated(r);
    });
  });

  describe('T3: a 64 KiB frame one byte per write', () => {
    it('decodes the frame exactly', async function () {
      this.timeout(60_000);
      const r = await rig();
      const tunnel = await raw(r);
      tunnel.socket.setNoDelay(true);
      const text = Array.from({ length: 64 * 1024 - 64 }, (_, i) => String.fromCharCode(0x61 + (i % 26))).join('');
      const bytes = request(1, 'Echo.echo', text);
      expect(bytes.length).to.be.above(64 * 1024 - 64);
      for (const byte of bytes) {
        tunnel.write(Buffer.from([byte]));
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(expectResult(await tunnel.next(), 1)).to.equal(text);
      // The tunnel is still in step: a second request on it is answered too.
      tunnel.write(request(2, 'Echo.add', { a: 2, b: 3 }));
      expect(expectResult(await tunnel.next(), 2)).to.equal(5);
      await expectIsolated(r);
    });
  });

  describe('T4: zero-length frame', () => {
    it('answers 00 00 00 00 with goaway PROTOCOL_ERROR and closes, and ignores a request behind it', async () => {
      const r = await rig();
      const [messages] = await attack(r, [Buffer.concat([hex('00 00 00 00'), request(1, 'Hostile.inspect', 1)])]);
      expect(expectOnlyGoaway(messages!, 'PROTOCOL_ERROR', 0).message).to.include('zero-length');
      expect(r.hostile.calls).to.deep.equal({});
      await expectIsolated(r);
    });
  });

  describe('T5: truncated payload, trailing bytes, c1', () => {
    it('answers each with goaway PROTOCOL_ERROR whose text quotes none of the peer bytes', async () => {
      const r = await rig();
      const secret = request(1, 'Hostile.inspect', 'PEERSECRET').subarray(4);
      const inputs = [
        frame(hex('a5 61 62')),
        frame(hex('01 02 03')),
        frame(hex('c1')),
        frame(Buffer.concat([secret, hex('01 02 03')])), // a valid request with trailing bytes
        frame(Buffer.concat([secret.subarray(0, secret.length - 3)])), // the same, truncated in its string
        rawRequest(1, 'Hostile.inspect', Buffer.concat([hex('92'), pack('PEERSECRET'), hex('c1')])),
      ];
      for (const messages of await attack(r, inputs)) {
        const goaway = expectOnlyGoaway(messages, 'PROTOCOL_ERROR', 0);
        expect(goaway.message).to.match(/^protocol violation: /);
        expect(goaway.message).not.to.include('PEERSECRET');
        expect(goaway.message).not.to.include('Hostile.inspect');
      }
      expect(r.hostile.calls).to.deep.equal({});
      await expectIsolated(r);
    });
  });

  describe('T6: params nested 100,000 and 1,000 deep', () => {
    it('answers both with goaway PROTOCOL_ERROR from the depth cap, before any handler runs', async () => {
      const r = await rig();
      const inputs = [rawRequest(1, 'Hostile.inspect', deepArrays(100_000)), rawRequest(1, 'Hostile.inspect', deepArrays(1_000))];
      for (const messages of await attack(r, inputs)) {
        expect(expectOnlyGoaway(messages, 'PROTOCOL_ERROR', 0).message).to.include('maxDepth 32');
      }
      expect(r.hostile.calls).to.deep.equal({});
      await expectIsolated(r);
    });
  });

  describe('T7: a million empty maps in 1 MiB', () => {
    it('answers goaway RESOURCE_EXHAUSTED at the item cap, without decoding them', async () => {
      const r = await rig();
      const payload = Buffer.concat([hex('dd 00 0f ff fb'), Buffer.alloc(MiB - 5, 0x80)]);
      const { value: results, heap } = await peakMemoryWhile(attack(r, [frame(payload)]));
      expect(expectOnlyGoaway(results[0]!, 'RESOURCE_EXHAUSTED', 0).message).to.include('maxItemsPerFrame 262144');
      // Decoded, this is 64 MiB of heap.
      expect(heap, 'heap growth').to.be.below(32 * MiB);
      await expectIsolated(r);
    });
  });

  describe('T8: declared lengths with nothing behind them', () => {
    it('answers array32, map32, str32, bin32, ext32 of 2^32-1 and 24,000 nested array16 headers with goaway PROTOCOL_ERROR', async () => {
      const r = await rig();
      const lies = ['dd ff ff ff ff', 'df ff ff ff ff', 'db ff ff ff ff', 'c6 ff ff ff ff', 'c9 ff ff ff ff 01'].map((text) => hex(text));
      lies.push(Buffer.concat(Array.from({ length: 24_000 }, () => hex('dc ff ff'))));
      const { value: results, buffers } = await peakMemoryWhile(attack(r, lies.map((params) => rawRequest(1, 'Hostile.inspect', params))));
      for (const messages of results) expectOnlyGoaway(messages, 'PROTOCOL_ERROR', 0);
      expect(buffers, 'ArrayBuffer growth').to.be.below(16 * MiB);
      expect(r.hostile.calls).to.deep.equal({});
      await expectIsolated(r);
    });
  });

  describe('T9: __proto__, constructor and prototype keys', () => {
    const polluting = map([[fixstr('polluted'), hex('c3')]]);
    const shapes: Array<[string, Buffer]> = [
      ['__proto__ as fixstr at the top', map([[fixstr('__proto__'), polluting], [fixstr('name'), fixstr('n')]])],
      ['__proto__ as str8 at the top', map([[str8('__proto__'), polluting], [fixstr('name'), fixstr('n')]])],
      ['constructor.prototype as fixstr', map([[fixstr('constructor'), map([[fixstr('prototype'), polluting]])], [fixstr('name'), fixstr('n')]])],
      ['prototype as str8 at the top', map([[str8('prototype'), polluting], [fixstr('name'), fixstr('n')]])],
      [
        'all three nested as str8',
        map([
          [fixstr('name'), fixstr('n')],
          [fixstr('inner'), map([[str8('__proto__'), polluting], [str8('constructor'), map([[str8('prototype'), polluting]])]])],
        ]),
      ],
    ];

    for (const [name, params] of shapes) {
      it(`keeps ${name} as data: the handler sees plain objects, strict params are INVALID_ARGUMENT`, async () => {
        const r = await rig();
        const tunnel = await raw(r);
        tunnel.write(Buffer.concat([
          rawRequest(1, 'Hostile.inspect', params),
          rawRequest(2, 'Hostile.strip', params),
          rawRequest(3, 'Echo.add', params),
          rawRequest(4, 'Echo.echo', params),
        ]));
        const byId = new Map<number, Message>();
        for (let i = 0; i < 4; i++) {
          const message = await tunnel.next();
          byId.set((message as ResponseMessage).id, message);
        }
        const seen = expectResult(byId.get(1)!, 1) as Record<string, unknown>;
        expect(seen).to.deep.include({ kind: '[object Object]', plainPrototypes: true, inheritsPolluted: false, globalPolluted: false });
        // z.object (strip) keeps only the declared key.
        expect(expectResult(byId.get(2)!, 2)).to.deep.include({ keys: ['name'], plainPrototypes: true, inheritsPolluted: false });
        expectErrorResponse(byId.get(3)!, 3, 'INVALID_ARGUMENT');
        const echoed = expectResult(byId.get(4)!, 4) as Record<string, unknown>;
        expect(Object.getPrototypeOf(echoed)).to.equal(Object.prototype);
        expect(echoed['polluted']).to.equal(undefined);
        expectPrototypeClean(PROTOTYPE_KEYS);
        await expectIsolated(r);
      });
    }

    it('answers a record definition with a __proto__ field with goaway PROTOCOL_ERROR', async () => {
      const r = await rig();
      const record = Buffer.from(new Packr({ useRecords: true }).pack(JSON.parse('{"__proto__": {"polluted": true}, "a": 1}')));
      expect(record.includes(hex('d4 72'))).to.equal(true);
      const [messages] = await attack(r, [rawRequest(1, 'Hostile.inspect', record)]);
      expect(expectOnlyGoaway(messages!, 'PROTOCOL_ERROR', 0).message).to.include('extension type 114');
      expect(r.hostile.calls).to.deep.equal({});
      await expectIsolated(r);
    });
  });

  describe('T10: structured clone', () => {
    it('answers a cycle, a dangling pointer and a 40-level billion laughs with goaway PROTOCOL_ERROR; no handler or log sees them', async () => {
      const r = await rig();
      let laughs: unknown = ['lol'];
      for (let level = 0; level < 40; level++) laughs = [laughs, laughs];
      const billion = Buffer.from(new Packr({ structuredClone: true, useRecords: false }).pack(laughs));
      expect(billion.length).to.be.below(1024);
      const inputs = [hex('d6 69 00 00 00 01 91 d6 70 00 00 00 01'), hex('d6 70 00 00 00 07'), billion];
      for (const messages of await attack(r, inputs.map((params) => rawRequest(1, 'Hostile.inspect', params)))) {
        expect(expectOnlyGoaway(messages, 'PROTOCOL_ERROR', 0).message).to.match(/extension type (105|112) is not allowed/);
      }
      expect(r.hostile.calls).to.deep.equal({});
      expect(r.server.logs).to.deep.equal([]);
      await expectIsolated(r);
    });
  });

  describe('T11: other extension types', () => {
    const refused: Array<[string, string]> = [
      ['RegExp 0x78', 'c7 04 78 92 a1 61 a0'],
      ['Error 0x65', 'd4 65 00'],
      ['Error 0x65 with the boxed-String "constructor" trick', '92 d4 65 00 92 ab 63 6f 6e 73 74 72 75 63 74 6f 72 a5 62 6f 78 65 64'],
      ['Set 0x73', 'd4 73 00'],
      ['typed array 0x74', 'd5 74 00 00'],
      ['BigInt 0x42', 'd4 42 01'],
      ['bundled strings 0x62', 'd4 62 00'],
      ['undefined 0x00', 'd4 00 00'],
      ['unknown 0x05', 'd4 05 00'],
      ['unknown 0x7f', 'c7 03 7f 01 02 03'],
      ['a timestamp of bad length c7 03 ff', 'c7 03 ff 01 02 03'],
    ];

    it('answers every one with goaway PROTOCOL_ERROR before a handler runs', async () => {
      const r = await rig();
      const results = await attack(r, refused.map(([, bytes]) => rawRequest(1, 'Hostile.inspect', hex(bytes))));
      results.forEach((messages, i) => {
        expect(expectOnlyGoaway(messages, 'PROTOCOL_ERROR', 0).message, refused[i]![0]).to.match(/extension|timestamp/);
      });
      expect(r.hostile.calls).to.deep.equal({});
      await expectIsolated(r);
    });

    it('hands a valid timestamp to the handler as a Date, in its 32-, 64- and 96-bit forms', async () => {
      const r = await rig();
      const tunnel = await raw(r);
      const timestamps = [
        ['d6 ff 5f 5e 10 00', Date.UTC(2020, 8, 13, 12, 26, 40)],
        ['d7 ff 77 35 94 00 5f 5e 10 00', Date.UTC(2020, 8, 13, 12, 26, 40, 500)],
        ['c7 0c ff 1d cd 65 00 ff ff ff ff ff ff ff ff', -500],
      ] as const;
      for (const [i, [bytes, ms]] of timestamps.entries()) {
        tunnel.write(rawRequest(10 + i, 'Hostile.inspect', hex(bytes)));
        expect(expectResult(await tunnel.next(), 10 + i)).to.deep.include({ kind: '[object Date]' });
        tunnel.write(rawRequest(20 + i, 'Echo.echo', hex(bytes)));
        const echoed = expectResult(await tunnel.next(), 20 + i);
        expect(echoed).to.be.instanceOf(Date);
        expect((echoed as Date).getTime()).to.equal(ms);
      }
      await expectIsolated(r);
    });
  });

  describe('T12: a record definition does not outlive its frame', () => {
    it('closes the attacking tunnel without answering the honest frame behind it, and decodes [64] on another', async () => {
      const r = await rig();
      const attacker = await raw(r);
      const victim = await raw(r);
      const honest = request(2, 'Echo.echo', [64]);
      expect(honest.includes(0x40)).to.equal(true); // 64 is the byte 0x40, the slot the definition claims
      attacker.write(Buffer.concat([rawRequest(1, 'Echo.echo', hex('d4 72 40 91 a4 65 76 69 6c 01')), honest]));
      expectOnlyGoaway(await attacker.messagesUntilClose(), 'PROTOCOL_ERROR', 0);
      victim.write(honest);
      expect(expectResult(await victim.next(), 2)).to.deep.equal([64]);
      // And the bystander, through the real client, which decodes the answer with its own Unpackr.
      expect(await r.echo.echo([64, { n: 64 }])).to.deep.equal([64, { n: 64 }]);
      await expectIsolated(r);
    });
  });

  describe('T13: method names from Object.prototype', () => {
    const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'Echo.__proto__', 'Echo.constructor', 'Echo.toString', 'Hostile.hasOwnProperty', ''];

    it('answers UNIMPLEMENTED to each, with its id, on a tunnel that stays open', async () => {
      const r = await rig();
      const tunnel = await raw(r);
      tunnel.write(Buffer.concat(names.map((name, i) => request(i + 1, name, {}))));
      for (const [i, name] of names.entries()) {
        expect(expectErrorResponse(await tunnel.next(), i + 1, 'UNIMPLEMENTED').message).to.include(JSON.stringify(name));
      }
      tunnel.write(request(99, 'Echo.add', { a: 1, b: 2 }));
      expect(expectResult(await tunnel.next(), 99)).to.equal(3);
      // The real client sends the same names and gets the same answer.
      await expectRejects(r.client.call('__proto__', {}), 'UNIMPLEMENTED');
      await expectRejects(r.client.call('constructor'), 'UNIMPLEMENTED');
      await expectIsolated(r);
    });

    it('answers a request without a method, or with a non-string method, with goaway PROTOCOL_ERROR', async () => {
      const r = await rig();
      const inputs = [
        frame(hex('93 00 01 c0')), // [0, 1, nil]: no method at all
        rawRequest(1, null, null),
        rawRequest(1, 7, null),
        rawRequest(1, ['Echo', 'echo'], null),
        rawRequest(1, { __proto__: 1 }, null),
      ];
      for (const messages of await attack(r, inputs)) expectOnlyGoaway(messages, 'PROTOCOL_ERROR', 0);
      await expectIsolated(r);
    });
  });

  describe('T14: add with values zod must refuse', () => {
    it('answers NaN, Infinity, 2^64-1, a string and extra keys with INVALID_ARGUMENT and the same id, then serves the next call', async () => {
      const r = await rig();
      const tunnel = await raw(r);
      const bad: Array<[string, Buffer]> = [
        ['NaN', hex('cb 7f f8 00 00 00 00 00 00')],
        ['Infinity', hex('cb 7f f0 00 00 00 00 00 00')],
        ['-Infinity', hex('cb ff f0 00 00 00 00 00 00')],
        ['2^64-1 (cf ff..)', hex('cf ff ff ff ff ff ff ff ff')],
        ['a string', fixstr('2')],
        ['nil', hex('c0')],
      ];
      for (const [i, [what, b]] of bad.entries()) {
        tunnel.write(rawRequest(i + 1, 'Echo.add', map([[fixstr('a'), hex('01')], [fixstr('b'), b]])));
        const error = expectErrorResponse(await tunnel.next(), i + 1, 'INVALID_ARGUMENT');
        expect(error.message, what).to.include('Echo.add');
      }
      tunnel.write(request(50, 'Echo.add', { a: 1, b: 2, c: 3 }));
      expect(expectErrorResponse(await tunnel.next(), 50, 'INVALID_ARGUMENT').message).to.include('c');
      tunnel.write(request(51, 'Echo.add', { a: 40, b: 2 }));
      expect(expectResult(await tunnel.next(), 51)).to.equal(42);
      await expectIsolated(r);
    });

    it('answers an Invalid Date on the wire (d4 ff ff, or 96-bit nanoseconds past 1e9) with goaway PROTOCOL_ERROR from the pre-scan', async () => {
      const r = await rig();
      const invalid = [hex('d4 ff ff'), hex('c7 0c ff ff ff ff ff 00 00 00 00 00 00 00 00'), hex('d7 ff ff ff ff ff 00 00 00 00')];
      const inputs = invalid.map((b) => rawRequest(1, 'Echo.add', map([[fixstr('a'), hex('01')], [fixstr('b'), b]])));
      for (const messages of await attack(r, inputs)) expect(expectOnlyGoaway(messages, 'PROTOCOL_ERROR', 0).message).to.include('timestamp');
      await expectIsolated(r);
    });

    // Regression: msgpackr writes an Invalid Date as d4 ff ff, which the server's pre-scan refuses. One call with an
    // Invalid Date in its params used to take the whole tunnel down with goaway PROTOCOL_ERROR, failing every other
    // call on it. It now fails alone, unsent.
    it('fails a call whose params hold an Invalid Date with INVALID_ARGUMENT, unsent, and keeps the tunnel', async () => {
      const r = await rig();
      const running = r.echo.echo({ other: 'call in flight' });
      const error = await expectRejects(r.client.call('Echo.add', { a: 1, b: new Date(Number.NaN) }), 'INVALID_ARGUMENT', 'Invalid Date');
      expect(mayHaveRunOf(error)).to.equal(false);
      expect(await running).to.deep.equal({ other: 'call in flight' });
      await expectIsolated(r);
    });

    it('fails a typed call INTERNAL, naming both causes, when the handler returns what the contract forbids (results are checked by the client)', async () => {
      const r = await rig();
      const Counts = defineService('Counts', { count: { input: z.unknown(), output: z.number().int() } });
      r.server.rpc.register(Counts, { count: () => 'seven' as unknown as number });
      const typed = createClient(Counts, r.client);
      await expectRejects(typed.count(null), 'INTERNAL', "the server's handler returned a wrong value, or client and server run different versions of the contract");
      await expectIsolated(r);
    });

    // Regression, the other way: a handler result holding an Invalid Date made the client close the tunnel.
    it('answers INTERNAL when a handler returns an Invalid Date, and keeps the tunnel', async () => {
      const r = await rig();
      const Dates = defineService('Dates', { invalid: { input: z.unknown(), output: z.date() } });
      r.server.rpc.register(Dates, { invalid: () => new Date(Number.NaN) });
      // Results go unchecked by default (the client checks them): the encoder refuses it, INTERNAL for that call only.
      await expectRejects(r.client.call('Dates.invalid', null), 'INTERNAL', 'could not be encoded');
      const Unchecked = defineService('Unchecked', { invalid: { input: z.unknown(), output: z.unknown() } });
      r.server.rpc.register(Unchecked, { invalid: () => new Date(Number.NaN) });
      await expectRejects(r.client.call('Unchecked.invalid', null), 'INTERNAL', 'could not be encoded');
      await expectIsolated(r);
    });
  });

  describe('T15: a million wrong elements', () => {
    it('answers 1e6 strings against z.array(z.number()) with INVALID_ARGUMENT holding at most 10 issues in 4 KiB', async function () {
      this.timeout(60_000);
      // Both peers raise the limit: the client refuses to send what it would itself count as too many values.
      const r = await rig({ maxItemsPerFrame: 2_000_000 }, { maxItemsPerFrame: 2_000_000 });
      const strings = new Array<string>(1_000_000).fill('x');
      const error = await expectRejects(r.client.call('Hostile.numbers', strings, { timeout: 30_000 }), 'INVALID_ARGUMENT');
      const data = error.data as { issues: unknown[]; total: number };
      expect(data.issues).to.have.length.within(1, 10);
      expect(data.total).to.equal(1_000_000);
      expect(JSON.stringify(data).length).to.be.at.most(4096);
      expect(error.message.length).to.be.below(4096);
      expect(r.hostile.calls).to.deep.equal({});
      await expectIsolated(r);
    });
  });

  describe('T16: ids', () => {
    it('closes on an id already in flight, aborting the first call, which gets no answer', async () => {
      const r = await rig();
      const tunnel = await raw(r);
      tunnel.write(request(5, 'Echo.sleep', { ms: 60_000 }));
      await r.server.echo.sleepsStarted(1);
      tunnel.write(request(5, 'Echo.add', { a: 1, b: 2 }));
      expect(expectOnlyGoaway(await tunnel.messagesUntilClose(), 'PROTOCOL_ERROR', 5).message).to.include('already in flight');
      await r.server.echo.sleepsAborted(1);
      await expectIsolated(r);
    });

    it('answers ids -1, 1.5, "7", 2^32, 2^64-1, nil, a missing id and a response sent to the server with goaway PROTOCOL_ERROR', async () => {
      const r = await rig();
      const inputs = [
        rawRequest(hex('ff'), 'Hostile.inspect', null),
        rawRequest(hex('cb 3f f8 00 00 00 00 00 00'), 'Hostile.inspect', null),
        rawRequest('7', 'Hostile.inspect', null),
        rawRequest(hex('cf 00 00 00 01 00 00 00 00'), 'Hostile.inspect', null),
        rawRequest(hex('cf ff ff ff ff ff ff ff ff'), 'Hostile.inspect', null),
        rawRequest(null, 'Hostile.inspect', null),
        frame(Buffer.concat([hex('93 00'), pack('Hostile.inspect'), hex('c0')])),
        encodeMessage({ type: MessageType.Response, id: 1, result: 'unasked' }),
      ];
      for (const messages of await attack(r, inputs)) expectOnlyGoaway(messages, 'PROTOCOL_ERROR', 0);
      expect(r.hostile.calls).to.deep.equal({});
      await expectIsolated(r);
    });

    it('ignores a cancel for an unknown id and an unrequested pong, and answers the call behind them', async () => {
      const r = await rig();
      const tunnel = await raw(r);
      tunnel.write(Buffer.concat([
        encodeMessage({ type: MessageType.Cancel, id: 12345 }),
        encodeMessage({ type: MessageType.Pong, data: 'nobody asked' }),
        request(1, 'Echo.add', { a: 2, b: 2 }),
      ]));
      expect(expectResult(await tunnel.next(), 1)).to.equal(4);
    });
  });

  describe('T17: pipelining far past maxInFlight', () => {
    it('runs at most 128 of 10,000 pipelined calls at once, answers all, and keeps serving another tunnel meanwhile', async function () {
      this.timeout(60_000);
      const r = await rig();
      const tunnel = await raw(r);
      const total = 10_000;
      tunnel.socket.pause(); // never read while the calls run
      tunnel.write(Buffer.concat(Array.from({ length: total }, (_, i) => request(i + 1, 'Hostile.pace', { ms: 10 }))));
      await r.hostile.paceStarted(128);
      // The bystander's calls go through while the pipelining tunnel is saturated.
      const sums = await Promise.all(Array.from({ length: 20 }, (_, i) => r.echo.add({ a: i, b: 1 })));
      expect(sums).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(r.hostile.calls['pace']).to.be.below(total);
      tunnel.socket.resume();
      const answered = new Set<number>();
      for (let i = 0; i < total; i++) {
        const message = await tunnel.next();
        const id = (message as ResponseMessage).id;
        expect(expectResult(message, id)).to.equal(10);
        expect(answered.has(id), `id ${id} answered twice`).to.equal(false);
        answered.add(id);
      }
      expect(answered.size).to.equal(total);
      expect(r.hostile.mostRunning).to.equal(128);
      await expectIsolated(r);
    });
  });

  describe('T18: a peer that never reads its large results', () => {
    it('destroys the tunnel once maxWriteBuffer is queued, and keeps serving', async function () {
      this.timeout(60_000);
      const r = await rig();
      const tunnel = await raw(r);
      tunnel.socket.pause();
      const requests = Buffer.concat(Array.from({ length: 200 }, (_, i) => request(i + 1, 'Hostile.blob', { bytes: MiB })));
      const [attacker] = [...r.server.tunnels].filter((socket) => !r.bystanderSockets.has(socket));
      const { rss } = await peakMemoryWhile((async () => {
        tunnel.write(requests);
        // The attacker never reads, so it cannot see the close: watch the server's side of its socket.
        await once(attacker!, 'close');
      })());
      // Unbounded, 200 queued results are 200 MiB.
      expect(r.hostile.calls['blob']).to.be.below(200);
      expect(rss, 'RSS growth').to.be.below(128 * MiB);
      await attackersClosed(r);
      await expectIsolated(r);
    });
  });

  describe('T19: hostile CONNECT heads', () => {
    const TOKEN = 'Bearer good';

    /** head19 serves Echo with listen() (handshakeTimeout 500) behind an authorize hook, plus an authorized bystander. */
    async function head19(): Promise<{ port: number; echo: TypedClient<typeof Echo> }> {
      const rpc = new RpcServer({
        handshakeTimeout: 500,
        shutdownTimeout: 200,
        logger: () => undefined,
        authorize: (req) => {
          if (req.headers.authorization !== TOKEN) throw new RpcError('UNAUTHENTICATED', 'send Authorization: Bearer <token>');
          return 'ok';
        },
      });
      rpc.register(Echo, createEchoService());
      cleanup.defer(() => rpc.close());
      const { port, url } = await rpc.listen(0);
      const client = cleanup.add(await connect(url, { reconnect: false, headers: { authorization: TOKEN } }), (each) => each.close());
      const echo = createClient(Echo, client);
      expect(await echo.add({ a: 1, b: 1 })).to.equal(2);
      return { port, echo };
    }

    /** exchange writes `bytes` (dripping them one per 100 ms when asked) and resolves with all it read once closed. */
    async function exchange(port: number, bytes: Buffer, drip = false): Promise<string> {
      const socket: Socket = cleanup.add(await rawSocket(port), (each) => each.destroy());
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
      socket.on('error', () => undefined); // a reset is an acceptable end here
      const closed = once(socket, 'close');
      if (drip) {
        let at = 0;
        const timer = setInterval(() => {
          if (socket.destroyed || at >= bytes.length) return;
          socket.write(bytes.subarray(at, ++at));
        }, 100);
        cleanup.defer(() => clearInterval(timer));
        await closed;
        clearInterval(timer);
      } else {
        if (bytes.length > 0) socket.write(bytes);
        await closed;
      }
      return received;
    }

    const head = (text: string): Buffer => Buffer.from(text, 'latin1');

    it('answers 408 (or closes) a head dripped one byte per 100 ms, and a connection that sends nothing', async () => {
      const { port, echo } = await head19();
      const [slow, silent] = await Promise.all([
        exchange(port, head(`CONNECT /_rpc HTTP/1.0\r\nHost: x\r\nAuthorization: ${TOKEN}\r\nX-Slow: ${'s'.repeat(40)}\r\n\r\n`), true),
        exchange(port, Buffer.alloc(0)),
      ]);
      for (const reply of [slow, silent]) expect(reply === '' || reply.startsWith('HTTP/1.1 408 ')).to.equal(true, reply);
      expect(slow).not.to.include('200 Connected');
      expect(await echo.add({ a: 2, b: 2 })).to.equal(4);
      expectPrototypeClean(PROTOTYPE_KEYS);
    });

    it('answers 431 to a 20 KB header, and 431 or 400 to 3,000 and 10,000 headers', async () => {
      const { port, echo } = await head19();
      const big = await exchange(port, head(`CONNECT /_rpc HTTP/1.0\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
      expect(big).to.match(/^HTTP\/1\.1 431 /);
      for (const count of [3_000, 10_000]) {
        const many = await exchange(port, head(`CONNECT /_rpc HTTP/1.0\r\nHost: x\r\n${'X-h: v\r\n'.repeat(count)}Authorization: ${TOKEN}\r\n\r\n`));
        expect(many === '' || /^HTTP\/1\.1 (431|400) /.test(many)).to.equal(true, many.slice(0, 100));
      }
      expect(await echo.add({ a: 2, b: 2 })).to.equal(4);
      expectPrototypeClean(PROTOTYPE_KEYS);
    });

    it('answers GET /_rpc with 405 "405 must CONNECT", another path with 404, and a bad Authorization with 401', async () => {
      const { port, echo } = await head19();
      const get = await exchange(port, head('GET /_rpc HTTP/1.0\r\nHost: x\r\n\r\n'));
      expect(get).to.match(/^HTTP\/1\.1 405 /);
      expect(get.slice(get.indexOf('\r\n\r\n') + 4)).to.equal('405 must CONNECT');
      expect(await exchange(port, head(`CONNECT /other HTTP/1.0\r\nHost: x\r\nAuthorization: ${TOKEN}\r\n\r\n`))).to.match(/^HTTP\/1\.0 404 /);
      for (const auth of ['Authorization: Bearer bad\r\n', '', `Authorization: ${TOKEN}x\r\n`, 'Authorization: \r\n']) {
        expect(await exchange(port, head(`CONNECT /_rpc HTTP/1.0\r\nHost: x\r\n${auth}\r\n`))).to.match(/^HTTP\/1\.0 401 /);
      }
      // Node does not require Host on a CONNECT; without one the tunnel is served like any other.
      const noHost = cleanup.add(await rawSocket(port), (each) => each.destroy());
      noHost.write(`CONNECT /_rpc HTTP/1.0\r\nAuthorization: ${TOKEN}\r\n\r\n`);
      const [reply] = (await once(noHost, 'data')) as [Buffer];
      expect(reply.toString('latin1')).to.match(/^HTTP\/1\.[01] (200|400) /);
      expect(await echo.add({ a: 2, b: 2 })).to.equal(4);
      expectPrototypeClean(PROTOTYPE_KEYS);
    });
  });

  describe('T20: a tunnel idle after 200 Connected', () => {
    it('sends an idle tunnel goaway UNAVAILABLE then closes it, while a tunnel with a call in flight gets its answer first', async () => {
      const server = await startEchoServer(cleanup, { server: { idleTimeout: 300, shutdownTimeout: 500 } });
      const [idle, busy] = await Promise.all([RawTunnel.open(server.port!), RawTunnel.open(server.port!)]);
      cleanup.defer(() => {
        idle.destroy();
        busy.destroy();
      });
      busy.write(request(1, 'Echo.sleep', { ms: 900 }));
      expect(expectOnlyGoaway(await idle.messagesUntilClose(), 'UNAVAILABLE', 0).message).to.include('idle for 300 ms');
      // The call outlives idleTimeout three times over: its answer comes, and only then the idle goaway.
      const [answer, goaway] = await busy.messagesUntilClose();
      expect(expectResult(answer!, 1)).to.deep.equal({ slept: 900 });
      expect(goaway).to.deep.include({ type: MessageType.Goaway, code: 'UNAVAILABLE', lastId: 1 });
      await Promise.all([...server.tunnels].map((socket) => (socket.closed ? undefined : once(socket, 'close'))));
      expect(server.rpc.connectionCount).to.equal(0);
      expectPrototypeClean(PROTOTYPE_KEYS);
    });
  });

  describe('T21: maxConnections + 50 tunnels at once', () => {
    it('refuses the 50 past maxConnections 20 with 503 while the 20 open tunnels keep working', async () => {
      const server = await startEchoServer(cleanup, { server: { maxConnections: 20, shutdownTimeout: 500 } });
      const outcomes = await Promise.allSettled(Array.from({ length: 70 }, () => connect(server.url, { reconnect: false })));
      const opened = outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? [cleanup.add(outcome.value, (client) => client.close())] : []));
      const refused = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as RpcError] : []));
      expect(opened).to.have.length(20);
      expect(refused).to.have.length(50);
      for (const error of refused) {
        expect(error.code).to.equal('UNAVAILABLE');
        expect(error.data).to.deep.include({ status: 503 });
      }
      expect(server.rpc.connectionCount).to.equal(20);
      const sums = await Promise.all(opened.map((client, i) => createClient(Echo, client).add({ a: i, b: 100 })));
      expect(sums).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 100));
      expectPrototypeClean(PROTOTYPE_KEYS);
    });
  });

  describe('T22: bytes that arrive with the CONNECT head', () => {
    it('serves a request in the CONNECT write, half a frame in it, and a frame split over three writes', async () => {
      const r = await rig();
      const first = request(1, 'Echo.add', { a: 1, b: 2 });
      const whole = await raw(r, first);
      expect(expectResult(await whole.next(), 1)).to.equal(3);

      const second = request(2, 'Echo.echo', { text: 'split behind the head' });
      const half = await raw(r, second.subarray(0, 9));
      half.write(second.subarray(9));
      expect(expectResult(await half.next(), 2)).to.deep.equal({ text: 'split behind the head' });

      const third = request(3, 'Echo.echo', 'three writes');
      const split = await raw(r);
      split.socket.setNoDelay(true);
      for (const [from, to] of [[0, 2], [2, 11], [11, third.length]] as const) {
        split.write(third.subarray(from, to));
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(expectResult(await split.next(), 3)).to.equal('three writes');
      await expectIsolated(r);
    });
  });

  describe('T23: handlers that fail in every way', () => {
    it('maps each failure to its code without leaks or unhandled rejections, and frees every slot', async () => {
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown): void => {
        unhandled.push(reason);
      };
      process.on('unhandledRejection', onUnhandled);
      cleanup.defer(() => process.off('unhandledRejection', onUnhandled));
      const r = await rig({ maxCallsInFlight: 6 });
      const tunnel = await raw(r);
      const call = async (id: number, kind: string, timeout?: number): Promise<Message> => {
        tunnel.write(request(id, 'Hostile.throws', { kind }, timeout));
        return tunnel.next();
      };

      const rpc = expectErrorResponse(await call(1, 'rpc'), 1, 'FAILED_PRECONDITION');
      expect(rpc).to.deep.equal({ code: 'FAILED_PRECONDITION', message: 'the widget is not ready; call prepare first', data: { widget: 7, mayHaveRun: true }, mayHaveRun: true });
      for (const [i, kind] of ['error', 'string', 'null', 'getter', 'rejected', 'rejectedUndefined'].entries()) {
        const error = expectErrorResponse(await call(10 + i, kind), 10 + i, 'INTERNAL');
        expect(error.message, kind).to.equal('internal error in Hostile.throws; the server logged the details');
        expect(error.data).to.deep.equal({ mayHaveRun: true });
      }
      expect(r.server.logs.filter((line) => line === 'Hostile.throws: handler threw; the caller got INTERNAL')).to.have.length(6);
      // The crash() of the Echo fixture, through the real client: INTERNAL, no text and no stack of the Error.
      const crash = await expectRejects(r.echo.crash(), 'INTERNAL');
      expect(crash.message).not.to.match(/secret|crash\(\)|\n\s+at /);

      expectErrorResponse(await call(20, 'hang', 100), 20, 'DEADLINE_EXCEEDED');
      await r.hostile.abortedCount(1);
      expectErrorResponse(await call(21, 'late', 100), 21, 'DEADLINE_EXCEEDED');
      await r.hostile.abortedCount(2);
      for (const reason of r.hostile.aborted) expect((reason as RpcError).code).to.equal('DEADLINE_EXCEEDED');
      // The late handler rejects 20 ms after its abort; an unhandled rejection would be reported before the next turn.
      await r.hostile.lateRejected(1);
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).to.deep.equal([]);

      // maxCallsInFlight is 6, so one tunnel's fair share is 3: had any of the calls above kept its slot, one of these
      // would be RESOURCE_EXHAUSTED.
      tunnel.write(Buffer.concat([31, 32, 33].map((id) => request(id, 'Hostile.pace', { ms: 50 }))));
      const answers = [await tunnel.next(), await tunnel.next(), await tunnel.next()];
      expect(answers.map((message) => expectResult(message, (message as ResponseMessage).id))).to.deep.equal([50, 50, 50]);
      await expectIsolated(r);
    });
  });

  describe('T24: a server that breaks the handshake (client side)', () => {
    /** scripted starts a scripted server with a bystander client already on it, answered by its own peer. */
    async function scripted(): Promise<{ server: ScriptedServer; bystander: RpcClient; bystanderPeer: ScriptedPeer }> {
      const server = cleanup.add(await ScriptedServer.start(), (each) => each.close());
      const connecting = connect(server.url, { reconnect: false });
      const bystanderPeer = await server.nextPeer();
      await bystanderPeer.head;
      await bystanderPeer.accept();
      const bystander = cleanup.add(await connecting, (client) => client.close());
      return { server, bystander, bystanderPeer };
    }

    async function expectBystanderWorks(bystander: RpcClient, peer: ScriptedPeer): Promise<void> {
      const answer = bystander.call('Still.there', 1);
      await peer.respond((await peer.nextRequest()).id, 'yes');
      expect(await answer).to.equal('yes');
      expectPrototypeClean(PROTOTYPE_KEYS);
    }

    const cases: Array<[string, (peer: ScriptedPeer) => Promise<void>, string]> = [
      ['answers HTTP/1.0 503', (peer) => peer.write('HTTP/1.0 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nfull'), 'HTTP 503'],
      ['sends more than 8 KiB of head with no blank line', (peer) => peer.write(`HTTP/1.0 200 Connected\r\nX-Pad: ${'p'.repeat(9000)}`), '8192'],
      [
        'drips the status line one byte per 100 ms',
        async (peer) => {
          const line = 'HTTP/1.0 200 Connected\r\n\r\n';
          for (let i = 0; i < line.length && !peer.socket.destroyed; i++) {
            peer.socket.write(line[i]!);
            await delay(100);
          }
        },
        'handshakeTimeout 300',
      ],
      ['closes in the middle of the head', (peer) => new Promise((resolve) => peer.socket.end('HTTP/1.0 200 Conn', () => resolve())), 'closed the connection during the CONNECT handshake'],
    ];

    for (const [what, script, fragment] of cases) {
      it(`fails connect with UNAVAILABLE and closes the socket when the server ${what}`, async () => {
        const { server, bystander, bystanderPeer } = await scripted();
        const connecting = connect(server.url, { reconnect: false, handshakeTimeout: 300 });
        const peer = await server.nextPeer();
        await peer.head;
        const scripting = script(peer).catch(() => undefined);
        const error = await expectRejects(connecting, 'UNAVAILABLE', fragment);
        expect(error).to.be.instanceOf(RpcError);
        await peer.closed;
        await scripting;
        await expectBystanderWorks(bystander, bystanderPeer);
      });
    }

    it('keeps a frame that arrives in the same write as 200 Connected', async () => {
      const { server, bystander, bystanderPeer } = await scripted();
      const connecting = connect(server.url, { reconnect: false });
      const peer = await server.nextPeer();
      await peer.head;
      await peer.accept(encodeMessage({ type: MessageType.Ping, data: 'with the head' }));
      const client = cleanup.add(await connecting, (each) => each.close());
      expect(await peer.nextMessage()).to.deep.equal({ type: MessageType.Pong, data: 'with the head' });
      const answer = client.call('After.head', null);
      await peer.respond((await peer.nextRequest()).id, 'served');
      expect(await answer).to.equal('served');
      await expectBystanderWorks(bystander, bystanderPeer);
    });
  });

  describe('T25: a server that breaks wire-v1 after the handshake (client side)', () => {
    /** tunnel opens a client on a fresh scripted server, plus a bystander client on the same server. */
    async function tunnel(options: { maxFrameSize?: number } = {}): Promise<{ peer: ScriptedPeer; client: RpcClient; bystander: RpcClient; bystanderPeer: ScriptedPeer }> {
      const server = cleanup.add(await ScriptedServer.start(), (each) => each.close());
      const open = async (extra: object): Promise<{ peer: ScriptedPeer; client: RpcClient }> => {
        const connecting = connect(server.url, { reconnect: false, ...extra });
        const peer = await server.nextPeer();
        await peer.head;
        await peer.accept();
        return { peer, client: cleanup.add(await connecting, (each) => each.close()) };
      };
      const bystander = await open({});
      const victim = await open(options);
      return { ...victim, bystander: bystander.client, bystanderPeer: bystander.peer };
    }

    /** pending starts `count` calls and resolves with them (marked handled) and the ids the server saw. */
    async function pending(client: RpcClient, peer: ScriptedPeer, count: number, timeout?: number): Promise<{ calls: Promise<unknown>[]; ids: number[] }> {
      const calls = Array.from({ length: count }, (_, i) => client.call('Pending.call', i, timeout === undefined ? {} : { timeout: timeout + i * 50 }));
      for (const each of calls) each.catch(() => undefined);
      const ids: number[] = [];
      for (let i = 0; i < count; i++) ids.push((await peer.nextRequest()).id);
      return { calls, ids };
    }

    async function expectBystanderWorks(bystander: RpcClient, peer: ScriptedPeer): Promise<void> {
      const answer = bystander.call('Still.there', 1);
      await peer.respond((await peer.nextRequest()).id, 'yes');
      expect(await answer).to.equal('yes');
      expectPrototypeClean(PROTOTYPE_KEYS);
    }

    const breaks: Array<[string, (peer: ScriptedPeer, ids: number[]) => Promise<void>, string, number]> = [
      ['answers an unknown id', (peer) => peer.respond(999, 'who asked?'), 'PROTOCOL_ERROR', 3],
      [
        'answers the same id twice',
        (peer, ids) => peer.write(Buffer.concat([encodeMessage({ type: 1, id: ids[0]!, result: 'once' }), encodeMessage({ type: 1, id: ids[0]!, result: 'twice' })])),
        'PROTOCOL_ERROR',
        2,
      ],
      ['sends a frame over the client maxFrameSize', (peer) => peer.write(hex('00 00 08 01')), 'RESOURCE_EXHAUSTED', 3],
      ['sends malformed MessagePack', (peer) => peer.write(frame(hex('94 01 01 c0 c1'))), 'PROTOCOL_ERROR', 3],
      ['sends a record definition', (peer, ids) => peer.write(frame(Buffer.concat([hex('94 01'), pack(ids[0]), hex('c0 d4 72 40 91 a1 61 01')]))), 'PROTOCOL_ERROR', 3],
      ['sends a structured-clone cycle', (peer, ids) => peer.write(frame(Buffer.concat([hex('94 01'), pack(ids[0]), hex('c0 d6 69 00 00 00 01 91 d6 70 00 00 00 01')]))), 'PROTOCOL_ERROR', 3],
    ];

    for (const [what, script, code, failing] of breaks) {
      it(`sends goaway ${code}, closes, and fails every pending call UNAVAILABLE when the server ${what}`, async () => {
        const { peer, client, bystander, bystanderPeer } = await tunnel({ maxFrameSize: 2048 });
        const { calls, ids } = await pending(client, peer, 3);
        await script(peer, ids);
        const rest = await peer.messagesUntilEnd();
        expect(rest.map((message) => message.type)).to.deep.equal([MessageType.Goaway]);
        expect((rest[0] as GoawayMessage).code).to.equal(code);
        await peer.closed;
        const outcomes = await Promise.allSettled(calls);
        const failed = outcomes.filter((outcome) => outcome.status === 'rejected').map((outcome) => (outcome as PromiseRejectedResult).reason as RpcError);
        expect(failed).to.have.length(failing);
        for (const error of failed) {
          expect(error.code).to.equal('UNAVAILABLE');
          expect(mayHaveRunOf(error)).to.equal(true);
        }
        expect((await client.closed)?.code).to.equal('UNAVAILABLE');
        await expectBystanderWorks(bystander, bystanderPeer);
      });
    }

    it('fails all 100 pending calls UNAVAILABLE when the server closes the socket', async () => {
      const { peer, client, bystander, bystanderPeer } = await tunnel();
      const { calls } = await pending(client, peer, 100);
      peer.socket.destroy();
      const outcomes = await Promise.allSettled(calls);
      for (const outcome of outcomes) {
        expect(outcome.status).to.equal('rejected');
        const error = (outcome as PromiseRejectedResult).reason as RpcError;
        expect(error.code).to.equal('UNAVAILABLE');
        expect(mayHaveRunOf(error)).to.equal(true);
      }
      expect(client.pendingCalls).to.equal(0);
      await expectBystanderWorks(bystander, bystanderPeer);
    });

    it('fails each call of a silent server at its own deadline, cancels it, and ignores the late answers', async () => {
      const { peer, client, bystander, bystanderPeer } = await tunnel();
      const { calls, ids } = await pending(client, peer, 3, 100);
      for (const call of calls) await expectRejects(call, 'DEADLINE_EXCEEDED');
      const cancels = [await peer.nextMessage(), await peer.nextMessage(), await peer.nextMessage()];
      expect(cancels).to.deep.equal(ids.map((id) => ({ type: MessageType.Cancel, id })));
      for (const id of ids) await peer.respond(id, 'too late');
      // The tunnel is still in step: a ping is answered and a new call resolves.
      await peer.send({ type: MessageType.Ping, data: 'still there?' });
      expect(await peer.nextMessage()).to.deep.equal({ type: MessageType.Pong, data: 'still there?' });
      const fresh = client.call('After.silence', null);
      await peer.respond((await peer.nextRequest()).id, 'answered');
      expect(await fresh).to.equal('answered');
      expect(client.pendingCalls).to.equal(0);
      await expectBystanderWorks(bystander, bystanderPeer);
    });
  });
});
