/**
 * The real client against the real server: a bad call argument fails that call and never costs the
 * tunnel its other calls; a lazy client waits for a server that starts late; connect headers given as a function
 * reach `authorize` on every dial.
 */
import { expect } from 'chai';
import type { IncomingMessage } from 'node:http';
import { connect, createClient, createRpcClient, type ClientOptions, type RpcClient } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import { Cleanup } from '../helpers/cleanup.js';
import { expectRejects } from '@tunnelrpc/test-kit';
import { mayHaveRunOf } from '../helpers/rpc-error.js';
import { startEchoServer } from '../helpers/servers.js';

describe('call arguments (client and server)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function open(url: string, options?: ClientOptions): Promise<RpcClient> {
    return cleanup.add(await connect(url, options), (client) => client.close());
  }

  it('fails a call with a non-string header alone, and the call in flight on the same tunnel succeeds', async () => {
    const server = await startEchoServer(cleanup);
    const client = await open(server.url, { reconnect: false });
    const echo = createClient(Echo, client);
    const running = echo.sleep({ ms: 50 });
    await server.echo.sleepsStarted(1);
    const bad = await expectRejects(echo.add({ a: 1, b: 2 }, { headers: { 'x-attempt': 2 as unknown as string } }), 'INVALID_ARGUMENT', 'x-attempt');
    expect(mayHaveRunOf(bad)).to.equal(false);
    const badNote = await expectRejects(echo.notify(1, { headers: { 'X-A': 'a', 'x-a': 'b' } }), 'INVALID_ARGUMENT', 'twice');
    expect(mayHaveRunOf(badNote)).to.equal(false);
    await expectRejects(echo.add({ a: 1, b: 2 }, { timeout: -5 }), 'DEADLINE_EXCEEDED', 'deadline had passed already');
    const deep = JSON.parse(`${'['.repeat(40)}${']'.repeat(40)}`) as unknown;
    await expectRejects(client.call('Echo.echo', deep), 'INVALID_ARGUMENT', 'maxDepth');
    expect(await running).to.deep.equal({ slept: 50 });
    expect(await echo.add({ a: 2, b: 3 })).to.equal(5);
    expect(server.tunnels.size).to.equal(1);
  });

  it('lets a lazy client wait for a server that starts after it, bounded by the call deadline', async () => {
    const server = await startEchoServer(cleanup);
    const url = server.url;
    // Stop listening: the client's first dials are refused, and it retries until the server listens again.
    const port = server.port!;
    await new Promise<void>((resolve) => server.http.close(() => resolve()));
    const client = cleanup.add(createRpcClient(url, { minReconnectDelay: 5, maxReconnectDelay: 20 }), (each) => each.close());
    const echo = createClient(Echo, client);
    const refused = await expectRejects(echo.add({ a: 1, b: 1 }, { waitForReady: false }), 'UNAVAILABLE', 'waitForReady is false');
    expect(mayHaveRunOf(refused)).to.equal(false);
    const waiting = echo.add({ a: 20, b: 22 }, { timeout: 60_000 });
    server.http.listen(port, '127.0.0.1');
    expect(await waiting).to.equal(42);
  });

  it("gives authorize the new token on each redial when headers is a function", async () => {
    const seen: string[] = [];
    let secondDial!: () => void;
    const redialed = new Promise<void>((resolve) => (secondDial = resolve));
    const server = await startEchoServer(cleanup, {
      server: {
        authorize: (req: IncomingMessage) => {
          seen.push(req.headers.authorization ?? '');
          if (seen.length === 2) secondDial();
          return seen.length;
        },
      },
    });
    let issued = 0;
    const client = await open(server.url, { minReconnectDelay: 5, maxReconnectDelay: 20, headers: async () => ({ Authorization: `Bearer t${++issued}` }) });
    const echo = createClient(Echo, client);
    expect(await echo.add({ a: 1, b: 1 })).to.equal(2);
    for (const socket of server.tunnels) socket.destroy();
    await redialed;
    expect(await echo.add({ a: 1, b: 2 }, { timeout: 60_000 })).to.equal(3);
    expect(seen).to.deep.equal(['Bearer t1', 'Bearer t2']);
  });
});
