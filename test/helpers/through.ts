/**
 * The checks every middle box must pass: one call, 1,000 calls multiplexed on one tunnel, a cancel that
 * reaches the handler, and a goaway drain (server close()) during which a running call still gets its answer.
 */
import { expect } from 'chai';
import { connect, createClient, type ClientOptions, type RpcClient } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import type { Cleanup } from './cleanup.js';
import { expectRejects } from '@tunnelrpc/test-kit';
import type { EchoServer } from './servers.js';

/** MULTIPLEXED_CALLS is how many calls go over one tunnel at once through each box. */
export const MULTIPLEXED_CALLS = 1000;

/** openThrough connects to `url` with `options` (no reconnects: one tunnel per check) and closes it on cleanup. */
export async function openThrough(cleanup: Cleanup, url: string, options: ClientOptions): Promise<RpcClient> {
  return cleanup.add(await connect(url, { reconnect: false, ...options }), (client) => client.close());
}

/** expectOneCall proves a call goes through and its answer comes back. */
export async function expectOneCall(client: RpcClient): Promise<void> {
  expect(await createClient(Echo, client).add({ a: 20, b: 22 })).to.equal(42);
}

/** expectMultiplexed sends MULTIPLEXED_CALLS calls at once on one tunnel; each gets its own answer. */
export async function expectMultiplexed(client: RpcClient): Promise<void> {
  const echo = createClient(Echo, client);
  const results = await Promise.all(Array.from({ length: MULTIPLEXED_CALLS }, (_, i) => echo.echo({ i })));
  results.forEach((result, i) => expect(result, `call ${i}`).to.deep.equal({ i }));
}

/** expectCancel aborts a running call: the caller gets CANCELLED and the handler's signal is aborted on the server. */
export async function expectCancel(client: RpcClient, server: Pick<EchoServer, 'echo'>): Promise<void> {
  const controller = new AbortController();
  const call = client.call('Echo.sleep', { ms: 120_000 }, { signal: controller.signal });
  await server.echo.sleepsStarted(1);
  controller.abort();
  await expectRejects(call, 'CANCELLED');
  await server.echo.sleepsAborted(1);
}

/**
 * expectDrain closes the server while a call runs: the goaway crosses the box, the running call still gets its
 * answer, and close() resolves once the tunnel has closed. `sleepsBefore`: sleep calls this server started already.
 */
export async function expectDrain(client: RpcClient, server: Pick<EchoServer, 'echo' | 'rpc'>, sleepsBefore = 0): Promise<void> {
  const running = client.call('Echo.sleep', { ms: 300 });
  await server.echo.sleepsStarted(sleepsBefore + 1);
  const closed = server.rpc.close();
  expect(await running).to.deep.equal({ slept: 300 });
  await closed;
  expect(server.rpc.connectionCount).to.equal(0);
}
