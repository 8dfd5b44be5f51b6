/**
 * A tunnel that answers nothing: a hand-written server that completes the handshake, reads every frame and never
 * writes again (a frozen process whose kernel still acknowledges), beside a real server. With another tunnel
 * answering, the silent one is pinged and then closed after unresponsiveTimeout, and its idempotent calls are
 * answered by the other server; alone, it is never judged so. With attemptTimeout, an idempotent call on it is
 * cancelled there and re-sent; a call that is not idempotent is not.
 */
import { expect } from 'chai';
import { createRpcClient, RpcError, type ClientOptions, type RpcClient } from '@tunnelrpc/client';
import { encodeMessage, type Message } from '@tunnelrpc/protocol/internal';
import { Cleanup } from '../helpers/cleanup.js';
import { until } from '../helpers/load.js';
import { type ScriptedPeer, ScriptedServer } from '@tunnelrpc/test-kit';
import { startEchoServer } from '../helpers/servers.js';

describe('a tunnel that answers nothing', function () {
  this.timeout(30_000);
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  // A client over the silent server (first) and, unless `alone`, a real Echo server; resolves once both are ready.
  async function setUp(options: ClientOptions, alone = false): Promise<{ client: RpcClient; peer: ScriptedPeer; seen: Message[]; disconnects: string[] }> {
    const silent = await ScriptedServer.start();
    cleanup.defer(() => silent.close());
    const urls = [silent.url];
    if (!alone) urls.push((await startEchoServer(cleanup)).url);
    const disconnects: string[] = [];
    const client = cleanup.add(createRpcClient(urls, { ...options, listeners: [(event) => void (event.type === 'disconnected' && disconnects.push(event.reason))] }), (each) => each.close());
    const peer = await silent.nextPeer();
    await peer.head;
    await peer.accept();
    await until(() => client.endpoints.every((endpoint) => endpoint.state === 'ready'));
    // Everything the client sends to the silent server, read in the background.
    const seen: Message[] = [];
    void (async () => {
      for (;;) seen.push(await peer.nextMessage());
    })().catch(() => undefined);
    return { client, peer, seen, disconnects };
  }

  it('is pinged, then closed after unresponsiveTimeout while the other server answers; its idempotent calls are answered there', async () => {
    const { client, seen, disconnects } = await setUp({ unresponsiveTimeout: 400, outlierDetection: false });
    const calls = Array.from({ length: 40 }, (_, i) => client.call('Echo.echo', i, { idempotent: true, timeout: 15_000 }));
    await until(() => seen.some((message) => message.type === 0));
    const results = await Promise.all(calls);
    expect(results).to.deep.equal(Array.from({ length: 40 }, (_, i) => i));
    expect(seen.some((message) => message.type === 6), 'a ping went to the silent server').to.equal(true);
    expect(disconnects.filter((reason) => reason.includes('unresponsiveTimeout'))).to.have.length(1);
  });

  it('is never judged so when it is the only tunnel: its call ends at its own deadline', async () => {
    const { client, seen, disconnects } = await setUp({ unresponsiveTimeout: 200 }, true);
    const error = await client.call('Echo.echo', 'x', { idempotent: true, timeout: 1500 }).catch((caught: unknown) => caught);
    expect(error).to.be.instanceOf(RpcError);
    expect(error).to.have.property('code', 'DEADLINE_EXCEEDED');
    expect(seen.some((message) => message.type === 6), 'the watch still pings').to.equal(true);
    expect(disconnects).to.deep.equal([]);
    expect(client.endpoints[0]!.state).to.equal('ready');
  });

  it('re-sends an idempotent call after attemptTimeout, cancelling the first attempt; a call that is not idempotent waits', async () => {
    // Least-request picking: the latency estimate would keep every call off the silent server once it timed out.
    const { client, seen } = await setUp({ attemptTimeout: 300, unresponsiveTimeout: 0, outlierDetection: false, latencyAware: false });

    // Not idempotent: sent until one lands on the silent server, which then holds it to its deadline.
    let landed: unknown;
    for (let i = 0; i < 50 && landed === undefined; i++) {
      const outcome = client.call('Echo.sleep', { ms: 0 }, { timeout: 1500 }).then(() => undefined, (error: unknown) => error);
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (seen.some((message) => message.type === 0)) landed = await outcome;
      else await outcome;
    }
    expect(landed).to.be.instanceOf(RpcError);
    expect(landed).to.have.property('code', 'DEADLINE_EXCEEDED');
    const before = seen.length;

    const idempotent = Array.from({ length: 20 }, (_, i) => client.call('Echo.echo', i, { idempotent: true, timeout: 15_000 }));
    const results = await Promise.all(idempotent);
    expect(results).to.deep.equal(Array.from({ length: 20 }, (_, i) => i));
    const sentToSilent = seen.slice(before).filter((message) => message.type === 0).map((message) => (message as { id: number }).id);
    expect(sentToSilent.length, 'some calls went to the silent server first').to.be.above(0);
    // Every attempt on the silent server was cancelled there (the first phase's cancel may arrive late: ignored).
    const cancelled = (): Set<number> => new Set(seen.filter((message) => message.type === 3).map((message) => (message as { id: number }).id));
    await until(() => sentToSilent.every((id) => cancelled().has(id)));
  });

  it('is not judged silent while a large answer is still arriving, byte by byte, slower than unresponsiveTimeout', async () => {
    const { client, peer, seen, disconnects } = await setUp({ unresponsiveTimeout: 600, outlierDetection: false, latencyAware: false });
    let answer: Promise<unknown> | undefined;
    for (let i = 0; i < 50 && answer === undefined; i++) {
      const call = client.call('Echo.echo', 'big', { timeout: 20_000 });
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (seen.some((message) => message.type === 0 && (message as { params: unknown }).params === 'big')) answer = call;
      else await call;
    }
    expect(answer, 'a call landed on the silent server').to.not.equal(undefined);
    // Calls to the real server keep another tunnel answering the whole time (the silent one now has a call out,
    // so least-request picking sends them to the other).
    let running = true;
    const background = (async () => {
      while (running) await client.call('Echo.echo', 'other', { idempotent: true, timeout: 1000 }).catch(() => undefined);
    })();
    try {
      const request = seen.find((message) => message.type === 0 && (message as { params: unknown }).params === 'big') as { id: number };
      // One frame of about 2 KB, sent in 20 pieces 150 ms apart: 3 s without a complete frame, bytes all along.
      const frame = encodeMessage({ type: 1, id: request.id, result: 'y'.repeat(2000) });
      const step = Math.ceil(frame.length / 20);
      for (let offset = 0; offset < frame.length; offset += step) {
        await peer.write(frame.subarray(offset, offset + step));
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      expect(await answer).to.equal('y'.repeat(2000));
      expect(disconnects.filter((reason) => reason.includes('unresponsiveTimeout'))).to.deep.equal([]);
    } finally {
      running = false;
      await background;
    }
  });
});
