/**
 * Shared helpers of the server suite: a real RpcServer on 127.0.0.1:0, raw `net` sockets that play the client,
 * crafted frames, and a reader that turns what the server writes back into messages. Everything opened here is
 * closed by cleanup(), which every test file runs in afterEach.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import {
  FrameDecoder,
  MAX_UINT32,
  MessageType,
  decodeMessage,
  encodeConnectRequest,
  encodeFrame,
  encodeMessage,
  parseResponseHead,
  type GoawayMessage,
  type Message,
  type RequestMeta,
  type ResponseMessage,
  type WireError,
} from '@tunnelrpc/protocol';
import { RpcServer, type LogEntry, type ServerOptions } from '@tunnelrpc/server';
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

/** CONNECT_HEAD is the head a client sends to open a tunnel on the default path. */
export const CONNECT_HEAD = encodeConnectRequest('/_rpc', '127.0.0.1');

/**
 * FrameReader decodes the frames a socket receives. next() resolves with the next message, in order, and rejects
 * once the socket has closed with nothing left to read.
 */
export class FrameReader {
  readonly #decoder = new FrameDecoder(MAX_UINT32);
  readonly #messages: Message[] = [];
  readonly #waiters: { resolve: (message: Message) => void; reject: (error: Error) => void }[] = [];
  #ended: Error | undefined;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;

  constructor(readonly socket: Socket, initial: Buffer = Buffer.alloc(0)) {
    // A server that destroys the socket can cause ECONNRESET here; the close that follows is what tests await.
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('close', () => this.#end(new Error('the socket closed before the next message arrived')));
    socket.on('data', (chunk: Buffer) => this.#push(chunk));
    if (initial.length > 0) this.#push(initial);
  }

  /** next resolves with the next message the server sent. */
  next(): Promise<Message> {
    const message = this.#messages.shift();
    if (message !== undefined) return Promise.resolve(message);
    if (this.#ended !== undefined) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** pending counts messages received but not yet taken with next(). */
  get pending(): number {
    return this.#messages.length;
  }

  #push(chunk: Buffer): void {
    let payloads: Buffer[];
    try {
      payloads = this.#decoder.push(chunk);
      for (const payload of payloads) {
        const message = decodeMessage(payload, { maxFrameSize: MAX_UINT32, maxDepth: 1000, maxItemsPerFrame: MAX_UINT32 });
        const waiter = this.#waiters.shift();
        if (waiter !== undefined) waiter.resolve(message);
        else this.#messages.push(message);
      }
    } catch (error) {
      this.#end(new Error(`the server sent bytes the test reader cannot decode: ${String(error)}`));
      this.socket.destroy();
    }
  }

  #end(error: Error): void {
    this.#ended ??= error;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#ended);
  }
}

/** Tunnel is a raw socket past the CONNECT handshake, with a reader for what the server sends. */
export class Tunnel {
  constructor(
    readonly socket: Socket,
    readonly reader: FrameReader,
    /** The exact bytes of the reply head, blank line included. */
    readonly head: Buffer,
  ) {}

  /** next resolves with the next message from the server. */
  next(): Promise<Message> {
    return this.reader.next();
  }

  /** closed resolves when the socket has closed. */
  get closed(): Promise<void> {
    return this.reader.closed;
  }

  /** write sends raw bytes. */
  write(...chunks: Uint8Array[]): Promise<void> {
    return write(this.socket, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  }

  /** send encodes and sends messages in one write. */
  send(...messages: Message[]): Promise<void> {
    return this.write(...messages.map((message) => encodeMessage(message)));
  }

  /** call sends a request and resolves with the next message, asserting it is the response with that id. */
  async call(id: number, method: string, params: unknown, meta?: RequestMeta): Promise<ResponseMessage> {
    await this.write(request(id, method, params, meta));
    return expectResponse(await this.next(), id);
  }
}

/**
 * openTunnel dials `port`, sends the CONNECT head followed by `extraBytes` in one write, and resolves once the
 * server answered 200. Bytes that came with the 200 head are handed to the reader, never dropped.
 */
export async function openTunnel(port: number, extraBytes?: Uint8Array): Promise<Tunnel> {
  const socket = await dial(port);
  const headRead = readHead(socket);
  await write(socket, extraBytes === undefined ? CONNECT_HEAD : Buffer.concat([CONNECT_HEAD, extraBytes]));
  return await headRead;
}

/** readHead waits for the reply head on a socket that has sent a CONNECT, and wraps it as a Tunnel. */
export function readHead(socket: Socket): Promise<Tunnel> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const head = parseResponseHead(received);
      if (head === undefined) return;
      cleanupListeners();
      if (head.status !== 200) {
        reject(new Error(`CONNECT refused: ${received.toString('latin1')}`));
        return;
      }
      // Attached inside this 'data' emit, so no chunk can slip between the two listeners.
      const reader = new FrameReader(socket, head.rest);
      resolve(new Tunnel(socket, reader, received.subarray(0, received.length - head.rest.length)));
    };
    const onClose = (): void => {
      cleanupListeners();
      reject(new Error(`the socket closed before a reply head arrived; received ${JSON.stringify(received.toString('latin1'))}`));
    };
    const cleanupListeners = (): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
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

// ---- Bytes ----

/** hex turns spaced hex such as `'dd ff ff ff ff'` into bytes. */
export function hex(text: string): Buffer {
  const digits = text.replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`hex(): not an even run of hex digits: ${text}`);
  return Buffer.from(digits, 'hex');
}

/** frame prefixes a payload with its 4-byte big-endian length. */
export function frame(payload: Uint8Array): Buffer {
  return encodeFrame(payload);
}

/** packValue returns the MessagePack bytes of one value, as the protocol package writes it. */
export function packValue(value: unknown): Buffer {
  // A pong frame is: 4 length bytes, 92 (array of 2), 07 (type), then the value.
  return encodeMessage({ type: MessageType.Pong, data: value }).subarray(6);
}

/** request returns the whole frame of `[0, id, method, params, meta?]`. */
export function request(id: number, method: string, params: unknown, meta?: RequestMeta): Buffer {
  return encodeMessage(meta === undefined ? { type: 0, id, method, params } : { type: 0, id, method, params, meta });
}

/**
 * rawRequest returns the frame of a request whose fields are given as raw MessagePack bytes where a Buffer is
 * passed, and packed normally otherwise. Use it to put hostile bytes in one field of an otherwise valid request.
 */
export function rawRequest(id: unknown, method: unknown, params: unknown, ...meta: unknown[]): Buffer {
  const field = (value: unknown): Buffer => (Buffer.isBuffer(value) ? value : packValue(value));
  const fields = [0, id, method, params, ...meta].map(field);
  return frame(Buffer.concat([Buffer.from([0x90 | fields.length]), ...fields]));
}

/** repeat returns `count` copies of `bytes` back to back. */
export function repeat(bytes: Uint8Array, count: number): Buffer {
  const out = Buffer.allocUnsafe(bytes.length * count);
  for (let i = 0; i < count; i++) out.set(bytes, i * bytes.length);
  return out;
}

// ---- Assertions ----

/** expectResponse asserts that `message` is the response to `id` and returns it. */
export function expectResponse(message: Message, id: number): ResponseMessage {
  expect(message.type, `expected a response, got ${JSON.stringify(message)}`).to.equal(MessageType.Response);
  const response = message as ResponseMessage;
  expect(response.id).to.equal(id);
  return response;
}

/** expectResult asserts a successful response to `id` and returns its result. */
export function expectResult(message: Message, id: number): unknown {
  const response = expectResponse(message, id);
  expect(response.error, `expected a result, got error ${JSON.stringify(response.error)}`).to.equal(undefined);
  return response.result;
}

/** expectError asserts an error response to `id` with `code` and returns the wire error. */
export function expectError(message: Message, id: number, code: string): WireError {
  const response = expectResponse(message, id);
  expect(response.error, `expected error ${code}, got result ${JSON.stringify(response.result)}`).to.not.equal(undefined);
  const error = response.error!;
  expect(error.code, error.message).to.equal(code);
  expect(error.message).to.be.a('string').and.not.equal('');
  return error;
}

/** expectGoaway asserts that `message` is a goaway with `code` and returns it. */
export function expectGoaway(message: Message, code: string): GoawayMessage {
  expect(message.type, `expected a goaway, got ${JSON.stringify(message)}`).to.equal(MessageType.Goaway);
  const goaway = message as GoawayMessage;
  expect(goaway.code, goaway.message).to.equal(code);
  expect(goaway.message).to.be.a('string').and.not.equal('');
  return goaway;
}

// Wire-v1 field names may appear in a message about the field ("meta.timeout must be ..."); they are not peer data.
const WIRE_NAMES = new Set(['timeout', 'headers']);

/**
 * expectNoPeerBytes asserts that a message the server wrote quotes none of the peer's bytes: neither their hex nor
 * any printable run of 4 or more characters (wire-v1 field names excepted).
 */
export function expectNoPeerBytes(message: string, peerBytes: Buffer): void {
  if (peerBytes.length >= 3) expect(message).to.not.include(peerBytes.toString('hex'));
  for (const run of peerBytes.toString('latin1').match(/[\x21-\x7e]{4,}/g) ?? []) {
    if (!WIRE_NAMES.has(run)) expect(message).to.not.include(run);
  }
}

/** expectNoPollution asserts that Object.prototype gained no property from hostile input. */
export function expectNoPollution(): void {
  expect(({} as Record<string, unknown>)['polluted']).to.equal(undefined);
  expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted')).to.equal(false);
  expect(Object.getOwnPropertyNames(Object.prototype)).to.not.include('polluted');
}
