/**
 * Hardening, round two: the inputs that killed the server or grew it without bound, each sent over a
 * real socket to a real RpcServer while a bystander tunnel, connected before the attack, keeps getting answers.
 * Memory rows print the figures they measured (this process holds server and attackers both, so bounds are
 * generous) and assert no timing.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { Packr } from 'msgpackr';
import { connect, createClient, type RpcClient, type TypedClient } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import { MessageType, encodeMessage, type GoawayMessage, type Message, type PongMessage, type ResponseMessage } from '@tunnelrpc/protocol/internal';
import type { ServerOptions } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { Hostile, createHostileService, type HostileState } from '../helpers/hostile-service.js';
import { expectErrorResponse, expectResult, frame, hex, RawTunnel, readUntil } from '@tunnelrpc/test-kit';
import { exitOf, spawnNode, waitForLine } from '../helpers/processes.js';
import { startEchoServer, type EchoServer } from '../helpers/servers.js';

const MiB = 1024 * 1024;
const cleanup = new Cleanup();
// Writes maps as they are (no records, any size): the attacker's encoder.
const packr = new Packr({ useRecords: false, variableMapSize: true, useToJSON: false });

interface Rig {
  server: EchoServer;
  hostile: HostileState;
  bystander: RpcClient;
  echo: TypedClient<typeof Echo>;
  port: number;
}

async function rig(options: ServerOptions = {}): Promise<Rig> {
  const server = await startEchoServer(cleanup, { server: { shutdownTimeout: 500, ...options } });
  const { impl, state } = createHostileService();
  server.rpc.register(Hostile, impl);
  // A tunnel from before the attack; attackers that must not share its address dial from 127.0.0.2 or turn off
  // shareByAddress.
  const bystander = cleanup.add(await connect(server.url, { reconnect: false }), (client) => client.close());
  const echo = createClient(Echo, bystander);
  expect(await echo.add({ a: 1, b: 1 })).to.equal(2);
  return { server, hostile: state, bystander, echo, port: server.port! };
}

async function raw(r: Rig, early?: Buffer, localAddress?: string): Promise<RawTunnel> {
  return cleanup.add(await RawTunnel.open(r.port, early, localAddress), (tunnel) => tunnel.destroy());
}

function request(id: number, method: string, params: unknown, meta?: { timeout?: number; headers?: Record<string, string> }): Buffer {
  return encodeMessage(meta === undefined ? { type: 0, id, method, params } : { type: 0, id, method, params, meta });
}

function notification(method: string, params: unknown): Buffer {
  return encodeMessage({ type: 2, method, params });
}

async function bystanderAnswers(r: Rig): Promise<void> {
  expect(await r.echo.add({ a: 20, b: 22 })).to.equal(42);
}

function memory(): { heap: number; buffers: number; rss: number } {
  const usage = process.memoryUsage();
  return { heap: usage.heapUsed, buffers: usage.arrayBuffers, rss: usage.rss };
}

function report(label: string, figures: Record<string, number>): void {
  const shown = Object.entries(figures).map(([name, bytes]) => `${name} ${(bytes / MiB).toFixed(1)} MiB`);
  console.log(`      [${label}] ${shown.join(', ')}`);
}

/** until resolves once `condition` holds, looking again every few ms (the mocha timeout bounds it). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** answers reads `count` messages from a tunnel, in order. */
async function answers(tunnel: RawTunnel, count: number): Promise<Message[]> {
  const out: Message[] = [];
  for (let i = 0; i < count; i++) out.push(await tunnel.next());
  return out;
}

describe('hardening round two: hostile input costs one connection, memory stays bounded', function () {
  this.timeout(60_000);
  afterEach(() => cleanup.run());

  describe('1. values the decoder produced always encode again', () => {
    it('answers the ping {constructor, toJSON} behind 128 running notifications in one write, and lives', async () => {
      const r = await rig();
      // The exact bytes of the report: 128 notifications, then the ping whose pong used to throw in a promise callback.
      const ping = hex('00 00 00 18 92 06 82 ab 63 6f 6e 73 74 72 75 63 74 6f 72 01 a6 74 6f 4a 53 4f 4e 01');
      const notifications = Buffer.concat(Array.from({ length: 128 }, () => notification('Echo.notify', null)));
      const tunnel = await raw(r, Buffer.concat([notifications, ping]));
      const pong = (await tunnel.next()) as PongMessage;
      expect(pong.type).to.equal(MessageType.Pong);
      expect(pong.data).to.deep.equal({ constructor: 1, toJSON: 1 });
      // Byte for byte the ping's data: `[7, data]` with the very bytes that came in.
      tunnel.write(request(1, 'Echo.echo', { toJSON: 'x', constructor: { prototype: 1 }, __proto__x: 2 }));
      expect(expectResult(await tunnel.next(), 1)).to.deep.equal({ toJSON: 'x', constructor: { prototype: 1 }, __proto__x: 2 });
      await bystanderAnswers(r);
    });

    it('echoes back every decodable shape: maps with toJSON/constructor keys, more than 65,535 keys, invalid UTF-8', async () => {
      const r = await rig({ maxKeysPerMap: 100_000 });
      const tunnel = await raw(r);
      const wide: Record<string, number> = {};
      for (let i = 0; i < 70_000; i++) wide[`k${i}`] = i;
      const shapes: unknown[] = [
        { toJSON: 1 },
        { toJSON: { toJSON: 'deeper' } },
        { constructor: 1, hasOwnProperty: 2, valueOf: 3, toString: 4 },
        [{ toJSON: null }, { constructor: [] }],
        wide,
        new Date(0),
        new Uint8Array([1, 2, 3]),
      ];
      for (const [i, shape] of shapes.entries()) {
        tunnel.write(frame(packr.pack([0, i + 1, 'Echo.echo', shape])));
        expect(expectResult(await tunnel.next(), i + 1), `shape ${i}`).to.deep.equal(shape);
      }
      // A str of invalid UTF-8 decodes to U+FFFD; echoing it is allowed to grow it, within maxFrameSize.
      tunnel.write(frame(Buffer.concat([hex('94 00 cd 00 64 a9'), Buffer.from('Echo.echo'), hex('d9 10'), Buffer.alloc(16, 0xff)])));
      expect(expectResult(await tunnel.next(), 100)).to.equal('\ufffd'.repeat(16));
      await bystanderAnswers(r);
    });
  });

  describe('2. running calls are bounded in bytes, not only in values', () => {
    it('refuses headers past maxHeaderBytes and maxHeaderCount, unrun, and lower-cases header names', async () => {
      const r = await rig();
      const tunnel = await raw(r);
      // The report's 8 MiB header string, in 0xff (it decodes to twice its size in the heap).
      const size = 8_388_408;
      const hugeHeader = Buffer.concat([
        hex('95 00 01'),
        packr.pack('Hostile.pace'),
        packr.pack({ ms: 30_000 }),
        hex('82'),
        packr.pack('timeout'),
        packr.pack(30_000),
        packr.pack('headers'),
        hex('81 a1 78 db'),
        Buffer.from([size >>> 24, (size >>> 16) & 0xff, (size >>> 8) & 0xff, size & 0xff]),
        Buffer.alloc(size, 0xff),
      ]);
      tunnel.write(frame(hugeHeader));
      expect(expectErrorResponse(await tunnel.next(), 1, 'INVALID_ARGUMENT').message).to.include('maxHeaderBytes 8192');
      const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`h${i}`, 'v']));
      tunnel.write(request(2, 'Echo.add', { a: 1, b: 2 }, { headers: many }));
      expect(expectErrorResponse(await tunnel.next(), 2, 'INVALID_ARGUMENT').message).to.include('maxHeaderCount 64');
      tunnel.write(request(3, 'Echo.add', { a: 1, b: 2 }, { headers: { 'X-A': '1', 'x-a': '2' } }));
      expect(expectErrorResponse(await tunnel.next(), 3, 'INVALID_ARGUMENT').message).to.include('twice');
      expect(r.hostile.calls['pace']).to.equal(undefined);
      tunnel.write(request(4, 'Echo.add', { a: 1, b: 2 }, { headers: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`h${i}`, 'v'])) }));
      expect(expectResult(await tunnel.next(), 4)).to.equal(3);
      await bystanderAnswers(r);
    });

    it('holds at most maxBytesInFlight of params across tunnels: 32 calls of 4 MiB, 3 run, the rest are refused', async () => {
      const r = await rig({ maxBytesInFlight: 16 * MiB, shareByAddress: false });
      const pad = 'x'.repeat(4 * MiB);
      const start = memory();
      const tunnels = await Promise.all(Array.from({ length: 8 }, () => raw(r)));
      for (const tunnel of tunnels) {
        for (let i = 1; i <= 4; i++) tunnel.write(request(i, 'Hostile.pace', { ms: 60_000, pad }, { timeout: 60_000 }));
      }
      // Every call either runs (holding its 4 MiB) or is answered at once; none waits unanswered.
      const answered = (): number => tunnels.reduce((sum, tunnel) => sum + tunnel.messages.length, 0);
      await until(() => answered() + r.hostile.running >= 32);
      const grown = memory();
      report('32 x 4 MiB params, maxBytesInFlight 16 MiB', { heap: grown.heap - start.heap, rss: grown.rss - start.rss });
      // Three frames of 4 MiB and a few bytes fit under 16 MiB; a fourth would not.
      expect(r.hostile.running, 'calls holding their params').to.equal(3);
      for (const message of tunnels.flatMap((tunnel) => tunnel.messages)) {
        expect((message as ResponseMessage).error?.data).to.deep.include({ limit: 'maxBytesInFlight', mayHaveRun: false });
      }
      await bystanderAnswers(r);
    });
  });

  describe('3. notifications count against the global limits', () => {
    it('runs at most maxCallsInFlight handlers for notifications, drops the rest with a log line, and refuses requests', async () => {
      const r = await rig({ maxCallsInFlight: 20, shareByAddress: false });
      const tunnels = await Promise.all(Array.from({ length: 5 }, () => raw(r)));
      for (const tunnel of tunnels) tunnel.write(Buffer.concat(Array.from({ length: 20 }, () => notification('Hostile.pace', { ms: 60_000 }))));
      // Wait for all 100 notifications to be decided: each one past the limits leaves a log line.
      const dropped = (): number => r.server.logs.filter((line) => line.includes('notification dropped')).length;
      await until(() => dropped() + r.hostile.running >= 100);
      expect(r.hostile.mostRunning).to.be.at.most(20);
      // The last eighth of the cap is kept for holders that hold nothing yet; the five tunnels took the rest.
      expect(r.hostile.running).to.be.at.least(17);
      expect(r.server.logs.find((line) => line.includes('notification dropped'))).to.include('maxCallsInFlight 20');
      // A newcomer gets one slot, then is refused like the rest once the cap is full.
      const probe = await raw(r);
      probe.write(Buffer.concat([request(1, 'Hostile.pace', { ms: 60_000 }, { timeout: 60_000 }), request(2, 'Hostile.pace', { ms: 60_000 }, { timeout: 60_000 })]));
      expect(expectErrorResponse(await probe.next(), 2, 'RESOURCE_EXHAUSTED').message).to.include('maxCallsInFlight 20');
      expect(r.hostile.running).to.be.at.most(20);
    });
  });

  describe('4. one address cannot starve everyone', () => {
    it('keeps answering a client from another address while 4 tunnels from one address pipeline 128 sleeps each', async () => {
      const r = await rig({ maxCallsInFlight: 200 });
      const hogs = await Promise.all(Array.from({ length: 4 }, () => raw(r)));
      for (const hog of hogs) hog.write(Buffer.concat(Array.from({ length: 128 }, (_, i) => request(i + 1, 'Hostile.pace', { ms: 60_000 }, { timeout: 60_000 }))));
      // The hogs' address stops at half the cap: the other 412 calls are refused at once, not queued.
      const answered = (): number => hogs.reduce((sum, hog) => sum + hog.messages.length, 0);
      await until(() => answered() + r.hostile.running >= 512);
      expect(r.hostile.running).to.equal(100);
      for (const message of hogs.flatMap((hog) => hog.messages)) expect((message as ResponseMessage).error?.code).to.equal('RESOURCE_EXHAUSTED');
      // Another address, a fresh tunnel: answered at once, and so are its own sleeps.
      const other = await raw(r, undefined, '127.0.0.2');
      other.write(Buffer.concat([request(1, 'Echo.add', { a: 2, b: 3 }), request(2, 'Hostile.pace', { ms: 0 })]));
      const [first, second] = await answers(other, 2);
      expect(expectResult(first!, 1)).to.equal(5);
      expect(expectResult(second!, 2)).to.equal(0);
    });

    it('shares between tunnels of one address when shareByAddress is off (behind a balancer)', async () => {
      const r = await rig({ maxCallsInFlight: 100, shareByAddress: false });
      const hog = await raw(r);
      hog.write(Buffer.concat(Array.from({ length: 128 }, (_, i) => request(i + 1, 'Hostile.pace', { ms: 60_000 }, { timeout: 60_000 }))));
      await r.hostile.paceStarted(50);
      const refusedCount = 128 - 50;
      const refused = await answers(hog, refusedCount);
      for (const message of refused) expect((message as ResponseMessage).error?.message).to.include('this connection holds more than its fair share');
      expect(r.hostile.running).to.equal(50);
      await bystanderAnswers(r);
    });
  });

  describe('5. smaller defects', () => {
    it('escapes peer text in the log, and writes at most maxLogEntriesPerSecond entries', async () => {
      const r = await rig({ maxLogEntriesPerSecond: 50 });
      const tunnel = await raw(r);
      const started = Date.now();
      const forged = '\n2026-11-29 [INFO] all good\u001b[31m';
      tunnel.write(Buffer.concat(Array.from({ length: 5000 }, () => notification('Echo.add', { a: 1, b: 2, [forged]: 1 }))));
      tunnel.write(request(1, 'Echo.add', { a: 1, b: 2 }));
      expect(expectResult(await tunnel.next(), 1)).to.equal(3);
      const elapsed = (Date.now() - started) / 1000;
      const lines = r.server.logs.filter((line) => !line.includes('log entries were dropped'));
      expect(lines.length).to.be.at.least(1);
      for (const line of lines) expect(line).to.not.match(/[\u0000-\u001f\u007f]/);
      expect(lines.some((line) => line.includes('\\u000a2026-11-29 [INFO] all good\\u001b[31m'))).to.equal(true);
      // A burst of 50, then 50 a second: whatever the speed of this machine, far fewer than 5,000.
      expect(lines.length).to.be.at.most(50 + Math.ceil(elapsed * 50) + 1);
      await bystanderAnswers(r);
    });

    it('answers a ping with the same bytes (no 3x pong), and closes a tunnel whose ping data passes 1 KiB', async () => {
      const r = await rig();
      const tunnel = await raw(r);
      const data = Buffer.concat([hex('d9 f0'), Buffer.alloc(0xf0, 0xff)]);
      tunnel.write(frame(Buffer.concat([hex('92 06'), data])));
      const pong = (await tunnel.next()) as PongMessage;
      expect(pong.type).to.equal(MessageType.Pong);
      expect(pong.data).to.equal('\ufffd'.repeat(0xf0));
      const big = await raw(r);
      big.write(frame(Buffer.concat([hex('92 06 db 00 10 00 00'), Buffer.alloc(MiB, 0xff)])));
      const messages = await big.messagesUntilClose();
      const goaway = messages.at(-1) as GoawayMessage;
      expect(goaway.type).to.equal(MessageType.Goaway);
      expect(goaway.code).to.equal('PROTOCOL_ERROR');
      expect(goaway.message).to.include('ping data');
      await bystanderAnswers(r);
    });

    it('keeps a key placed in params out of INVALID_ARGUMENT beyond 64 escaped characters', async () => {
      const r = await rig();
      const tunnel = await raw(r);
      const key = `secret-${'k'.repeat(10_000)}\r\n`;
      tunnel.write(request(1, 'Echo.add', { a: 1, b: 2, [key]: 1 }));
      const error = expectErrorResponse(await tunnel.next(), 1, 'INVALID_ARGUMENT');
      expect(error.message.length).to.be.below(400);
      expect(error.message).to.not.include('\r');
      expect(JSON.stringify(error.data).length).to.be.below(1000);
    });

    it('refuses params with more keys in one map than maxKeysPerMap before zod runs', async () => {
      const r = await rig();
      const tunnel = await raw(r);
      const params: Record<string, number> = { a: 1, b: 2 };
      for (let i = 0; i < 131_000; i++) params[`u${i}`] = i;
      tunnel.write(frame(packr.pack([0, 1, 'Echo.add', params])));
      const error = expectErrorResponse(await tunnel.next(), 1, 'INVALID_ARGUMENT');
      expect(error.message).to.include('131002 keys, more than maxKeysPerMap 8192');
      expect(error.data).to.deep.include({ mayHaveRun: false });
      await bystanderAnswers(r);
    });

    for (const [label, head] of [
      ['an HTTP/0.9-style CONNECT', 'CONNECT /_rpc\r\n\r\n'],
      ['an HTTP/1.1 CONNECT without Host', 'CONNECT /_rpc HTTP/1.1\r\n\r\n'],
      ['a CONNECT with a Content-Length body', 'CONNECT /_rpc HTTP/1.0\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello'],
      ['a CONNECT with a chunked body', 'CONNECT /_rpc HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
    ] as const) {
      it(`answers 400 to ${label}, as HTTP does`, async () => {
        const r = await rig();
        const socket = netConnect({ host: '127.0.0.1', port: r.port });
        cleanup.add(socket, (each) => each.destroy());
        await once(socket, 'connect');
        socket.write(head);
        const reply = (await readUntil(socket, '\r\n\r\n')).toString('latin1');
        expect(reply).to.match(/^HTTP\/1\.[01] 400 /);
        expect(r.server.rpc.connectionCount).to.equal(1);
        await bystanderAnswers(r);
      });
    }

    it('bounds unfinished frames across tunnels by maxPartialFrameBytes: 64 stalled tunnels hold about the cap', async () => {
      const r = await rig({ maxPartialFrameBytes: 8 * MiB, frameTimeout: 2000 });
      const start = memory();
      // The attacker runs in its own process: its unsent bytes must not count as the server's.
      const attacker = spawnNode(['test/dist/scripts/stalled-frames.js', String(r.port), '64', String(8 * MiB), String(MiB)]);
      cleanup.add(attacker, (child) => child.kill());
      await waitForLine(attacker, /^stalled 64$/);
      // Until the server has read all it will, the tunnels keep arriving; the bystander's answer marks a later point.
      await until(() => r.server.rpc.connectionCount === 65);
      await bystanderAnswers(r);
      const held = memory();
      report('64 stalled 8 MiB frames with 1 MiB sent, maxPartialFrameBytes 8 MiB', { buffers: held.buffers - start.buffers, rss: held.rss - start.rss });
      // Unbounded, 64 partial frames of 1 MiB each hold 64 MiB of buffers (70 MiB measured with the cap at 1 GiB).
      expect(held.buffers - start.buffers).to.be.below(48 * MiB);
      // frameTimeout frees the room: every stalled tunnel is closed in the end, and the attacker exits.
      expect((await exitOf(attacker)).code).to.equal(0);
      await bystanderAnswers(r);
    });
  });
});
