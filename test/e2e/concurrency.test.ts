/**
 * Many calls multiplexed over one tunnel, and many tunnels on one server: every call gets its own answer, whatever
 * the order the answers come back in.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { connect, createClient, type RpcClient } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import { Cleanup } from '../helpers/cleanup.js';
import { expectRejects } from '@tunnelrpc/test-kit';
import { mayHaveRunOf } from '../helpers/rpc-error.js';
import { startEchoServer } from '../helpers/servers.js';

/** runPool runs task(0 … count-1) with at most `width` running at once and resolves with the results in index order. */
async function runPool<T>(count: number, width: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      results[index] = await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, worker));
  return results;
}

describe('concurrency', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function open(url: string): Promise<RpcClient> {
    return cleanup.add(await connect(url), (client) => client.close());
  }

  it('answers 2,000 calls on one tunnel, at most 500 outstanding, each with its own value', async () => {
    const server = await startEchoServer(cleanup);
    const client = await open(server.url);
    const echo = createClient(Echo, client);
    let mostPending = 0;
    const results = await runPool(2000, 500, async (i) => {
      const call = i % 3 === 0 ? echo.add({ a: i, b: 1_000_000 }) : echo.echo({ i, text: `call ${i}` });
      mostPending = Math.max(mostPending, client.pendingCalls);
      return call;
    });
    expect(results).to.have.length(2000);
    results.forEach((result, i) => {
      if (i % 3 === 0) expect(result, `call ${i}`).to.equal(i + 1_000_000);
      else expect(result, `call ${i}`).to.deep.equal({ i, text: `call ${i}` });
    });
    // 500 calls were outstanding at once: far over the server's 128 in flight per tunnel, so its backpressure
    // (pausing the socket) was exercised, and under the client's maxPendingCalls of 1024.
    expect(mostPending).to.equal(500);
    expect(client.pendingCalls).to.equal(0);
  });

  it('answers calls in the order they finish, not the order they were sent', async () => {
    const server = await startEchoServer(cleanup);
    const echo = createClient(Echo, await open(server.url));
    const finished: number[] = [];
    await Promise.all(
      [600, 300, 0].map(async (ms) => {
        const { slept } = await echo.sleep({ ms });
        finished.push(slept);
      }),
    );
    expect(finished).to.deep.equal([0, 300, 600]);
  });

  it('serves 20 clients at once, each with its own answers, and counts all their notifications', async () => {
    const server = await startEchoServer(cleanup);
    const clients = await Promise.all(Array.from({ length: 20 }, () => open(server.url)));
    expect(server.rpc.connectionCount).to.equal(20);

    const perClient = await Promise.all(
      clients.map(async (client, c) => {
        const echo = createClient(Echo, client);
        for (let n = 0; n < 5; n++) echo.notify({ c, n });
        const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => echo.add({ a: c * 1000, b: i })));
        return { c, answers };
      }),
    );
    for (const { c, answers } of perClient) {
      expect(answers).to.deep.equal(Array.from({ length: 50 }, (_, i) => c * 1000 + i));
    }
    // Each client's notifications went ahead of its calls on its own tunnel, so all 100 have been counted.
    expect(await createClient(Echo, clients[7]!).count()).to.equal(100);
    expect(server.rpc.connectionCount).to.equal(20);
  });

  it('keeps serving the other clients while one of them closes', async () => {
    const server = await startEchoServer(cleanup);
    const clients = await Promise.all(Array.from({ length: 5 }, () => open(server.url)));
    const calls = clients.map((client, c) => createClient(Echo, client).sleep({ ms: 100 + c }));
    await server.echo.sleepsStarted(5);
    await clients[2]!.close();
    expect(await Promise.all(calls)).to.deep.equal([0, 1, 2, 3, 4].map((c) => ({ slept: 100 + c })));
    const rest = clients.filter((_, c) => c !== 2);
    expect(await Promise.all(rest.map((client) => createClient(Echo, client).add({ a: 1, b: 1 })))).to.deep.equal([2, 2, 2, 2]);
  });

  describe('limits', () => {
    it('fails a call past the client maxPendingCalls with RESOURCE_EXHAUSTED, unsent, and takes calls again once answers arrive', async () => {
      const server = await startEchoServer(cleanup);
      const client = cleanup.add(await connect(server.url, { maxPendingCalls: 3 }), (each) => each.close());
      const echo = createClient(Echo, client);
      const running = [echo.sleep({ ms: 50 }), echo.sleep({ ms: 50 }), echo.sleep({ ms: 50 })];
      const error = await expectRejects(echo.add({ a: 1, b: 2 }), 'RESOURCE_EXHAUSTED', 'maxPendingCalls');
      expect(mayHaveRunOf(error)).to.equal(false);
      expect(await Promise.all(running)).to.deep.equal([{ slept: 50 }, { slept: 50 }, { slept: 50 }]);
      expect(await echo.add({ a: 1, b: 2 })).to.equal(3);
      expect(server.echo.aborted).to.deep.equal([]);
    });

    it('answers a call past the server maxCallsInFlight with RESOURCE_EXHAUSTED, across tunnels', async () => {
      const server = await startEchoServer(cleanup, { server: { maxCallsInFlight: 2, shareByAddress: false } });
      const first = createClient(Echo, await open(server.url));
      const second = createClient(Echo, await open(server.url));
      const running = [first.sleep({ ms: 100 }), second.sleep({ ms: 100 })];
      await server.echo.sleepsStarted(2);
      await expectRejects(second.add({ a: 1, b: 2 }), 'RESOURCE_EXHAUSTED', 'maxCallsInFlight 2');
      expect(await Promise.all(running)).to.deep.equal([{ slept: 100 }, { slept: 100 }]);
      expect(await first.add({ a: 1, b: 2 })).to.equal(3);
    });

    it('refuses a tunnel past maxConnections with 503, which connect() reports as UNAVAILABLE, and keeps the others', async () => {
      const server = await startEchoServer(cleanup, { server: { maxConnections: 3 } });
      // Opened one after another, so the server's tunnel sockets are in the same order as the clients.
      const clients = [await open(server.url), await open(server.url), await open(server.url)];
      const tunnels = [...server.tunnels];
      expect(tunnels).to.have.length(3);
      const error = await expectRejects(connect(server.url), 'UNAVAILABLE', 'maxConnections 3');
      expect(error.data).to.deep.include({ status: 503 });
      expect(await Promise.all(clients.map((client) => createClient(Echo, client).add({ a: 1, b: 1 })))).to.deep.equal([2, 2, 2]);

      // Closing one frees its slot once the server has seen the close.
      await clients[0]!.close();
      if (!tunnels[0]!.closed) await once(tunnels[0]!, 'close');
      expect(server.rpc.connectionCount).to.equal(2);
      expect(await createClient(Echo, await open(server.url)).add({ a: 2, b: 2 })).to.equal(4);
    });
  });
});
