/**
 * Hostile peers against the real server (SECURITY.md, hostile cases): a raw socket sends garbage on its own
 * tunnel while a real client works on another. The raw socket gets a goaway and is closed; the real client's calls
 * keep succeeding; Object.prototype stays as it was.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { z } from 'zod';
import { connect, createClient, type RpcClient, type TypedClient } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import { RpcServer } from '@tunnelrpc/server';
import { defineService } from '@tunnelrpc/protocol';
import { MessageType, encodeMessage } from '@tunnelrpc/protocol/internal';
import { Cleanup } from '../helpers/cleanup.js';
import { GARBAGE } from '../helpers/hostile-frames.js';
import { expectOnlyGoaway, expectRejects, frame, hex, rawSocket, RawTunnel, readUntil } from '@tunnelrpc/test-kit';
import { expectPrototypeClean, mayHaveRunOf } from '../helpers/rpc-error.js';
import { observeEcho, startEchoServer, type EchoServer } from '../helpers/servers.js';

const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype);

describe('hostile peers', () => {
  const cleanup = new Cleanup();
  let server: EchoServer;
  let client: RpcClient;
  let echo: TypedClient<typeof Echo>;

  beforeEach(async () => {
    server = await startEchoServer(cleanup);
    client = cleanup.add(await connect(server.url), (each) => each.close());
    echo = createClient(Echo, client);
    expect(await echo.add({ a: 1, b: 1 })).to.equal(2);
  });
  afterEach(() => cleanup.run());

  /** openRaw opens a raw tunnel to the server under test and destroys it after the test. */
  async function openRaw(): Promise<RawTunnel> {
    return cleanup.add(await RawTunnel.open(server.port!), (raw) => raw.destroy());
  }

  /** expectGoodClientWorks checks that the real client on its own tunnel is unaffected. */
  async function expectGoodClientWorks(): Promise<void> {
    const [sum, value, slept] = await Promise.all([echo.add({ a: 20, b: 22 }), echo.echo({ still: ['fine'] }), echo.sleep({ ms: 1 })]);
    expect(sum).to.equal(42);
    expect(value).to.deep.equal({ still: ['fine'] });
    expect(slept).to.deep.equal({ slept: 1 });
    expectPrototypeClean(PROTOTYPE_KEYS);
  }

  describe('garbage frames on one tunnel', () => {
    for (const { name, bytes, code } of GARBAGE) {
      it(`answers ${name} with goaway ${code}, closes that tunnel, and keeps the other working`, async () => {
        const raw = await openRaw();
        raw.write(bytes());
        const goaway = expectOnlyGoaway(await raw.messagesUntilClose(), code, 0);
        expect(goaway.message).not.to.include('Echo.echo');
        await expectGoodClientWorks();
      });
    }

    it('closes a tunnel that sends garbage after a request it took, aborting that handler (lastId names it)', async () => {
      const raw = await openRaw();
      raw.write(encodeMessage({ type: MessageType.Request, id: 7, method: 'Echo.sleep', params: { ms: 60_000 } }));
      await server.echo.sleepsStarted(1);
      raw.write(hex('00 00 00 00'));
      expectOnlyGoaway(await raw.messagesUntilClose(), 'PROTOCOL_ERROR', 7);
      await server.echo.sleepsAborted(1);
      await expectGoodClientWorks();
    });

    it('closes a tunnel that reuses an id still in flight, sending no answer for it', async () => {
      const raw = await openRaw();
      raw.write(encodeMessage({ type: MessageType.Request, id: 1, method: 'Echo.sleep', params: { ms: 60_000 } }));
      await server.echo.sleepsStarted(1);
      raw.write(encodeMessage({ type: MessageType.Request, id: 1, method: 'Echo.add', params: { a: 1, b: 2 } }));
      expectOnlyGoaway(await raw.messagesUntilClose(), 'PROTOCOL_ERROR', 1);
      await server.echo.sleepsAborted(1);
      await expectGoodClientWorks();
    });

    it('processes nothing after the violation: a request in the same chunk behind it goes unanswered', async () => {
      const raw = await openRaw();
      raw.write(Buffer.concat([hex('00 00 00 00'), encodeMessage({ type: MessageType.Request, id: 1, method: 'Echo.add', params: { a: 1, b: 2 } })]));
      expectOnlyGoaway(await raw.messagesUntilClose(), 'PROTOCOL_ERROR', 0);
      await expectGoodClientWorks();
    });

    it('survives ten hostile tunnels at once', async () => {
      const raws = await Promise.all(GARBAGE.slice(0, 10).map(() => openRaw()));
      raws.forEach((raw, i) => raw.write(GARBAGE[i]!.bytes()));
      const results = await Promise.all(raws.map((raw) => raw.messagesUntilClose()));
      results.forEach((messages, i) => expectOnlyGoaway(messages, GARBAGE[i]!.code, 0));
      await expectGoodClientWorks();
    });
  });

  describe('honest frames from a raw tunnel', () => {
    it('answers a request, a ping, and ignores a cancel for an unknown id and an unrequested pong', async () => {
      const raw = await openRaw();
      raw.write(
        Buffer.concat([
          encodeMessage({ type: MessageType.Cancel, id: 999 }),
          encodeMessage({ type: MessageType.Pong, data: 'unasked' }),
          encodeMessage({ type: MessageType.Ping, data: 'are you there' }),
          encodeMessage({ type: MessageType.Request, id: 5, method: 'Echo.add', params: { a: 2, b: 3 } }),
          encodeMessage({ type: MessageType.Goaway, lastId: 0, code: 'UNAVAILABLE', message: 'done' }),
        ]),
      );
      const messages = await raw.messagesUntilClose();
      expect(messages).to.deep.equal([
        { type: MessageType.Pong, data: 'are you there' },
        { type: MessageType.Response, id: 5, result: 5 },
      ]);
    });

    it('answers requests sent in the same write as the CONNECT head, whole and split', async () => {
      const first = encodeMessage({ type: MessageType.Request, id: 1, method: 'Echo.add', params: { a: 1, b: 2 } });
      const second = encodeMessage({ type: MessageType.Request, id: 2, method: 'Echo.echo', params: 'early' });
      const cut = 7;
      const raw = cleanup.add(await RawTunnel.open(server.port!, Buffer.concat([first, second.subarray(0, cut)])), (each) => each.destroy());
      raw.write(second.subarray(cut));
      raw.write(encodeMessage({ type: MessageType.Goaway, lastId: 0, code: 'UNAVAILABLE', message: 'done' }));
      const messages = await raw.messagesUntilClose();
      expect(messages).to.have.deep.members([
        { type: MessageType.Response, id: 1, result: 3 },
        { type: MessageType.Response, id: 2, result: 'early' },
      ]);
      expect(messages).to.have.length(2);
    });

    it('answers a request that arrives one byte per write', async () => {
      const raw = await openRaw();
      raw.socket.setNoDelay(true);
      const bytes = encodeMessage({ type: MessageType.Request, id: 1, method: 'Echo.echo', params: { text: 'dripped' } });
      for (const byte of bytes) {
        raw.write(Buffer.from([byte]));
        await new Promise((resolve) => setImmediate(resolve));
      }
      raw.write(encodeMessage({ type: MessageType.Goaway, lastId: 0, code: 'UNAVAILABLE', message: 'done' }));
      expect(await raw.messagesUntilClose()).to.deep.equal([{ type: MessageType.Response, id: 1, result: { text: 'dripped' } }]);
      await expectGoodClientWorks();
    });

    it('keeps __proto__ keys as data: no pollution, and the echo has no inherited properties', async () => {
      const params = JSON.parse('{"__proto__": {"polluted": "yes"}, "nested": {"constructor": {"prototype": {"polluted": "yes"}}}}') as unknown;
      const result = (await echo.echo(params)) as Record<string, unknown>;
      expect(Object.getPrototypeOf(result)).to.equal(Object.prototype);
      expect(result['polluted']).to.equal(undefined);
      expectPrototypeClean(PROTOTYPE_KEYS);
      await expectGoodClientWorks();
    });
  });

  describe('bytes that are not HTTP', () => {
    it('answers 400 to garbage instead of a CONNECT head, and keeps serving tunnels', async () => {
      const socket = cleanup.add(await rawSocket(server.port!), (each) => each.destroy());
      socket.write(hex('ff 00 ff 00 0d 0a 0d 0a'));
      const reply = await readUntil(socket, '\r\n\r\n');
      expect(reply.toString('latin1')).to.match(/^HTTP\/1\.1 400 /);
      await expectGoodClientWorks();
    });
  });
});

describe('server timeouts on a hostile tunnel', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('sends goaway PROTOCOL_ERROR and closes a tunnel whose frame stalls past frameTimeout', async () => {
    const server = await startEchoServer(cleanup, { server: { frameTimeout: 300 } });
    const raw = cleanup.add(await RawTunnel.open(server.port!), (each) => each.destroy());
    raw.write(hex('00 00 00 0a 94 00 01')); // a 10-byte frame, 3 bytes of it, then silence
    const goaway = expectOnlyGoaway(await raw.messagesUntilClose(), 'PROTOCOL_ERROR', 0);
    expect(goaway.message).to.include('frameTimeout');
    const echo = createClient(Echo, cleanup.add(await connect(server.url), (client) => client.close()));
    expect(await echo.add({ a: 1, b: 2 })).to.equal(3);
    expectPrototypeClean(PROTOTYPE_KEYS);
  });

  it('sends goaway UNAVAILABLE and closes a tunnel that stays idle past idleTimeout', async () => {
    const server = await startEchoServer(cleanup, { server: { idleTimeout: 300 } });
    const raw = cleanup.add(await RawTunnel.open(server.port!), (each) => each.destroy());
    const [tunnel] = server.tunnels;
    const goaway = expectOnlyGoaway(await raw.messagesUntilClose(), 'UNAVAILABLE', 0);
    expect(goaway.message).to.include('idle');
    if (!tunnel!.closed) await once(tunnel!, 'close');
    expect(server.rpc.connectionCount).to.equal(0);
  });

  it('keeps an idle tunnel open while a call runs past idleTimeout', async () => {
    const server = await startEchoServer(cleanup, { server: { idleTimeout: 300 } });
    const client = cleanup.add(await connect(server.url), (each) => each.close());
    expect(await createClient(Echo, client).sleep({ ms: 1500 })).to.deep.equal({ slept: 1500 });
  });
});

describe('limits between the real client and server', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('fails a call over the client maxFrameSize with RESOURCE_EXHAUSTED, unsent, and keeps the tunnel', async () => {
    const server = await startEchoServer(cleanup);
    const client = cleanup.add(await connect(server.url, { maxFrameSize: 1024 }), (each) => each.close());
    const echo = createClient(Echo, client);
    const error = await expectRejects(echo.echo('x'.repeat(2000)), 'RESOURCE_EXHAUSTED', 'maxFrameSize 1024');
    expect(mayHaveRunOf(error)).to.equal(false);
    expect(await echo.add({ a: 1, b: 2 })).to.equal(3);
  });

  it('answers a result over the server maxFrameSize with RESOURCE_EXHAUSTED and keeps the tunnel', async () => {
    const Big = defineService('Big', { make: { input: z.strictObject({ bytes: z.number().int().min(0) }), output: z.string() } });
    const rpc = new RpcServer({ maxFrameSize: 4096, logger: () => undefined }).register(Big, { make: ({ bytes }) => 'b'.repeat(bytes) });
    cleanup.defer(() => rpc.close());
    const { url } = await rpc.listen(0);
    const big = createClient(Big, cleanup.add(await connect(url), (each) => each.close()));
    expect(await big.make({ bytes: 4000 })).to.equal('b'.repeat(4000));
    const error = await expectRejects(big.make({ bytes: 5000 }), 'RESOURCE_EXHAUSTED', 'maxFrameSize 4096');
    expect(error.data).to.deep.include({ maxFrameSize: 4096 });
    expect(await big.make({ bytes: 3 })).to.equal('bbb');
  });

  it('closes the tunnel when a result exceeds the client maxFrameSize, failing pending calls with UNAVAILABLE', async () => {
    const Big = defineService('Big', { make: { input: z.strictObject({ bytes: z.number().int().min(0) }), output: z.string() } });
    const observed = observeEcho();
    const rpc = new RpcServer({ logger: () => undefined }).register(Big, { make: ({ bytes }) => 'b'.repeat(bytes) }).register(Echo, observed.impl);
    cleanup.defer(() => rpc.close());
    const { url } = await rpc.listen(0);
    const client = cleanup.add(await connect(url, { maxFrameSize: 1024 }), (each) => each.close());
    const big = createClient(Big, client);
    const sleeping = expectRejects(createClient(Echo, client).sleep({ ms: 60_000 }), 'UNAVAILABLE');
    await observed.sleepsStarted(1);

    const error = await expectRejects(big.make({ bytes: 5000 }), 'UNAVAILABLE', 'maxFrameSize 1024');
    expect(mayHaveRunOf(error)).to.equal(true);
    expect(mayHaveRunOf(await sleeping)).to.equal(true);
    // The server aborted the handler still running on that tunnel once the client dropped it.
    await observed.sleepsAborted(1);
    // The client redials and carries on; another client with the default limit gets the large result.
    expect(await big.make({ bytes: 10 })).to.equal('b'.repeat(10));
    const other = createClient(Big, cleanup.add(await connect(url), (each) => each.close()));
    expect(await other.make({ bytes: 5000 })).to.have.length(5000);
  });

  it('closes the tunnel with goaway RESOURCE_EXHAUSTED when the client sends a frame over the server maxFrameSize', async () => {
    const server = await startEchoServer(cleanup, { server: { maxFrameSize: 1024 } });
    const client = cleanup.add(await connect(server.url, { reconnect: false }), (each) => each.close());
    const error = await expectRejects(client.call('Echo.echo', 'x'.repeat(2000)), 'UNAVAILABLE', 'RESOURCE_EXHAUSTED');
    expect(error.message).to.include('maxFrameSize 1024');
    expect((await client.closed)?.code).to.equal('UNAVAILABLE');
    const other = createClient(Echo, cleanup.add(await connect(server.url), (each) => each.close()));
    expect(await other.add({ a: 1, b: 2 })).to.equal(3);
  });

  it('lets a reconnecting client carry on after the server closed a tunnel over its maxFrameSize', async () => {
    const server = await startEchoServer(cleanup, { server: { maxFrameSize: 1024 } });
    const client = cleanup.add(await connect(server.url, { minReconnectDelay: 20 }), (each) => each.close());
    const echo = createClient(Echo, client);
    // The oversized call is above the goaway's lastId: it fails as not run and is not re-sent (it would only break
    // the next tunnel the same way).
    await expectRejects(echo.echo('x'.repeat(2000)), 'UNAVAILABLE', 'RESOURCE_EXHAUSTED');
    expect(await echo.add({ a: 1, b: 2 })).to.equal(3);
  });

  // Regression: a goaway PROTOCOL_ERROR or RESOURCE_EXHAUSTED failed every pending call with mayHaveRun: true,
  // ignoring lastId. PROTOCOL.md 7.4 and 7.5: calls with id > lastId did not run. Here the server took id 1
  // (lastId 1) and refused id 2 at its frame header.
  it('reports calls above the goaway lastId as not run when the server closes with RESOURCE_EXHAUSTED', async () => {
    const server = await startEchoServer(cleanup, { server: { maxFrameSize: 1024 } });
    const client = cleanup.add(await connect(server.url, { reconnect: false }), (each) => each.close());
    const taken = expectRejects(client.call('Echo.sleep', { ms: 60_000 }), 'UNAVAILABLE'); // id 1, taken by the server
    await server.echo.sleepsStarted(1);
    const refused = expectRejects(client.call('Echo.echo', 'x'.repeat(2000)), 'UNAVAILABLE'); // id 2, its header trips the limit
    expect(mayHaveRunOf(await taken)).to.equal(true);
    expect(mayHaveRunOf(await refused)).to.equal(false);
  });
});
