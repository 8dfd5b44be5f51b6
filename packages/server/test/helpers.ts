/**
 * Server test helpers on top of the workspace test kit (@tunnelrpc/test-kit): a real RpcServer on 127.0.0.1:0, raw
 * `net` sockets that play the client (a RawTunnel of the kit past the handshake), hand-made requests, and checks
 * that hostile input left no trace. Everything opened here is closed by cleanup(), which every test file runs in
 * afterEach.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { parseResponseHead } from '@tunnelrpc/protocol/internal';
import { RpcServer, type LogEntry, type ServerOptions } from '@tunnelrpc/server';
import { RawTunnel } from '@tunnelrpc/test-kit';
import { Probe, Svc, createSvc } from './fixture.js';

const sockets = new Set<Socket>();
const rpcServers = new Set<RpcServer>();
const httpServers = new Set<HttpServer>();


/** TestServer is a listening RpcServer with the Svc fixture registered. */
export interface TestServer {
  rpc: RpcServer;
  port: number;
  probe: Probe;
  logs: LogEntry[];
}

/** startServer creates an RpcServer with `options`, registers Svc and listens on 127.0.0.1:0. */
export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  const probe = new Probe();
  const logs: LogEntry[] = [];
  // A short shutdownTimeout keeps cleanup() fast when a test leaves a call hanging; tests of shutdown set their own.
  const rpc = new RpcServer({ logger: (entry) => logs.push(entry), shutdownTimeout: 500, ...options });
  rpc.register(Svc, createSvc(probe));
  rpcServers.add(rpc);
  const { port } = await rpc.listen(0);
  return { rpc, port, probe, logs };
}

/** track registers an RpcServer or an http server that cleanup() must close. */
export function track(server: RpcServer | HttpServer): void {
  if (server instanceof RpcServer) rpcServers.add(server);
  else httpServers.add(server);
}

/** cleanup destroys every socket the helpers opened and closes every server. Run it in afterEach. */
export async function cleanup(): Promise<void> {
  // A reset, not a FIN: the server keeps a half-closed tunnel open while its calls run, and that would make
  // close() below wait for shutdownTimeout.
  for (const socket of sockets) {
    socket.on('error', () => {});
    if (!socket.destroyed) socket.resetAndDestroy();
  }
  sockets.clear();
  const closing: Promise<unknown>[] = [];
  for (const rpc of rpcServers) closing.push(rpc.close());
  rpcServers.clear();
  for (const server of httpServers) {
    closing.push(new Promise((resolve) => server.close(resolve)));
    server.closeAllConnections();
  }
  httpServers.clear();
  await Promise.all(closing);
}

/** dial opens a TCP connection to 127.0.0.1:port with Nagle off. */
export async function dial(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  sockets.add(socket);
  socket.setNoDelay(true);
  await once(socket, 'connect');
  return socket;
}

/** write writes a chunk and resolves once it has been handed to the kernel. */
export function write(socket: Socket, chunk: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) => socket.write(chunk, (error) => (error ? reject(error) : resolve())));
}

/**
 * openTunnel dials `port`, sends the CONNECT head followed by `extraBytes` in one write, and resolves once the
 * server answered 200; cleanup() resets its socket.
 */
export async function openTunnel(port: number, extraBytes?: Uint8Array): Promise<RawTunnel> {
  return await RawTunnel.over(await dial(port), extraBytes);
}

/** HttpReply is a whole HTTP response read until the server closed the socket. */
export interface HttpReply {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
}

/** exchange dials `port`, writes `bytes`, and reads the whole reply until the server closes the socket. */
export async function exchange(port: number, bytes: Uint8Array | string): Promise<HttpReply> {
  const socket = await dial(port);
  const reply = readReply(socket);
  await write(socket, bytes);
  return await reply;
}

/** readReply collects everything a socket receives until it closes and parses it as an HTTP response. */
export async function readReply(socket: Socket): Promise<HttpReply> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  await once(socket, 'close');
  const all = Buffer.concat(chunks);
  const head = parseResponseHead(all);
  if (head === undefined) throw new Error(`no complete HTTP head before close: ${JSON.stringify(all.toString('latin1'))}`);
  return { status: head.status, headers: head.headers, body: head.rest.toString('utf8'), raw: all.toString('latin1') };
}

/** expectNoPollution asserts that Object.prototype gained no property from hostile input. */
export function expectNoPollution(): void {
  expect(({} as Record<string, unknown>)['polluted']).to.equal(undefined);
  expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted')).to.equal(false);
  expect(Object.getOwnPropertyNames(Object.prototype)).to.not.include('polluted');
}
