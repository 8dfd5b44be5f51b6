/**
 * Call observers, the pipeline's metrics stage: each side tells them every call's start and end (with the code
 * its caller got), streams' messages, notifications, calls refused before any handler and calls cut off with
 * their tunnel; one ObservedMethod object per method and type; an observer that throws costs nothing else.
 */
import { expect } from 'chai';
import type { Duplex } from 'node:stream';
import { connect, createClient, type CallObserver, type ObservedMethod } from '@tunnelrpc/client';
import { Echo, createEchoService } from '@tunnelrpc/examples';
import { RpcServer } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { expectRejects } from '@tunnelrpc/test-kit';
import { startEchoServer } from '../helpers/servers.js';

interface Seen {
  readonly observer: CallObserver;
  readonly events: string[];
  readonly methods: Set<ObservedMethod>;
  /** Calls started and not ended yet. */
  open(): number;
}

function recorder(): Seen {
  const events: string[] = [];
  const methods = new Set<ObservedMethod>();
  let open = 0;
  return {
    events,
    methods,
    open: () => open,
    observer: {
      callStarted(method) {
        open++;
        methods.add(method);
        events.push(`start ${method.type} ${method.method}`);
      },
      callEnded(method, code, seconds) {
        open--;
        expect(seconds).to.be.a('number').and.at.least(0);
        events.push(`end ${method.type} ${method.method} ${code}`);
      },
      streamMessage(method, direction) {
        events.push(`${direction} ${method.method}`);
      },
    },
  };
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('Call observers', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function rig(): Promise<{ server: Seen; client: Seen; echo: ReturnType<typeof createClient<typeof Echo>>; rpc: Awaited<ReturnType<typeof connect>>; tunnels: Set<Duplex> }> {
    const server = recorder();
    const client = recorder();
    const started = await startEchoServer(cleanup, { server: { observers: [server.observer] } });
    const rpc = cleanup.add(await connect(started.url, { observers: [client.observer] }), (each) => each.close());
    return { server, client, echo: createClient(Echo, rpc), rpc, tunnels: started.tunnels };
  }

  it('hear each unary call start and end with the code its caller got, on both sides, with one object per method', async () => {
    const { server, client, echo } = await rig();
    expect(await echo.add({ a: 1, b: 2 })).to.equal(3);
    expect(await echo.add({ a: 2, b: 2 })).to.equal(4);
    await expectRejects(echo.fail({ code: 'NOT_FOUND', message: 'no such thing' }), 'NOT_FOUND');
    await expectRejects(echo.sleep({ ms: 5000 }, { timeout: 50 }), 'DEADLINE_EXCEEDED');
    await until(() => server.open() === 0);
    for (const side of [server, client]) {
      expect(side.events.filter((event) => !event.includes('sleep'))).to.deep.equal([
        'start unary Echo.add',
        'end unary Echo.add OK',
        'start unary Echo.add',
        'end unary Echo.add OK',
        'start unary Echo.fail',
        'end unary Echo.fail NOT_FOUND',
      ]);
      expect(side.events.filter((event) => event.includes('sleep'))).to.deep.equal(['start unary Echo.sleep', 'end unary Echo.sleep DEADLINE_EXCEEDED']);
      // The same object for both calls of Echo.add: observers key their counters by it.
      expect([...side.methods].map((method) => method.method)).to.deep.equal(['Echo.add', 'Echo.fail', 'Echo.sleep']);
      expect([...side.methods][0]).to.include({ service: 'Echo', name: 'add', type: 'unary', registered: true });
      expect(Object.isFrozen([...side.methods][0])).to.equal(true);
    }
  });

  it('hear notifications, and streams from opening to end with each message both ways', async () => {
    const { server, client, echo, rpc } = await rig();
    await rpc.notify('Echo.notify', { hello: 1 });
    const ticks: unknown[] = [];
    for await (const tick of echo.ticks({ n: 3 })) ticks.push(tick);
    expect(ticks).to.have.length(3);
    expect(await echo.sum(undefined, [1, 2, 3])).to.equal(6);
    await until(() => server.open() === 0 && server.events.some((event) => event.startsWith('end notification')));
    for (const side of [server, client]) {
      const mine = side === server ? 'sent' : 'received';
      const theirs = side === server ? 'received' : 'sent';
      expect(side.events.filter((event) => event.includes('notify'))).to.deep.equal(['start notification Echo.notify', 'end notification Echo.notify OK']);
      expect(side.events.filter((event) => event.includes('ticks'))).to.deep.equal(['start server_stream Echo.ticks', `${mine} Echo.ticks`, `${mine} Echo.ticks`, `${mine} Echo.ticks`, 'end server_stream Echo.ticks OK']);
      expect(side.events.filter((event) => event.includes('sum'))).to.deep.equal(['start client_stream Echo.sum', `${theirs} Echo.sum`, `${theirs} Echo.sum`, `${theirs} Echo.sum`, 'end client_stream Echo.sum OK']);
    }
  });

  it('on the server, hear calls refused before any handler: a method nobody registered, a full budget, a notification nobody takes', async () => {
    const server = recorder();
    const rpc = new RpcServer({ observers: [server.observer], maxCallsInFlight: 1 }).register(Echo, createEchoService());
    const { port } = await rpc.listen(0, '127.0.0.1');
    cleanup.defer(() => rpc.close());
    const client = cleanup.add(await connect(`http://127.0.0.1:${port}/_rpc`), (each) => each.close());
    await expectRejects(client.call('Echo.nothing', null), 'UNIMPLEMENTED');
    const holding = client.call('Echo.sleep', { ms: 200 });
    await expectRejects(client.call('Echo.add', { a: 1, b: 1 }), 'RESOURCE_EXHAUSTED');
    await holding;
    expect(server.events).to.deep.equal([
      'start unary unknown.unknown',
      'end unary unknown.unknown UNIMPLEMENTED',
      'start unary Echo.sleep',
      'start unary Echo.add',
      'end unary Echo.add RESOURCE_EXHAUSTED',
      'end unary Echo.sleep OK',
    ]);
    expect([...server.methods][0]).to.include({ registered: false });
    // A notification for a method nobody registered is dropped, and heard as UNIMPLEMENTED.
    await client.notify('Echo.nothing', null);
    await until(() => server.events.length === 8);
    expect(server.events.slice(6)).to.deep.equal(['start notification unknown.unknown', 'end notification unknown.unknown UNIMPLEMENTED']);
  });

  it('hear a call cut off with its tunnel, on both sides, once', async () => {
    const { server, client, echo, tunnels } = await rig();
    const sleeping = echo.sleep({ ms: 60_000 });
    await until(() => server.open() === 1);
    for (const socket of tunnels) socket.destroy();
    await expectRejects(sleeping, 'UNAVAILABLE');
    await until(() => server.open() === 0);
    expect(client.open()).to.equal(0);
    expect(server.events).to.have.length(2);
    expect(server.events[1]).to.match(/^end unary Echo\.sleep [A-Z_]+$/);
    expect(client.events).to.deep.equal(['start unary Echo.sleep', 'end unary Echo.sleep UNAVAILABLE']);
  });

  it('keeps the call whole when an observer throws, and logs it on the server', async () => {
    const throwing: CallObserver = {
      callStarted() {
        throw new Error('observer bug at start');
      },
      callEnded() {
        throw new Error('observer bug at end');
      },
    };
    const after = recorder();
    const started = await startEchoServer(cleanup, { server: { observers: [throwing, after.observer] } });
    const rpc = cleanup.add(await connect(started.url, { observers: [throwing] }), (each) => each.close());
    expect(await rpc.call('Echo.add', { a: 20, b: 22 })).to.equal(42);
    expect(after.events).to.deep.equal(['start unary Echo.add', 'end unary Echo.add OK']);
    expect(started.logs.some((line) => line.includes('ServerOptions.observers entry threw in callStarted'))).to.equal(true);
  });

  it('refuses an observers option without the two functions, naming the entry', async () => {
    expect(() => new RpcServer({ observers: [{ callStarted() {} } as unknown as CallObserver] })).to.throw(/observers.*item 0/);
    await expectRejects(connect('http://127.0.0.1:1/_rpc', { observers: 'yes' as unknown as CallObserver[] }), 'INVALID_ARGUMENT', 'observers');
  });
});
