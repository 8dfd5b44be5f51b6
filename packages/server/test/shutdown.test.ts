import { expect } from 'chai';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type RpcError } from '@tunnelrpc/protocol';
import { MessageType, encodeMessage } from '@tunnelrpc/protocol/internal';
import type { RpcServer } from '@tunnelrpc/server';
import { CONNECT_HEAD, expectErrorResponse, expectGoaway, expectResult, request } from '@tunnelrpc/test-kit';
import { cleanup, dial, readReply, write, exchange, openTunnel, startServer } from './helpers.js';

/** hasSettled tells, after the current I/O turn, whether a promise has settled. */
async function hasSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

describe('RpcServer shutdown', () => {
  afterEach(cleanup);

  describe('#close', () => {
    it('sends goaway UNAVAILABLE with the id of the call in flight, answers it, then closes and resolves', async () => {
      const server = await startServer({ shutdownTimeout: 10_000 });
      const tunnel = await openTunnel(server.port);
      await tunnel.write(request(7, 'Svc.hold', null));
      await server.probe.waitFor('hold');
      // Connected before close(), so the TCP connection is accepted; its CONNECT comes during the shutdown.
      const late = await dial(server.port);

      const closing = server.rpc.close();
      const goaway = expectGoaway(await tunnel.next(), 'UNAVAILABLE');
      expect(goaway.lastId).to.equal(7);
      expect(goaway.message).to.include('shutting down');
      expect(await hasSettled(closing)).to.equal(false);

      // A CONNECT during the shutdown is refused.
      const refusal = readReply(late);
      await write(late, CONNECT_HEAD);
      const refused = await refusal;
      expect(refused.status).to.equal(503);
      expect(refused.headers['connection']).to.equal('close');
      expect(server.rpc.connectionCount).to.equal(1);

      // A request that crosses the goaway is dropped; the pong proves the server read it.
      await tunnel.write(Buffer.concat([request(8, 'Svc.add', { a: 1, b: 2 }), pingFrame('after goaway')]));
      expect(await tunnel.next()).to.deep.equal({ type: MessageType.Pong, data: 'after goaway' });
      expect(server.probe.entered('add')).to.equal(0);

      server.probe.release();
      expect(expectResult(await tunnel.next(), 7)).to.equal('released');
      await tunnel.closed;
      expect(tunnel.pending).to.equal(0);
      await closing;
      expect(server.rpc.connectionCount).to.equal(0);
    });

    it('answers 503 to a CONNECT that arrives while close() waits for calls', async () => {
      const server = await startServer({ shutdownTimeout: 10_000 });
      const tunnel = await openTunnel(server.port);
      await tunnel.write(request(1, 'Svc.hold', null));
      await server.probe.waitFor('hold');
      // An http server attached during close() still routes CONNECTs to the RPC layer, which refuses them.
      const closing = server.rpc.close();
      expectGoaway(await tunnel.next(), 'UNAVAILABLE');
      const { attachedPort, stop } = await attachedListener(server.rpc);
      try {
        const reply = await exchange(attachedPort, CONNECT_HEAD);
        expect(reply.status).to.equal(503);
        expect(reply.headers['connection']).to.equal('close');
        expect(reply.body).to.include('shutting down');
      } finally {
        await stop();
      }
      server.probe.release();
      await closing;
    });

    it('destroys a tunnel whose call outlives shutdownTimeout, aborts its handler, and still resolves', async () => {
      const server = await startServer({ shutdownTimeout: 500 });
      const bystander = await openTunnel(server.port);
      const tunnel = await openTunnel(server.port);
      await tunnel.write(request(3, 'Svc.hang', null));
      const { ctx } = await server.probe.waitFor('hang');
      const closing = server.rpc.close();
      expect(expectGoaway(await tunnel.next(), 'UNAVAILABLE').lastId).to.equal(3);
      expect(expectGoaway(await bystander.next(), 'UNAVAILABLE').lastId).to.equal(0);
      await bystander.closed;
      await tunnel.closed;
      // The abandoned call is never answered.
      expect(tunnel.pending).to.equal(0);
      await closing;
      expect(ctx.signal.aborted).to.equal(true);
      expect((ctx.signal.reason as RpcError).code).to.equal('UNAVAILABLE');
      expect(server.rpc.connectionCount).to.equal(0);
    });

    it('resolves at once without tunnels, and returns the same promise when called twice', async () => {
      const server = await startServer();
      const first = server.rpc.close();
      expect(server.rpc.close()).to.equal(first);
      await first;
    });

    // The highest id is the safe choice: with the last-taken id (1 here), a client would think the earlier call
    // 4294967295 > 1 did not run and send it again, though the server took it.
    it('reports as lastId the highest id taken, even when ids wrapped (PROTOCOL.md 7.6)', async () => {
      const server = await startServer({ shutdownTimeout: 10_000 });
      const tunnel = await openTunnel(server.port);
      await tunnel.write(Buffer.concat([request(4294967295, 'Svc.hold', null), request(1, 'Svc.hold', null)]));
      await server.probe.waitFor('hold', 1);
      const closing = server.rpc.close();
      expect(expectGoaway(await tunnel.next(), 'UNAVAILABLE').lastId).to.equal(4294967295);
      server.probe.release();
      const ids = [await tunnel.next(), await tunnel.next()].map((message) => (message as { id: number }).id).sort();
      expect(ids).to.deep.equal([1, 4294967295]);
      await closing;
    });

    it('honours a cancel for a taken call while requests wait at maxInFlight during the drain', async () => {
      const server = await startServer({ maxInFlight: 1, shutdownTimeout: 10_000 });
      const tunnel = await openTunnel(server.port);
      // Call 2 waits behind call 1 (the socket is paused at maxInFlight); it was not taken.
      await tunnel.write(Buffer.concat([request(1, 'Svc.hold', null), request(2, 'Svc.add', { a: 1, b: 2 })]));
      const { ctx } = await server.probe.waitFor('hold');
      const closing = server.rpc.close();
      expect(expectGoaway(await tunnel.next(), 'UNAVAILABLE').lastId).to.equal(1);
      await tunnel.send({ type: MessageType.Cancel, id: 1 });
      expectErrorResponse(await tunnel.next(), 1, 'CANCELLED');
      expect(ctx.signal.aborted).to.equal(true);
      await tunnel.closed;
      expect(tunnel.pending).to.equal(0);
      expect(server.probe.entered('add')).to.equal(0);
      await closing;
    });

    it('answers pings while draining', async () => {
      const server = await startServer({ shutdownTimeout: 10_000 });
      const tunnel = await openTunnel(server.port);
      await tunnel.write(request(1, 'Svc.hold', null));
      await server.probe.waitFor('hold');
      const closing = server.rpc.close();
      expectGoaway(await tunnel.next(), 'UNAVAILABLE');
      await tunnel.send({ type: MessageType.Ping, data: 42 });
      expect(await tunnel.next()).to.deep.equal({ type: MessageType.Pong, data: 42 });
      server.probe.release();
      expectResult(await tunnel.next(), 1);
      await closing;
    });
  });

  describe('client goaway', () => {
    it('answers the calls in flight after the client sends goaway UNAVAILABLE, then closes', async () => {
      const server = await startServer();
      const tunnel = await openTunnel(server.port);
      await tunnel.write(Buffer.concat([request(1, 'Svc.hold', null), request(2, 'Svc.slow', { ms: 20 })]));
      await server.probe.waitFor('slow');
      await tunnel.send({ type: MessageType.Goaway, lastId: 0, code: 'UNAVAILABLE', message: 'bye' });
      // A request after the client's own goaway breaks its promise: dropped unanswered. The pong shows it was read.
      await tunnel.write(Buffer.concat([request(3, 'Svc.add', { a: 1, b: 2 }), pingFrame('still here')]));
      expect(await tunnel.next()).to.deep.equal({ type: MessageType.Pong, data: 'still here' });
      expect(expectResult(await tunnel.next(), 2)).to.deep.equal({ slept: 20 });
      server.probe.release();
      expect(expectResult(await tunnel.next(), 1)).to.equal('released');
      await tunnel.closed;
      expect(tunnel.pending).to.equal(0);
      expect(server.probe.entered('add')).to.equal(0);
    });

    it('closes at once after a client goaway with nothing in flight', async () => {
      const server = await startServer();
      const tunnel = await openTunnel(server.port);
      await tunnel.send({ type: MessageType.Goaway, lastId: 0, code: 'UNAVAILABLE', message: 'bye' });
      await tunnel.closed;
      expect(tunnel.pending).to.equal(0);
    });

    it('answers the calls in flight after the client half-closes, then closes', async () => {
      const server = await startServer();
      const tunnel = await openTunnel(server.port);
      await tunnel.write(request(1, 'Svc.hold', null));
      await server.probe.waitFor('hold');
      tunnel.socket.end();
      await once(tunnel.socket, 'finish');
      server.probe.release();
      expect(expectResult(await tunnel.next(), 1)).to.equal('released');
      await tunnel.closed;
    });
  });
});

/** pingFrame is the frame of [6, data]. */
function pingFrame(data: unknown): Buffer {
  return encodeMessage({ type: MessageType.Ping, data });
}

/** attachedListener attaches `rpc` to a fresh http server on 127.0.0.1:0. */
async function attachedListener(rpc: RpcServer): Promise<{ attachedPort: number; stop: () => Promise<void> }> {
  const http = createServer();
  rpc.attach(http);
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  return {
    attachedPort: (http.address() as AddressInfo).port,
    stop: () => new Promise((resolve) => http.close(() => resolve())),
  };
}
