/**
 * A hand-written server for the client-side reliability cases (T24, T25): a plain net server whose every accepted
 * socket is handed to the test as a ScriptedPeer, which writes exactly the bytes the test asks for and decodes what
 * the real client sends. It answers nothing on its own, not even the CONNECT.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { CONNECTED_RESPONSE, FrameDecoder, MAX_UINT32, decodeMessage, encodeMessage, type Message, type RequestMessage } from '@tunnelrpc/protocol';

/** ScriptedPeer is the server side of one accepted socket. */
export class ScriptedPeer {
  readonly socket: Socket;
  /** Resolves with the CONNECT head the client sent, through the blank line. */
  readonly head: Promise<string>;
  /** Resolves when the socket has fully closed. */
  readonly closed: Promise<void>;
  #resolveHead!: (head: string) => void;
  #headBytes: Buffer = Buffer.alloc(0);
  #headDone = false;
  // Accepts anything up to the wire maximum: these tests look at the client's limits, not the peer's.
  readonly #decoder = new FrameDecoder(MAX_UINT32);
  readonly #messages: Message[] = [];
  #cursor = 0;
  #ended = false;
  #failure: unknown;
  #wake: Array<() => void> = [];

  constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    this.head = new Promise((resolve) => (this.#resolveHead = resolve));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    const ended = (): void => {
      this.#ended = true;
      this.#wakeAll();
    };
    socket.once('end', ended);
    socket.once('close', ended);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
  }

  /** write sends raw bytes and resolves once they are handed to the kernel. */
  write(bytes: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (error) => (error ? reject(error) : resolve())));
  }

  /** accept writes the 200 head, with `after` in the same write. */
  accept(after: Buffer = Buffer.alloc(0)): Promise<void> {
    return this.write(Buffer.concat([Buffer.from(CONNECTED_RESPONSE, 'latin1'), after]));
  }

  /** send writes one message as a frame. */
  send(message: Message): Promise<void> {
    return this.write(encodeMessage(message));
  }

  /** respond answers request `id` with a result. */
  respond(id: number, result: unknown): Promise<void> {
    return this.send({ type: 1, id, result });
  }

  /** next resolves with the next message the client sent; rejects if its stream ends first. */
  async next(): Promise<Message> {
    for (;;) {
      if (this.#failure !== undefined) throw new Error(`the client sent bytes that do not decode: ${String(this.#failure)}`);
      const message = this.#messages[this.#cursor];
      if (message !== undefined) {
        this.#cursor++;
        return message;
      }
      if (this.#ended) throw new Error('the client ended the stream before sending another message');
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
  }

  /** nextRequest resolves with the next message, which must be a request. */
  async nextRequest(): Promise<RequestMessage> {
    const message = await this.next();
    if (message.type !== 0) throw new Error(`expected a request, got ${JSON.stringify(message)}`);
    return message;
  }

  /** rest collects every message the client sends until its stream ends. */
  async rest(): Promise<Message[]> {
    const out: Message[] = [];
    for (;;) {
      try {
        out.push(await this.next());
      } catch {
        return out;
      }
    }
  }

  #onData(chunk: Buffer): void {
    if (!this.#headDone) {
      this.#headBytes = Buffer.concat([this.#headBytes, chunk]);
      const end = this.#headBytes.indexOf('\r\n\r\n');
      if (end === -1) return;
      this.#headDone = true;
      this.#resolveHead(this.#headBytes.subarray(0, end + 4).toString('latin1'));
      chunk = this.#headBytes.subarray(end + 4);
    }
    try {
      for (const payload of this.#decoder.push(chunk)) this.#messages.push(decodeMessage(payload));
    } catch (error) {
      this.#failure ??= error;
    }
    this.#wakeAll();
  }

  #wakeAll(): void {
    const waiting = this.#wake;
    this.#wake = [];
    for (const resolve of waiting) resolve();
  }
}

/** ScriptedServer hands every accepted socket to the test, in order. */
export class ScriptedServer {
  readonly server: Server;
  readonly peers: ScriptedPeer[] = [];
  #queued: ScriptedPeer[] = [];
  #waiting: Array<(peer: ScriptedPeer) => void> = [];

  private constructor(server: Server) {
    this.server = server;
    server.on('connection', (socket) => {
      const peer = new ScriptedPeer(socket);
      this.peers.push(peer);
      const waiter = this.#waiting.shift();
      if (waiter !== undefined) waiter(peer);
      else this.#queued.push(peer);
    });
  }

  /** start listens on 127.0.0.1:0. */
  static async start(): Promise<ScriptedServer> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return new ScriptedServer(server);
  }

  /** url is what connect() takes. */
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/_rpc`;
  }

  /** nextPeer resolves with the next accepted socket. */
  nextPeer(): Promise<ScriptedPeer> {
    const queued = this.#queued.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** close destroys every accepted socket and stops listening. */
  async close(): Promise<void> {
    for (const peer of this.peers) peer.socket.destroy();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
