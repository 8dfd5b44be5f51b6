import { expect } from 'chai';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { RpcError } from '@tunnelrpc/protocol';
import { DEFAULT_DECODE_LIMITS, MessageType, encodeMessage, scanMessagePack, type ResponseMessage } from '@tunnelrpc/protocol/internal';
import { RpcServer, type ServerOptions } from '@tunnelrpc/server';
import { CONNECT_HEAD, expectErrorResponse, expectGoaway, expectResult, hex, type RawTunnel, request } from '@tunnelrpc/test-kit';
import { cleanup, openTunnel, startServer, exchange } from './helpers.js';

/**
 * echoOfPayloadSize builds a Svc.echo request whose payload (after the 4-byte header) is exactly `size` bytes, and
 * returns it with the string it carries.
 */
function echoOfPayloadSize(size: number): { frame: Buffer; text: string } {
  // A str16 (256 … 65535 bytes) keeps a 3-byte header, so the payload grows one byte per character.
  const base = request(1, 'Svc.echo', 'x'.repeat(300)).length - 4 - 300;
  const text = 'x'.repeat(size - base);
  const frame = request(1, 'Svc.echo', text);
  expect(frame.length - 4).to.equal(size);
  return { frame, text };
}

/** resultSizeForPayload returns the string length whose successful response to id 1 has a payload of `size` bytes. */
function resultSizeForPayload(size: number): number {
  const base = encodeMessage({ type: MessageType.Response, id: 1, result: 'x'.repeat(300) }).length - 4 - 300;
  return size - base;
}

describe('RpcServer limits and timers', () => {
  afterEach(cleanup);

  describe('options', () => {
    for (const [name, options] of [
      ['maxFrameSize', { maxFrameSize: 0 }],
      ['maxFrameSize', { maxFrameSize: 2 ** 32 }],
      ['maxDepth', { maxDepth: 1 }],
      ['maxItemsPerFrame', { maxItemsPerFrame: 0 }],
      ['maxConnections', { maxConnections: 0 }],
      ['maxInFlight', { maxInFlight: 1.5 }],
      ['maxCallsInFlight', { maxCallsInFlight: -1 }],
      ['maxWriteBuffer', { maxWriteBuffer: 0 }],
      ['frameTimeout', { frameTimeout: -1 }],
      ['idleTimeout', { idleTimeout: Number.NaN }],
      ['defaultTimeout', { defaultTimeout: 0 }],
      ['shutdownTimeout', { shutdownTimeout: 2 ** 31 }],
      ['path', { path: 'no-slash' }],
    ] as [string, ServerOptions][]) {
      it(`throws RpcError INVALID_ARGUMENT naming ${name} for ${JSON.stringify(options)}`, () => {
        let thrown: unknown;
        try {
          new RpcServer(options);
        } catch (error) {
          thrown = error;
        }
        expect(thrown).to.be.instanceOf(RpcError);
        expect((thrown as RpcError).code).to.equal('INVALID_ARGUMENT');
        expect((thrown as RpcError).message).to.include(name);
      });
    }

    it('accepts the boundaries of the ranges and undefined for defaults', () => {
      expect(() => new RpcServer({ maxFrameSize: 1, maxDepth: 2, maxItemsPerFrame: 1, maxConnections: 1 })).to.not.throw();
      expect(() => new RpcServer({ maxFrameSize: 2 ** 32 - 1, maxDepth: 1000, idleTimeout: 0, frameTimeout: 0 })).to.not.throw();
      expect(() => new RpcServer({ maxFrameSize: undefined, maxInFlight: undefined })).to.not.throw();
    });
  });

  describe('maxFrameSize', () => {
    it('accepts a request frame of exactly maxFrameSize and refuses maxFrameSize + 1 at its header', async () => {
      const server = await startServer({ maxFrameSize: 1024 });
      const tunnel = await openTunnel(server.port);
      const exact = echoOfPayloadSize(1024);
      await tunnel.write(exact.frame);
      expect(expectResult(await tunnel.next(), 1)).to.equal(exact.text);

      const over = echoOfPayloadSize(1025);
      // Only the header: the refusal must not wait for the payload.
      await tunnel.write(over.frame.subarray(0, 4));
      const goaway = expectGoaway(await tunnel.next(), 'RESOURCE_EXHAUSTED');
      expect(goaway.lastId).to.equal(1);
      expect(goaway.message).to.include('1025').and.include('1024');
      await tunnel.closed;
    });

    it('sends a result of exactly maxFrameSize and answers RESOURCE_EXHAUSTED to one byte more, keeping the connection', async () => {
      const server = await startServer({ maxFrameSize: 1024 });
      const tunnel = await openTunnel(server.port);
      const fits = resultSizeForPayload(1024);
      expect((expectResult(await tunnel.call(1, 'Svc.big', { size: fits }), 1) as string).length).to.equal(fits);
      const error = expectErrorResponse(await tunnel.call(1, 'Svc.big', { size: fits + 1 }), 1, 'RESOURCE_EXHAUSTED');
      expect(error.message).to.include('maxFrameSize 1024');
      expect(error.data).to.deep.equal({ size: 1025, maxFrameSize: 1024, mayHaveRun: true });
      expect(expectResult(await tunnel.call(2, 'Svc.add', { a: 1, b: 2 }), 2)).to.equal(3);
    });
  });

  describe('frameTimeout', () => {
    it('sends goaway and closes a peer that sends a header declaring 100 bytes, then 10 bytes, then stalls', async () => {
      const server = await startServer({ frameTimeout: 300 });
      const bystander = await openTunnel(server.port);
      const slow = await openTunnel(server.port);
      await slow.write(Buffer.concat([hex('00 00 00 64'), Buffer.alloc(10, 0x90)]));
      const goaway = expectGoaway(await slow.next(), 'PROTOCOL_ERROR');
      expect(goaway.message).to.include('frameTimeout 300');
      await slow.closed;
      expect(expectResult(await bystander.call(1, 'Svc.echo', [64]), 1)).to.deep.equal([64]);
    });

    it('does not time out a partial frame while the server itself has stopped reading at maxInFlight', async () => {
      const server = await startServer({ frameTimeout: 300, maxInFlight: 1 });
      const tunnel = await openTunnel(server.port);
      await tunnel.write(request(1, 'Svc.hold', null));
      await server.probe.waitFor('hold');
      const third = request(3, 'Svc.add', { a: 3, b: 3 });
      // Request 2 waits in the server's backlog; request 3 is half read when the server stops reading.
      await tunnel.write(Buffer.concat([request(2, 'Svc.add', { a: 2, b: 2 }), third.subarray(0, 5)]));
      // A peer that really stalls, opened later, is timed out: by then the first tunnel's partial frame is older.
      const clock = await openTunnel(server.port);
      await clock.write(hex('00 00 00 64 90'));
      expectGoaway(await clock.next(), 'PROTOCOL_ERROR');
      server.probe.release();
      expect(expectResult(await tunnel.next(), 1)).to.equal('released');
      expect(expectResult(await tunnel.next(), 2)).to.equal(4);
      await tunnel.write(third.subarray(5));
      expect(expectResult(await tunnel.next(), 3)).to.equal(6);
    });
  });

  describe('idleTimeout', () => {
    it('sends goaway UNAVAILABLE to an idle tunnel and closes it', async () => {
      const server = await startServer({ idleTimeout: 300 });
      const tunnel = await openTunnel(server.port);
      const goaway = expectGoaway(await tunnel.next(), 'UNAVAILABLE');
      expect(goaway.lastId).to.equal(0);
      expect(goaway.message).to.include('idle');
      await tunnel.closed;
      expect(tunnel.pending).to.equal(0);
    });

    it('reports the last request taken as lastId in the idle goaway', async () => {
      const server = await startServer({ idleTimeout: 300 });
      const tunnel = await openTunnel(server.port);
      expect(expectResult(await tunnel.call(17, 'Svc.add', { a: 1, b: 2 }), 17)).to.equal(3);
      expect(expectGoaway(await tunnel.next(), 'UNAVAILABLE').lastId).to.equal(17);
      await tunnel.closed;
    });

    it('keeps a tunnel open past idleTimeout while a call runs', async () => {
      const server = await startServer({ idleTimeout: 300 });
      const busy = await openTunnel(server.port);
      await busy.write(request(1, 'Svc.hold', null));
      await server.probe.waitFor('hold');
      // A tunnel opened after the call started gets its idle goaway: the busy one has been silent longer by then.
      const idle = await openTunnel(server.port);
      expectGoaway(await idle.next(), 'UNAVAILABLE');
      server.probe.release();
      // The busy tunnel was not drained: its first message is the answer, and it still takes calls.
      expect(expectResult(await busy.next(), 1)).to.equal('released');
      expect(expectResult(await busy.call(2, 'Svc.add', { a: 1, b: 1 }), 2)).to.equal(2);
    });

    it('keeps a tunnel open while it sends pings', async () => {
      const server = await startServer({ idleTimeout: 300, minPingInterval: 0 });
      const pinging = await openTunnel(server.port);
      const idle = await openTunnel(server.port);
      // The client pings every 50 ms until the idle tunnel, opened at the same time, has been sent its goaway.
      const pinger = setInterval(() => void pinging.send({ type: MessageType.Ping, data: 'keepalive' }).catch(() => {}), 50);
      try {
        expectGoaway(await idle.next(), 'UNAVAILABLE');
      } finally {
        clearInterval(pinger);
      }
      // Pongs may still be on their way; after them comes the answer to a call, not a goaway.
      await pinging.write(request(1, 'Svc.add', { a: 1, b: 1 }));
      let message = await pinging.next();
      while (message.type === MessageType.Pong) message = await pinging.next();
      expect(expectResult(message, 1)).to.equal(2);
    });
  });

  describe('keepaliveInterval', () => {
    it('pings a silent client with a call running and destroys the tunnel when nothing comes back', async () => {
      const server = await startServer({ keepaliveInterval: 100, keepaliveTimeout: 100 });
      const silent = await openTunnel(server.port);
      const other = await openTunnel(server.port);
      await silent.write(request(1, 'Svc.hang', null, { timeout: 60_000 }));
      const { ctx } = await server.probe.waitFor('hang');
      expect((await silent.next()).type).to.equal(MessageType.Ping);
      await silent.closed;
      expect(ctx.signal.aborted).to.equal(true);
      expect(expectResult(await other.call(1, 'Svc.add', { a: 1, b: 1 }), 1)).to.equal(2);
    });

    it('keeps a tunnel whose client answers the pings while its call runs', async () => {
      const server = await startServer({ keepaliveInterval: 100, keepaliveTimeout: 100 });
      const tunnel = await openTunnel(server.port);
      await tunnel.write(request(1, 'Svc.hang', null, { timeout: 60_000 }));
      const { ctx } = await server.probe.waitFor('hang');
      for (let i = 0; i < 3; i++) {
        const ping = await tunnel.next();
        expect(ping.type).to.equal(MessageType.Ping);
        await tunnel.send({ type: MessageType.Pong, data: (ping as { data: unknown }).data });
      }
      expect(ctx.signal.aborted).to.equal(false);
      await tunnel.send({ type: MessageType.Cancel, id: 1 });
      expectErrorResponse(await tunnel.next(), 1, 'CANCELLED');
    });

    it('does not ping a client with no call running', async () => {
      const server = await startServer({ keepaliveInterval: 50, keepaliveTimeout: 50, idleTimeout: 400 });
      const tunnel = await openTunnel(server.port);
      // The first thing the idle tunnel hears is the idle goaway, never a ping.
      expectGoaway(await tunnel.next(), 'UNAVAILABLE');
    });
  });

  describe('minPingInterval', () => {
    it('closes a tunnel with goaway RESOURCE_EXHAUSTED after maxPingStrikes fast pings without calls', async () => {
      const server = await startServer({ minPingInterval: 60_000, maxPingStrikes: 2 });
      const flooder = await openTunnel(server.port);
      const other = await openTunnel(server.port);
      // The first ping sets the clock; two more are strikes and answered; the fourth is one too many.
      for (let i = 0; i < 3; i++) {
        await flooder.send({ type: MessageType.Ping, data: i });
        expect(await flooder.next()).to.deep.equal({ type: MessageType.Pong, data: i });
      }
      await flooder.send({ type: MessageType.Ping, data: 3 });
      const goaway = expectGoaway(await flooder.next(), 'RESOURCE_EXHAUSTED');
      expect(goaway.message).to.include('too many pings');
      await flooder.closed;
      expect(expectResult(await other.call(1, 'Svc.add', { a: 2, b: 2 }), 1)).to.equal(4);
    });

    it('forgives fast pings from a tunnel that sends calls between them', async () => {
      const server = await startServer({ minPingInterval: 60_000, maxPingStrikes: 1 });
      const tunnel = await openTunnel(server.port);
      for (let i = 1; i <= 4; i++) {
        await tunnel.send({ type: MessageType.Ping, data: i });
        expect(await tunnel.next()).to.deep.equal({ type: MessageType.Pong, data: i });
        expect(expectResult(await tunnel.call(i, 'Svc.add', { a: i, b: 0 }), i)).to.equal(i);
      }
    });
  });

  describe('maxConnectionsPerIp', () => {
    it('takes a 257th tunnel from one address by default: it defaults to maxConnections (a balancer is one address)', async () => {
      const server = await startServer();
      for (let i = 0; i < 257; i++) await openTunnel(server.port);
      expect(server.rpc.connectionCount).to.equal(257);
    });

    it('defaults to the value of maxConnections when that is set', async () => {
      const server = await startServer({ maxConnections: 2 });
      await openTunnel(server.port);
      await openTunnel(server.port);
      expect((await exchange(server.port, CONNECT_HEAD)).body).to.include('maxConnections 2');
    });

    it('answers 503 to the next tunnel from an address at its limit, and takes one again after a close', async () => {
      const server = await startServer({ maxConnectionsPerIp: 2 });
      const first = await openTunnel(server.port);
      await openTunnel(server.port);
      const refused = await exchange(server.port, CONNECT_HEAD);
      expect(refused.status).to.equal(503);
      expect(refused.body).to.include('maxConnectionsPerIp 2');
      expect(refused.body).to.include('behind a TCP balancer every tunnel comes from its address unless the server reads the PROXY protocol');
      first.socket.destroy();
      await first.closed;
      // The server counts the close when its own socket closes; then a CONNECT from the same address is taken.
      while (server.rpc.connectionCount > 1) await new Promise((resolve) => setImmediate(resolve));
      const reopened = await openTunnel(server.port);
      expect(expectResult(await reopened.call(1, 'Svc.add', { a: 1, b: 1 }), 1)).to.equal(2);
    });
  });

  describe('maxInFlight', () => {
    it('runs at most maxInFlight calls of a connection at once and answers every pipelined call', async () => {
      const server = await startServer({ maxInFlight: 4 });
      const tunnel = await openTunnel(server.port);
      const frames: Buffer[] = [];
      for (let id = 1; id <= 50; id++) frames.push(request(id, 'Svc.slow', { ms: 5 }));
      await tunnel.write(Buffer.concat(frames));
      const answered = new Set<number>();
      for (let i = 0; i < 50; i++) {
        const message = await tunnel.next();
        expect(message.type).to.equal(MessageType.Response);
        const response = message as ResponseMessage;
        expect(expectResult(response, response.id)).to.deep.equal({ slept: 5 });
        answered.add(response.id);
      }
      expect(answered.size).to.equal(50);
      expect(server.probe.entered('slow')).to.equal(50);
      expect(server.probe.maxRunning).to.equal(4);
    });

    it('counts running notifications toward maxInFlight', async () => {
      const server = await startServer({ maxInFlight: 2 });
      const tunnel = await openTunnel(server.port);
      await tunnel.write(
        Buffer.concat([
          encodeMessage({ type: MessageType.Notification, method: 'Svc.slow', params: { ms: 20 } }),
          encodeMessage({ type: MessageType.Notification, method: 'Svc.slow', params: { ms: 20 } }),
          request(1, 'Svc.slow', { ms: 20 }),
        ]),
      );
      expect(expectResult(await tunnel.next(), 1)).to.deep.equal({ slept: 20 });
      expect(server.probe.entered('slow')).to.equal(3);
      expect(server.probe.maxRunning).to.equal(2);
    });
  });

  describe('maxItemsInFlight', () => {
    // The values a request frame holds, as the server counts them (the pre-scan's count).
    const itemsOf = (frame: Buffer): number => scanMessagePack(frame.subarray(4), DEFAULT_DECODE_LIMITS);

    for (const [label, slack, code] of [
      ['takes a call whose params exactly fill maxItemsInFlight', 0, undefined],
      ['answers RESOURCE_EXHAUSTED to a call one value over maxItemsInFlight', -1, 'RESOURCE_EXHAUSTED'],
    ] as const) {
      it(`${label}, counting the params of the calls still running`, async () => {
        const held = request(1, 'Svc.hang', null);
        const next = request(2, 'Svc.add', { a: 1, b: 2 });
        // The second call comes on its own tunnel: a tunnel holding nothing may always take a call up to the hard cap,
        // whatever the fair shares say (those are tested in the reliability suite).
        const server = await startServer({ maxItemsInFlight: itemsOf(held) + itemsOf(next) + slack, shareByAddress: false });
        const tunnel = await openTunnel(server.port);
        const other = await openTunnel(server.port);
        await tunnel.write(held);
        await server.probe.waitFor('hang');
        await other.write(next);
        if (code === undefined) {
          expect(expectResult(await other.next(), 2)).to.equal(3);
        } else {
          expect(expectErrorResponse(await other.next(), 2, code).message).to.include('maxItemsInFlight');
          expect(server.probe.entered('add')).to.equal(0);
        }
        // Cancelling the held call gives its values back: the same call now fits.
        await tunnel.send({ type: MessageType.Cancel, id: 1 });
        expectErrorResponse(await tunnel.next(), 1, 'CANCELLED');
        expect(expectResult(await tunnel.call(3, 'Svc.add', { a: 2, b: 2 }), 3)).to.equal(4);
      });
    }
  });

  describe('maxCallsInFlight', () => {
    it('answers RESOURCE_EXHAUSTED without running the handler past the global limit, across tunnels', async () => {
      const server = await startServer({ maxCallsInFlight: 2, shareByAddress: false });
      const a = await openTunnel(server.port);
      const b = await openTunnel(server.port);
      await a.write(request(1, 'Svc.hold', null));
      await b.write(request(1, 'Svc.hold', null));
      await server.probe.waitFor('hold', 1);
      const error = expectErrorResponse(await a.call(2, 'Svc.add', { a: 1, b: 2 }), 2, 'RESOURCE_EXHAUSTED');
      expect(error.message).to.include('maxCallsInFlight 2');
      expect(server.probe.entered('add')).to.equal(0);
      server.probe.release();
      expect(expectResult(await a.next(), 1)).to.equal('released');
      expect(expectResult(await b.next(), 1)).to.equal('released');
      // The slots are free again, also after calls that ended by cancel or deadline.
      await a.write(request(3, 'Svc.hang', null, { timeout: 50 }));
      expectErrorResponse(await a.next(), 3, 'DEADLINE_EXCEEDED');
      await b.write(request(3, 'Svc.hang', null));
      await server.probe.waitFor('hang', 1);
      await b.send({ type: MessageType.Cancel, id: 3 });
      expectErrorResponse(await b.next(), 3, 'CANCELLED');
      expect(expectResult(await a.call(4, 'Svc.add', { a: 1, b: 2 }), 4)).to.equal(3);
      expect(expectResult(await b.call(4, 'Svc.add', { a: 2, b: 2 }), 4)).to.equal(4);
    });

    it('frees the global slots of a connection that is reset', async () => {
      const server = await startServer({ maxCallsInFlight: 1 });
      const a = await openTunnel(server.port);
      await a.write(request(1, 'Svc.hang', null));
      const { ctx } = await server.probe.waitFor('hang');
      a.socket.resetAndDestroy();
      await once(ctx.signal, 'abort');
      expect((ctx.signal.reason as RpcError).code).to.equal('CANCELLED');
      const b = await openTunnel(server.port);
      expect(expectResult(await b.call(1, 'Svc.add', { a: 1, b: 2 }), 1)).to.equal(3);
    });
  });

  describe('maxWriteBuffer and drainTimeout', () => {
    /** flood pauses the client's reading and pipelines `count` calls of Svc.big returning `size` bytes each. */
    async function flood(tunnel: RawTunnel, count: number, size: number): Promise<void> {
      tunnel.socket.pause();
      const frames: Buffer[] = [];
      for (let id = 1; id <= count; id++) frames.push(request(id, 'Svc.big', { size }));
      await tunnel.write(Buffer.concat(frames));
    }

    it('answers two results near maxFrameSize made in one tick, though together they pass maxWriteBuffer', async () => {
      // Default limits: maxFrameSize 8 MiB, maxWriteBuffer 9 MiB. The client reads only after both are queued.
      const server = await startServer();
      const tunnel = await openTunnel(server.port);
      const size = 7 * 1024 * 1024;
      await flood(tunnel, 2, size);
      await server.probe.waitFor('big', 1);
      tunnel.socket.resume();
      for (let i = 0; i < 2; i++) {
        const response = (await tunnel.next()) as ResponseMessage;
        expect((response.result as string).length).to.equal(size);
      }
      expect(expectResult(await tunnel.call(3, 'Svc.add', { a: 1, b: 2 }), 3)).to.equal(3);
    });

    it('answers three results near maxFrameSize made at once, holding the third until the socket drains', async () => {
      const server = await startServer();
      const tunnel = await openTunnel(server.port);
      const size = 7 * 1024 * 1024;
      await flood(tunnel, 3, size);
      await server.probe.waitFor('big', 2);
      tunnel.socket.resume();
      for (let i = 0; i < 3; i++) {
        const response = (await tunnel.next()) as ResponseMessage;
        expect((response.result as string).length).to.equal(size);
      }
      expect(expectResult(await tunnel.call(4, 'Svc.add', { a: 1, b: 2 }), 4)).to.equal(3);
    });

    it('destroys a connection whose peer never reads once maxWriteBuffer is queued, and keeps serving others', async () => {
      const server = await startServer({ maxWriteBuffer: 1024 * 1024, writeHighWaterMark: 256 * 1024 });
      const bystander = await openTunnel(server.port);
      const reader = await openTunnel(server.port);
      const hog = await openTunnel(server.port);
      await flood(hog, 100, 256 * 1024);
      const { ctx } = await server.probe.waitFor('big');
      const serverSide: Socket = ctx.socket;
      await once(serverSide, 'close');
      // A client that reads gets the same results in full.
      const response = (await reader.call(1, 'Svc.big', { size: 256 * 1024 })) as ResponseMessage;
      expect((response.result as string).length).to.equal(256 * 1024);
      expect(expectResult(await bystander.call(1, 'Svc.add', { a: 1, b: 2 }), 1)).to.equal(3);
      // The hog, once it reads, finds fewer than its 100 answers and then the end of the connection.
      hog.socket.resume();
      await hog.closed;
      let answers = 0;
      while (hog.pending > 0) {
        await hog.next();
        answers++;
      }
      expect(answers).to.be.below(100);
      expect(server.rpc.connectionCount).to.equal(2);
    });

    it('destroys a connection that stays above writeHighWaterMark for drainTimeout', async () => {
      const server = await startServer({ drainTimeout: 300, writeHighWaterMark: 64 * 1024, maxWriteBuffer: 2 ** 31 });
      const bystander = await openTunnel(server.port);
      const hog = await openTunnel(server.port);
      await flood(hog, 32, 1024 * 1024);
      const { ctx } = await server.probe.waitFor('big');
      await once(ctx.socket, 'close');
      expect(expectResult(await bystander.call(1, 'Svc.add', { a: 1, b: 2 }), 1)).to.equal(3);
    });
  });
});
