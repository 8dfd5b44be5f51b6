/**
 * Shutdown from both ends: a graceful server close() drains calls in flight, an abrupt kill fails them with
 * UNAVAILABLE, and a client close() waits for its own calls. Nothing hangs and every call settles. Clients made
 * with `reconnect: false` end with their tunnel; default clients redial and carry on where that is safe.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { connect, createClient, RpcError, type ClientOptions, type RpcClient } from '@tunnelrpc/client';
import { RpcServer } from '@tunnelrpc/server';
import { Echo } from '@tunnelrpc/examples';
import { Cleanup } from '../helpers/cleanup.js';
import { expectRejects } from '@tunnelrpc/test-kit';
import { mayHaveRunOf } from '../helpers/rpc-error.js';
import { observeEcho, startEchoServer } from '../helpers/servers.js';

/** socketClosed resolves once `socket` has closed, at once if it has already. */
async function socketClosed(socket: Duplex): Promise<void> {
  if (socket.closed) return;
  await once(socket, 'close');
}

const ONE_TUNNEL: ClientOptions = { reconnect: false };

describe('lifecycle', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function open(url: string, options?: ClientOptions): Promise<RpcClient> {
    return cleanup.add(await connect(url, options), (client) => client.close());
  }

  describe('RpcServer#close', () => {
    it('lets calls in flight finish, refuses new calls with mayHaveRun false, and ends a client without reconnect', async () => {
      const server = await startEchoServer(cleanup, { server: { shutdownTimeout: 10_000 } });
      const client = await open(server.url, ONE_TUNNEL);
      const echo = createClient(Echo, client);
      const running = [echo.sleep({ ms: 150 }), echo.sleep({ ms: 250 })];
      await server.echo.sleepsStarted(2);

      const closing = server.rpc.close();
      // Sent before the goaway reached the client: the server drops it, the goaway's lastId tells the client so.
      const crossed = await expectRejects(echo.add({ a: 1, b: 2 }), 'UNAVAILABLE', 'was not run');
      expect(mayHaveRunOf(crossed)).to.equal(false);
      expect(await Promise.all(running)).to.deep.equal([{ slept: 150 }, { slept: 250 }]);

      const reason = await client.closed;
      expect(reason).to.be.instanceOf(RpcError);
      expect(reason!.code).to.equal('UNAVAILABLE');
      await closing;
      expect(server.rpc.connectionCount).to.equal(0);
      expect(server.echo.aborted).to.deep.equal([]);
      const after = await expectRejects(echo.add({ a: 1, b: 2 }), 'UNAVAILABLE');
      expect(mayHaveRunOf(after)).to.equal(false);
    });

    it('lets calls in flight finish while a reconnecting client holds a crossed call until its deadline', async () => {
      const server = await startEchoServer(cleanup, { server: { shutdownTimeout: 10_000 } });
      const client = await open(server.url);
      const echo = createClient(Echo, client);
      const running = echo.sleep({ ms: 200 });
      await server.echo.sleepsStarted(1);

      const closing = server.rpc.close();
      // Refused by the goaway, it waits for a new tunnel; the closing server answers every redial with 503.
      const waiting = expectRejects(echo.add({ a: 1, b: 2 }, { timeout: 400 }), 'DEADLINE_EXCEEDED');
      expect(await running).to.deep.equal({ slept: 200 });
      await closing;
      const error = await waiting;
      expect(error.message).to.include('503');
      await client.close();
      expect(await client.closed).to.equal(undefined);
    });

    // Regression: #giveUp reported mayHaveRun = attempts > 0, so a call whose only attempt was refused by a goaway
    // (id > lastId) was reported as "may have run" when its deadline passed while it waited for a redial.
    it('reports a call refused by goaway, whose deadline passes while it waits for a redial, as not run', async () => {
      const server = await startEchoServer(cleanup, { server: { shutdownTimeout: 10_000 } });
      const echo = createClient(Echo, await open(server.url));
      const running = echo.sleep({ ms: 200 });
      await server.echo.sleepsStarted(1);
      const closing = server.rpc.close();
      const error = await expectRejects(echo.add({ a: 1, b: 2 }, { timeout: 400 }), 'DEADLINE_EXCEEDED');
      expect(mayHaveRunOf(error)).to.equal(false);
      expect(error.message).not.to.include('may have run');
      await running;
      await closing;
    });

    it('answers a CONNECT that arrives while closing with 503, which connect() reports as UNAVAILABLE', async () => {
      const server = await startEchoServer(cleanup, { server: { shutdownTimeout: 10_000 } });
      const echo = createClient(Echo, await open(server.url));
      const running = echo.sleep({ ms: 200 });
      await server.echo.sleepsStarted(1);
      const closing = server.rpc.close();

      const error = await expectRejects(connect(server.url), 'UNAVAILABLE', '503');
      expect(error.data).to.deep.include({ status: 503 });
      expect(await running).to.deep.equal({ slept: 200 });
      await closing;
    });

    it('stops listening on the port listen() opened and resolves once in-flight calls are done', async () => {
      const echoImpl = observeEcho();
      const rpc = new RpcServer({ shutdownTimeout: 10_000, logger: () => undefined }).register(Echo, echoImpl.impl);
      cleanup.defer(() => rpc.close());
      const { url } = await rpc.listen(0);
      const client = await open(url, ONE_TUNNEL);
      const running = createClient(Echo, client).sleep({ ms: 150 });
      await echoImpl.sleepsStarted(1);

      const closing = rpc.close();
      expect(await running).to.deep.equal({ slept: 150 });
      await closing;
      expect((await client.closed)?.code).to.equal('UNAVAILABLE');
      await expectRejects(connect(url), 'UNAVAILABLE', 'ECONNREFUSED');
    });

    it('resolves at once and closes idle clients when no call is running', async () => {
      const server = await startEchoServer(cleanup);
      const clients = await Promise.all([open(server.url, ONE_TUNNEL), open(server.url, ONE_TUNNEL), open(server.url, ONE_TUNNEL)]);
      await server.rpc.close();
      const reasons = await Promise.all(clients.map((client) => client.closed));
      for (const reason of reasons) expect((reason as RpcError).code).to.equal('UNAVAILABLE');
      expect(server.rpc.connectionCount).to.equal(0);
    });

    it('destroys tunnels whose calls outlast shutdownTimeout, failing those calls with UNAVAILABLE', async () => {
      const server = await startEchoServer(cleanup, { server: { shutdownTimeout: 200 } });
      const client = await open(server.url, ONE_TUNNEL);
      const echo = createClient(Echo, client);
      const quick = echo.sleep({ ms: 20 });
      const stuck = expectRejects(echo.sleep({ ms: 60_000 }), 'UNAVAILABLE', 'may have run');
      await server.echo.sleepsStarted(2);

      await server.rpc.close();
      expect(await quick).to.deep.equal({ slept: 20 });
      const error = await stuck;
      expect(mayHaveRunOf(error)).to.equal(true);
      expect((await client.closed)?.code).to.equal('UNAVAILABLE');
      await server.echo.sleepsAborted(1);
      expect(server.rpc.connectionCount).to.equal(0);
    });

    it('lets a reconnecting client carry on with a server restarted on the same port', async () => {
      const first = new RpcServer({ logger: () => undefined }).register(Echo, observeEcho().impl);
      cleanup.defer(() => first.close());
      const { url, port } = await first.listen(0);
      const client = await open(url, { minReconnectDelay: 20, maxReconnectDelay: 100 });
      const echo = createClient(Echo, client);
      echo.notify('on the first server');
      expect(await echo.count()).to.equal(1);

      await first.close();
      // No tunnel now: the call waits while the client redials with backoff.
      const waiting = echo.add({ a: 40, b: 2 }, { timeout: 10_000 });
      const second = new RpcServer({ logger: () => undefined }).register(Echo, observeEcho().impl);
      cleanup.defer(() => second.close());
      await second.listen(port);
      expect(await waiting).to.equal(42);
      expect(await echo.count()).to.equal(0);
      expect(second.connectionCount).to.equal(1);
    });
  });

  describe('a server killed abruptly', () => {
    it('fails every pending call with UNAVAILABLE when close() has shutdownTimeout 0', async () => {
      const server = await startEchoServer(cleanup, { server: { shutdownTimeout: 0 } });
      const client = await open(server.url, ONE_TUNNEL);
      const echo = createClient(Echo, client);
      const failures = Array.from({ length: 3 }, () => expectRejects(echo.sleep({ ms: 60_000 }), 'UNAVAILABLE'));
      await server.echo.sleepsStarted(3);

      await server.rpc.close();
      for (const error of await Promise.all(failures)) expect(mayHaveRunOf(error)).to.equal(true);
      expect((await client.closed)?.code).to.equal('UNAVAILABLE');
      expect(client.pendingCalls).to.equal(0);
      await server.echo.sleepsAborted(3);
    });

    it('fails every pending call with UNAVAILABLE when its tunnel socket is destroyed, and ends a client without reconnect', async () => {
      const server = await startEchoServer(cleanup);
      const client = await open(server.url, ONE_TUNNEL);
      const echo = createClient(Echo, client);
      const failures = Array.from({ length: 10 }, () => expectRejects(echo.sleep({ ms: 60_000 }), 'UNAVAILABLE'));
      await server.echo.sleepsStarted(10);
      expect(server.tunnels.size).to.equal(1);

      for (const socket of server.tunnels) socket.destroy();
      const errors = await Promise.all(failures);
      for (const error of errors) expect(mayHaveRunOf(error)).to.equal(true);
      expect((await client.closed)?.code).to.equal('UNAVAILABLE');
      const refused = await expectRejects(echo.add({ a: 1, b: 2 }), 'UNAVAILABLE');
      expect(mayHaveRunOf(refused)).to.equal(false);
      // The server aborted every handler of the lost tunnel, and serves a new client.
      await server.echo.sleepsAborted(10);
      expect(server.rpc.connectionCount).to.equal(0);
      expect(await createClient(Echo, await open(server.url)).add({ a: 2, b: 3 })).to.equal(5);
    });

    it('fails a running call that may have run, re-sends an idempotent one on a new tunnel, and carries on', async () => {
      // maxInFlight 1: echo waits in the server's backlog behind sleep, so it is written and unanswered when the
      // tunnel dies.
      const server = await startEchoServer(cleanup, { server: { maxInFlight: 1 } });
      const client = await open(server.url, { minReconnectDelay: 20 });
      const echo = createClient(Echo, client);
      const sleeping = expectRejects(echo.sleep({ ms: 60_000 }), 'UNAVAILABLE', 'may have run');
      await server.echo.sleepsStarted(1);
      const echoed = echo.echo('idempotent, sent again');
      expect(client.pendingCalls).to.equal(2);
      const [tunnel] = server.tunnels;

      tunnel!.destroy();
      expect(mayHaveRunOf(await sleeping)).to.equal(true);
      expect(await echoed).to.equal('idempotent, sent again');
      expect(await echo.add({ a: 1, b: 2 })).to.equal(3);
      expect(server.tunnels.size).to.equal(1);
      expect([...server.tunnels][0]).not.to.equal(tunnel);
      await server.echo.sleepsAborted(1);
    });

    it('fails pending calls with UNAVAILABLE when the http server and all its sockets go away', async () => {
      const server = await startEchoServer(cleanup);
      const client = await open(server.url, ONE_TUNNEL);
      const failure = expectRejects(createClient(Echo, client).sleep({ ms: 60_000 }), 'UNAVAILABLE');
      await server.echo.sleepsStarted(1);

      server.http.close();
      server.http.closeAllConnections();
      for (const socket of server.tunnels) socket.destroy();
      const error = await failure;
      expect(mayHaveRunOf(error)).to.equal(true);
      expect((await client.closed)?.code).to.equal('UNAVAILABLE');
      await expectRejects(connect(server.url), 'UNAVAILABLE', 'ECONNREFUSED');
    });

    it('holds new calls of a reconnecting client until their deadline while nothing listens, naming the dial error', async () => {
      const server = await startEchoServer(cleanup);
      const client = await open(server.url, { minReconnectDelay: 20, maxReconnectDelay: 100 });
      const echo = createClient(Echo, client);
      const failure = expectRejects(echo.sleep({ ms: 60_000 }), 'UNAVAILABLE', 'may have run');
      await server.echo.sleepsStarted(1);

      server.http.close();
      server.http.closeAllConnections();
      for (const socket of server.tunnels) socket.destroy();
      expect(mayHaveRunOf(await failure)).to.equal(true);
      const waited = await expectRejects(echo.add({ a: 1, b: 2 }, { timeout: 300 }), 'DEADLINE_EXCEEDED', 'ECONNREFUSED');
      expect(mayHaveRunOf(waited)).to.equal(false);
      await client.close();
      expect(await client.closed).to.equal(undefined);
    });
  });

  describe('RpcClient#close', () => {
    it('lets pending calls finish first, refuses new calls, then resolves closed with undefined', async () => {
      const server = await startEchoServer(cleanup);
      const client = await open(server.url);
      const echo = createClient(Echo, client);
      const running = [echo.sleep({ ms: 100 }), echo.sleep({ ms: 200 }), echo.add({ a: 1, b: 1 })];
      await server.echo.sleepsStarted(2);
      const [tunnel] = server.tunnels;

      const closing = client.close();
      const refused = await expectRejects(echo.add({ a: 1, b: 2 }), 'UNAVAILABLE', 'close()');
      expect(mayHaveRunOf(refused)).to.equal(false);
      expect(mayHaveRunOf(await expectRejects(echo.notify('late'), 'UNAVAILABLE', 'close()'))).to.equal(false);
      expect(await Promise.all(running)).to.deep.equal([{ slept: 100 }, { slept: 200 }, 2]);
      await closing;
      expect(await client.closed).to.equal(undefined);
      expect(client.pendingCalls).to.equal(0);
      await socketClosed(tunnel!);
      expect(server.rpc.connectionCount).to.equal(0);
      expect(server.echo.aborted).to.deep.equal([]);
    });

    it('resolves once a pending call passes its deadline', async () => {
      const server = await startEchoServer(cleanup);
      const client = await open(server.url);
      const stuck = expectRejects(createClient(Echo, client).sleep({ ms: 60_000 }, { timeout: 200 }), 'DEADLINE_EXCEEDED');
      await server.echo.sleepsStarted(1);

      const closing = client.close();
      await stuck;
      await closing;
      expect(await client.closed).to.equal(undefined);
      await server.echo.sleepsAborted(1);
    });

    it('resolves every time it is called, before and after the tunnel has closed', async () => {
      const server = await startEchoServer(cleanup);
      const client = await open(server.url);
      await Promise.all([client.close(), client.close()]);
      await client.close();
      expect(await client.closed).to.equal(undefined);
    });
  });
});
