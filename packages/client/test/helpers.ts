/**
 * Client test helpers on top of the workspace test kit (@tunnelrpc/test-kit): a client connected to a scripted
 * server, and the clients a test made, closed by `cleanup()` in each file's afterEach with every scripted server.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { connect, type ClientOptions, type RpcClient } from '@tunnelrpc/client';
import { ScriptedServer, type ScriptedPeer } from '@tunnelrpc/test-kit';

const clients = new Set<RpcClient>();

/** track registers a client so cleanup() waits for it to be closed. */
export function track(client: RpcClient): RpcClient {
  clients.add(client);
  return client;
}

/** Tunnel is a connected client and the peer that plays its server. */
export interface Tunnel {
  server: ScriptedServer;
  peer: ScriptedPeer;
  client: RpcClient;
}

/** openTunnel starts a scripted server, connects a client to it and accepts (with `after` behind the 200 head). */
export async function openTunnel(options: ClientOptions = {}, after?: Buffer): Promise<Tunnel> {
  const server = await ScriptedServer.start();
  // One tunnel per test: reconnects are covered in reconnect.test.ts, against a server that accepts again.
  const connecting = connect(server.url, { reconnect: false, ...options });
  const peer = await server.nextPeer();
  await peer.head;
  await peer.accept(after);
  const client = track(await connecting);
  return { server, peer, client };
}

/**
 * cleanup closes every scripted server (destroying its sockets, so every client loses its tunnel) and waits for
 * every tracked client to report closed.
 */
export async function cleanup(): Promise<void> {
  await ScriptedServer.closeAll();
  for (const client of [...clients]) await client.close();
  clients.clear();
}

/** freePort returns a TCP port on 127.0.0.1 that nothing listens on (it was just released). */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** polluted reads the property a prototype-pollution attack would set on every object. */
export function polluted(): unknown {
  return ({} as Record<string, unknown>)['polluted'];
}

/** nextTurn resolves after pending I/O callbacks of this loop turn have run (setImmediate). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * noted marks a promise as handled now (so a rejection that lands before the test awaits it is not reported as
 * unhandled) and returns it unchanged: awaiting it later still sees the rejection.
 */
export function noted<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}
