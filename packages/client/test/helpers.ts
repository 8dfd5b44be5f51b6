/**
 * Test helpers for the client: a hand-written server that plays wire-v1 byte for byte over a real socket
 * (127.0.0.1:0 or a unix socket in os.tmpdir()), and assertions on RpcError. Everything a test opens is registered
 * here and torn down by `cleanup()` in each file's afterEach.
 */
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { connect, type ClientOptions, type RpcClient } from '@tunnelrpc/client';
import {
  CONNECTED_RESPONSE,
  FrameDecoder,
  MAX_UINT32,
  RpcError,
  decodeMessage,
  encodeMessage,
  type ErrorCode,
  type Message,
  type RequestMessage,
} from '@tunnelrpc/protocol';

/** Peer is the server side of one accepted socket, scripted by the test. */
export class Peer {
  readonly socket: Socket;
  /** The CONNECT head as the client sent it, through the blank line (latin1). */
  readonly head: Promise<string>;
  /** Resolves when the client's side of the stream has ended (FIN) or the socket closed. */
  readonly ended: Promise<void>;
  /** Resolves when the socket is fully closed. */
  readonly closed: Promise<void>;
  #resolveHead!: (head: string) => void;
  #pending: Buffer = Buffer.alloc(0);
  #headDone = false;
  // The peer accepts anything up to the wire maximum: the tests check the client's sizes, not the peer's.
  readonly #decoder = new FrameDecoder(MAX_UINT32);
  readonly #messages: Message[] = [];
  readonly #waiters: { resolve: (message: Message) => void; reject: (error: Error) => void }[] = [];
  #isEnded = false;
  #failure: Error | undefined;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    this.head = new Promise((resolve) => (this.#resolveHead = resolve));
    this.ended = new Promise((resolve) => {
      socket.once('end', resolve);
      socket.once('close', resolve);
    });
    this.closed = new Promise((resolve) => socket.once('close', resolve));
    this.ended.then(() => {
      this.#isEnded = true;
      this.#flushWaiters();
    });
    // A reset from a client that destroys its socket is expected in many tests.
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
  }

  /** isEnded tells whether the client's stream has ended. */
  get isEnded(): boolean {
    return this.#isEnded;
  }

  /** write sends raw bytes. */
  write(bytes: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (error) => (error ? reject(error) : resolve())));
  }

  /** accept writes the 200 head, and `after` (frames) in the same write. */
  accept(after: Buffer = Buffer.alloc(0)): Promise<void> {
    return this.write(Buffer.concat([Buffer.from(CONNECTED_RESPONSE, 'latin1'), after]));
  }

  /** send writes one message as a frame. */
  send(message: Message): Promise<void> {
    return this.write(encodeMessage(message));
  }

  /** respond answers a request with a result. */
  respond(id: number, result: unknown): Promise<void> {
    return this.send({ type: 1, id, result });
  }

  /** fail answers a request with an error. */
  fail(id: number, code: string, message: string, data?: unknown): Promise<void> {
    return this.send({ type: 1, id, error: data === undefined ? { code, message } : { code, message, data }, result: undefined });
  }

  /** nextMessage resolves with the next message the client sends; rejects if the client ends the stream first. */
  nextMessage(): Promise<Message> {
    const message = this.#messages.shift();
    if (message !== undefined) return Promise.resolve(message);
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#isEnded) return Promise.reject(new Error('the client ended the stream before sending another message'));
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** nextRequest resolves with the next message, asserting that it is a request. */
  async nextRequest(): Promise<RequestMessage> {
    const message = await this.nextMessage();
    expect(message.type, JSON.stringify(message)).to.equal(0);
    return message as RequestMessage;
  }

  /** messagesUntilEnd collects every message the client sends until it ends the stream. */
  async messagesUntilEnd(): Promise<Message[]> {
    const out: Message[] = [];
    for (;;) {
      try {
        out.push(await this.nextMessage());
      } catch {
        return out;
      }
    }
  }

  #onData(chunk: Buffer): void {
    if (!this.#headDone) {
      this.#pending = Buffer.concat([this.#pending, chunk]);
      const end = this.#pending.indexOf('\r\n\r\n');
      if (end === -1) return;
      this.#headDone = true;
      this.#resolveHead(this.#pending.subarray(0, end + 4).toString('latin1'));
      chunk = this.#pending.subarray(end + 4);
      this.#pending = Buffer.alloc(0);
    }
    try {
      for (const payload of this.#decoder.push(chunk)) this.#deliver(decodeMessage(payload));
    } catch (error) {
      this.#failure = error as Error;
      this.#flushWaiters();
    }
  }

  #deliver(message: Message): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter.resolve(message);
    else this.#messages.push(message);
  }

  #flushWaiters(): void {
    for (const waiter of this.#waiters.splice(0)) {
      waiter.reject(this.#failure ?? new Error('the client ended the stream before sending another message'));
    }
  }
}

const servers = new Set<ScriptedServer>();
const clients = new Set<RpcClient>();
let socketCounter = 0;

/** ScriptedServer accepts sockets and hands each to the test as a Peer; it writes nothing on its own. */
export class ScriptedServer {
  readonly server: Server;
  /** Every peer accepted so far, in order. */
  readonly peers: Peer[] = [];
  readonly #waiting: ((peer: Peer) => void)[] = [];
  readonly #queued: Peer[] = [];
  readonly #socketPath: string | undefined;

  private constructor(server: Server, socketPath: string | undefined) {
    this.server = server;
    this.#socketPath = socketPath;
    server.on('connection', (socket) => {
      const peer = new Peer(socket);
      this.peers.push(peer);
      const waiter = this.#waiting.shift();
      if (waiter !== undefined) waiter(peer);
      else this.#queued.push(peer);
    });
  }

  /**
   * start listens on 127.0.0.1:0 (or `host`, and `port` when given), or on a fresh unix socket path in os.tmpdir()
   * when `unix` is set.
   */
  static async start(options: { unix?: boolean; host?: string; port?: number } = {}): Promise<ScriptedServer> {
    const socketPath = options.unix === true ? join(tmpdir(), `tunnelrpc-client-${process.pid}-${++socketCounter}.sock`) : undefined;
    const server = createServer();
    const scripted = new ScriptedServer(server, socketPath);
    servers.add(scripted);
    if (socketPath !== undefined) {
      rmSync(socketPath, { force: true });
      server.listen(socketPath);
    } else {
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
    }
    await once(server, 'listening');
    return scripted;
  }

  /** port is the TCP port (TCP servers only). */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** socketPath is the unix socket path (unix servers only). */
  get socketPath(): string {
    if (this.#socketPath === undefined) throw new Error('not a unix socket server');
    return this.#socketPath;
  }

  /** url is `http://127.0.0.1:PORT/_rpc`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/_rpc`;
  }

  /** nextPeer resolves with the next accepted socket. */
  nextPeer(): Promise<Peer> {
    const queued = this.#queued.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** close destroys every accepted socket and stops listening. */
  async close(): Promise<void> {
    servers.delete(this);
    for (const peer of this.peers) peer.socket.destroy();
    if (this.server.listening) {
      this.server.close();
      await once(this.server, 'close');
    }
    if (this.#socketPath !== undefined) rmSync(this.#socketPath, { force: true });
  }
}

/** track registers a client so cleanup() waits for it to be closed. */
export function track(client: RpcClient): RpcClient {
  clients.add(client);
  return client;
}

/** Tunnel is a connected client and the peer that plays its server. */
export interface Tunnel {
  server: ScriptedServer;
  peer: Peer;
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
  for (const server of [...servers]) await server.close();
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

/**
 * expectRejects awaits `promise`, asserts that it rejects with an RpcError of `code` whose message contains
 * `fragment`, and returns the error for checks on `data`.
 */
export async function expectRejects(promise: Promise<unknown>, code: ErrorCode, fragment?: string): Promise<RpcError> {
  let value: unknown;
  try {
    value = await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(RpcError);
    const rpc = error as RpcError;
    expect(rpc.code, rpc.message).to.equal(code);
    if (fragment !== undefined && !rpc.message.includes(fragment)) {
      expect.fail(`message ${JSON.stringify(rpc.message)} does not include ${JSON.stringify(fragment)}`);
    }
    return rpc;
  }
  return expect.fail(`expected a rejection with RpcError ${code}, but it resolved with ${JSON.stringify(value)}`);
}

/** expectThrows runs `fn`, asserting that it throws an RpcError of `code` whose message contains `fragment`. */
export function expectThrows(fn: () => unknown, code: ErrorCode, fragment?: string): RpcError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(RpcError);
    const rpc = error as RpcError;
    expect(rpc.code, rpc.message).to.equal(code);
    if (fragment !== undefined && !rpc.message.includes(fragment)) {
      expect.fail(`message ${JSON.stringify(rpc.message)} does not include ${JSON.stringify(fragment)}`);
    }
    return rpc;
  }
  return expect.fail(`expected an RpcError ${code} to be thrown`);
}

/** polluted reads the property a prototype-pollution attack would set on every object. */
export function polluted(): unknown {
  return ({} as Record<string, unknown>)['polluted'];
}

/** frameOf prefixes raw payload bytes with their uint32 big-endian length. */
export function frameOf(payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(payload.length, 0);
  return Buffer.concat([header, payload]);
}

/** hex turns spaced hex such as `'d4 72 40'` into bytes. */
export function hex(text: string): Buffer {
  const digits = text.replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`hex(): not an even run of hex digits: ${text}`);
  return Buffer.from(digits, 'hex');
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
