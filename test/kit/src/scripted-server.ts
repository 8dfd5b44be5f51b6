/**
 * A hand-written server that plays wire-v1 byte for byte over a real socket (127.0.0.1:0 or a unix socket in
 * os.tmpdir()): every accepted socket is handed to the test as a ScriptedPeer, which writes exactly the bytes the
 * test asks for and decodes what the real client sends. It answers nothing on its own, not even the CONNECT.
 */
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { CONNECTED_RESPONSE, FrameDecoder, MAX_UINT32, decodeMessage, encodeMessage, type Message, type RequestMessage } from '@tunnelrpc/protocol/internal';

/** ScriptedPeer is the server side of one accepted socket, scripted by the test. */
export class ScriptedPeer {
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
let socketCounter = 0;

/** ScriptedServer accepts sockets and hands each to the test as a ScriptedPeer; it writes nothing on its own. */
export class ScriptedServer {
  readonly server: Server;
  /** Every peer accepted so far, in order. */
  readonly peers: ScriptedPeer[] = [];
  readonly #waiting: ((peer: ScriptedPeer) => void)[] = [];
  readonly #queued: ScriptedPeer[] = [];
  readonly #socketPath: string | undefined;

  private constructor(server: Server, socketPath: string | undefined) {
    this.server = server;
    this.#socketPath = socketPath;
    server.on('connection', (socket) => {
      const peer = new ScriptedPeer(socket);
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
    const socketPath = options.unix === true ? join(tmpdir(), `tunnelrpc-scripted-${process.pid}-${++socketCounter}.sock`) : undefined;
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
  nextPeer(): Promise<ScriptedPeer> {
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

  /** closeAll closes every scripted server still open: run it in afterEach. */
  static async closeAll(): Promise<void> {
    for (const server of [...servers]) await server.close();
  }
}
