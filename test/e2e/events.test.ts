/**
 * Connection events over real tunnels: every server event (open, refused, active, idle, goaway both ways, close)
 * and every client event (connected, disconnected, reconnecting) with its fields, and listeners that throw.
 */
import { expect } from 'chai';
import { connect, createClient, createRpcClient, RpcError, type ClientEvent } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import type { ServerEvent } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { expectRejects } from '@tunnelrpc/test-kit';
import { startEchoServer } from '../helpers/servers.js';

/** EventLog keeps events in order and lets a test await the first one that matches. */
class EventLog<E extends { type: string }> {
  readonly events: E[] = [];
  #waiting: Array<{ match: (event: E) => boolean; resolve: (event: E) => void }> = [];

  readonly push = (event: E): void => {
    this.events.push(event);
    for (const waiter of [...this.#waiting]) {
      if (waiter.match(event)) {
        this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
        waiter.resolve(event);
      }
    }
  };

  next<T extends E['type']>(type: T, match: (event: Extract<E, { type: T }>) => boolean = () => true): Promise<Extract<E, { type: T }>> {
    const test = (event: E): boolean => event.type === type && match(event as Extract<E, { type: T }>);
    const seen = this.events.find(test);
    if (seen !== undefined) return Promise.resolve(seen as Extract<E, { type: T }>);
    return new Promise((resolve) => this.#waiting.push({ match: test, resolve: resolve as (event: E) => void }));
  }

  types(): string[] {
    return this.events.map((event) => event.type);
  }
}

describe('Connection events', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  describe('on the server', () => {
    it('reports open with the address and the principal authorize returned', async () => {
      const log = new EventLog<ServerEvent>();
      const server = await startEchoServer(cleanup, { server: { listeners: [log.push], authorize: () => ({ user: 'ada' }) } });
      cleanup.add(await connect(server.url), (each) => each.close());
      const open = await log.next('open');
      expect(open.tunnel).to.equal(1);
      expect(open.address).to.equal('127.0.0.1');
      expect(open.port).to.be.a('number');
      expect(open.principal).to.deep.equal({ user: 'ada' });
    });

    it('reports refused with the status and the reason', async () => {
      const log = new EventLog<ServerEvent>();
      const server = await startEchoServer(cleanup, {
        server: {
          listeners: [log.push],
          authorize: () => {
            throw new RpcError('UNAUTHENTICATED', 'no token; send Authorization: Bearer <token>');
          },
        },
      });
      await expectRejects(connect(server.url), 'UNAUTHENTICATED');
      const refused = await log.next('refused');
      expect(refused).to.deep.equal({ type: 'refused', address: '127.0.0.1', status: 401, reason: '401 no token; send Authorization: Bearer <token>' });
      expect(log.types()).to.deep.equal(['refused']);
    });

    it('reports active when a call starts on an idle tunnel and idle when the last one ends', async () => {
      const log = new EventLog<ServerEvent>();
      const server = await startEchoServer(cleanup, { server: { listeners: [log.push] } });
      const echo = createClient(Echo, cleanup.add(await connect(server.url), (each) => each.close()));
      // Two calls running together: one active on the first, one idle after the last.
      const controllers = [new AbortController(), new AbortController()];
      const running = controllers.map((controller) => echo.sleep({ ms: 60_000 }, { signal: controller.signal }).catch(() => undefined));
      await server.echo.sleepsStarted(2);
      for (const controller of controllers) controller.abort();
      await Promise.all(running);
      await server.echo.sleepsAborted(2);
      await log.next('idle');
      await echo.sleep({ ms: 1 });
      expect(log.types()).to.deep.equal(['open', 'active', 'idle', 'active', 'idle']);
      expect(log.events.slice(1).every((event) => 'tunnel' in event && event.tunnel === 1)).to.equal(true);
    });

    it('reports goaway sent by close(), then close with reason, duration, calls and bytes', async () => {
      const log = new EventLog<ServerEvent>();
      const server = await startEchoServer(cleanup, { server: { listeners: [log.push] } });
      const client = cleanup.add(await connect(server.url, { reconnect: false }), (each) => each.close());
      const echo = createClient(Echo, client);
      await echo.add({ a: 1, b: 2 });
      await echo.echo('x'.repeat(1000));
      await echo.notify({});
      expect(await echo.count()).to.equal(1);
      await server.rpc.close();
      const goaway = await log.next('goaway');
      expect(goaway).to.deep.equal({ type: 'goaway', tunnel: 1, direction: 'sent', code: 'UNAVAILABLE', message: 'server is shutting down; reconnect to another instance' });
      const closed = await log.next('close');
      expect(closed.tunnel).to.equal(1);
      expect(closed.reason).to.equal('server is shutting down; reconnect to another instance');
      expect(closed.calls).to.equal(4);
      expect(closed.duration).to.be.a('number').at.least(0);
      expect(closed.bytesIn).to.be.greaterThan(1000);
      expect(closed.bytesOut).to.be.greaterThan(1000);
    });

    it('reports goaway received when the client closes', async () => {
      const log = new EventLog<ServerEvent>();
      const server = await startEchoServer(cleanup, { server: { listeners: [log.push] } });
      const client = await connect(server.url);
      await client.call('Echo.echo', 1);
      await client.close();
      const goaway = await log.next('goaway');
      expect(goaway).to.deep.equal({ type: 'goaway', tunnel: 1, direction: 'received', code: 'UNAVAILABLE', message: 'client closing' });
      const closed = await log.next('close');
      expect(closed.reason).to.equal('client sent goaway UNAVAILABLE');
      expect(closed.calls).to.equal(1);
    });

    it('keeps serving when a listener throws on every event, and logs it', async () => {
      const log = new EventLog<ServerEvent>();
      const thrower = (): void => {
        throw new Error('listener bug');
      };
      const server = await startEchoServer(cleanup, { server: { listeners: [thrower, log.push] } });
      const client = cleanup.add(await connect(server.url), (each) => each.close());
      const echo = createClient(Echo, client);
      expect(await echo.sleep({ ms: 5 })).to.deep.equal({ slept: 5 });
      expect(await echo.add({ a: 2, b: 2 })).to.equal(4);
      expect(log.types()).to.deep.equal(['open', 'active', 'idle']);
      expect(server.rpc.connectionCount).to.equal(1);
      expect(server.logs.filter((line) => line.includes('a ServerOptions.listeners entry threw'))).to.have.length(3);
    });
  });

  describe('on the client', () => {
    it('reports connected, disconnected with the reason, reconnecting with attempt and delay, then connected again', async () => {
      const server = await startEchoServer(cleanup);
      const log = new EventLog<ClientEvent>();
      const client = cleanup.add(await connect(server.url, { listeners: [log.push] }), (each) => each.close());
      // connect() adopts the tunnel before it returns, so its connected event is there already.
      const connected = await log.next('connected');
      expect(connected).to.deep.include({ target: server.url, address: '127.0.0.1' });
      expect(connected.port).to.equal(server.port);
      expect(await client.call('Echo.echo', 1)).to.equal(1);
      for (const socket of server.tunnels) socket.destroy();
      const disconnected = await log.next('disconnected');
      expect(disconnected.target).to.equal(server.url);
      expect(disconnected.code).to.equal('UNAVAILABLE');
      expect(disconnected.reason).to.be.a('string').and.not.equal('');
      expect(disconnected.bytesIn).to.be.greaterThan(0);
      expect(disconnected.bytesOut).to.be.greaterThan(0);
      const reconnecting = await log.next('reconnecting');
      // The lost tunnel answered a call, so the backoff was reset: the first redial is immediate.
      expect(reconnecting).to.deep.equal({ type: 'reconnecting', target: server.url, attempt: 1, delay: 0 });
      await log.next('connected', (event) => log.events.indexOf(event) > 0);
      expect(log.types()).to.deep.equal(['connected', 'disconnected', 'reconnecting', 'connected']);
      expect(await client.call('Echo.echo', 2)).to.equal(2);
    });

    it('counts attempts, with delays within the backoff bounds, while the server refuses', async () => {
      const server = await startEchoServer(cleanup, {
        server: {
          authorize: () => {
            throw new RpcError('UNAVAILABLE', 'warming up; retry');
          },
        },
      });
      const log = new EventLog<ClientEvent>();
      const client = cleanup.add(createRpcClient(server.url, { listeners: [log.push], minReconnectDelay: 1, maxReconnectDelay: 2 }), (each) => each.close());
      await log.next('reconnecting', (event) => event.attempt === 4);
      // The first dial (attempt 1) is not a reconnect; each failure after it counts one more.
      const attempts = log.events.filter((event) => event.type === 'reconnecting').slice(0, 3) as Array<{ attempt: number; delay: number }>;
      expect(attempts.map((event) => event.attempt)).to.deep.equal([2, 3, 4]);
      for (const { delay } of attempts) expect(delay).to.be.within(0, 2);
      expect(log.types().filter((type) => type !== 'reconnecting')).to.deep.equal([]);
      expect(client.pendingCalls).to.equal(0);
    });

    it('keeps working when a listener throws', async () => {
      const server = await startEchoServer(cleanup);
      const log = new EventLog<ClientEvent>();
      const thrower = (): void => {
        throw new Error('listener bug');
      };
      const client = cleanup.add(await connect(server.url, { listeners: [thrower, log.push] }), (each) => each.close());
      expect(await client.call('Echo.echo', 1)).to.equal(1);
      for (const socket of server.tunnels) socket.destroy();
      await log.next('connected', (event) => log.events.indexOf(event) > 0);
      expect(await client.call('Echo.echo', 2)).to.equal(2);
    });
  });
});
