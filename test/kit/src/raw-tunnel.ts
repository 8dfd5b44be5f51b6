/**
 * A raw socket that plays a hand-written client against the real server: it opens a tunnel byte by byte, writes
 * crafted frames, and reads back every message the server sends, in order, until the server closes the socket.
 */
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { expect } from 'chai';
import {
  FrameDecoder,
  MAX_UINT32,
  MessageType,
  decodeMessage,
  encodeConnectRequest,
  encodeMessage,
  parseResponseHead,
  type GoawayMessage,
  type Message,
  type RequestMeta,
  type ResponseMessage,
  type WireError,
} from '@tunnelrpc/protocol/internal';

/** CONNECT_HEAD is the head a client sends to open a tunnel on the default path. */
export const CONNECT_HEAD = encodeConnectRequest('/_rpc', '127.0.0.1');

// The reader decodes whatever the server writes, at the wire's maxima: the tests judge the server's sizes, not ours.
const READ_LIMITS = { maxFrameSize: MAX_UINT32, maxDepth: 1000, maxItemsPerFrame: MAX_UINT32 };

/**
 * rawSocket opens a plain TCP connection to 127.0.0.1:port with Nagle off, and resolves once it is connected.
 * `localAddress` picks another loopback source (127.0.0.2) for tests of per-address limits.
 */
export async function rawSocket(port: number, localAddress?: string): Promise<Socket> {
  const socket = netConnect({ host: '127.0.0.1', port, ...(localAddress === undefined ? {} : { localAddress }) });
  socket.setNoDelay(true);
  await once(socket, 'connect');
  return socket;
}

/**
 * readUntil collects bytes from `socket` until `marker` appears, and resolves with everything read (the marker and
 * any bytes after it included). Rejects if the socket ends first.
 */
export function readUntil(socket: Socket, marker: string | Uint8Array): Promise<Buffer> {
  const needle = typeof marker === 'string' ? Buffer.from(marker, 'latin1') : Buffer.from(marker);
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onClose);
    };
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      if (received.includes(needle)) {
        cleanup();
        socket.pause();
        resolve(received);
      }
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error(`socket closed before ${JSON.stringify(needle.toString('latin1'))} arrived; got ${JSON.stringify(received.toString('latin1').slice(0, 200))}`));
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onClose);
    socket.resume();
  });
}

/**
 * readTunnelHead waits for the reply head on a socket that has sent a CONNECT (or an Upgrade: `status` 101), and
 * wraps the socket as a RawTunnel. Bytes that came behind the head are the tunnel's first frames, never dropped.
 */
export function readTunnelHead(socket: Socket, status = 200): Promise<RawTunnel> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const head = parseResponseHead(received);
      if (head === undefined) return;
      detach();
      if (head.status !== status) {
        reject(new Error(`expected a ${status} reply, got: ${received.toString('latin1').slice(0, 300)}`));
        return;
      }
      // Attached inside this 'data' emit, so no chunk can slip between the two listeners.
      resolve(new RawTunnel(socket, received.subarray(0, received.length - head.rest.length), head.rest));
    };
    const onClose = (): void => {
      detach();
      reject(new Error(`the socket closed before a reply head arrived; received ${JSON.stringify(received.toString('latin1'))}`));
    };
    const detach = (): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/** RawTunnel is a raw socket past the CONNECT handshake that decodes every frame the server sends. */
export class RawTunnel {
  readonly socket: Socket;
  /** The exact bytes of the reply head, blank line included. */
  readonly head: Buffer;
  /** Every message the server sent, in order. */
  readonly messages: Message[] = [];
  /** Resolves when the socket has closed (whoever closed it). */
  readonly closed: Promise<void>;
  readonly #decoder = new FrameDecoder(MAX_UINT32);
  #undecodable: unknown;
  // next() reads `messages` in order from here; waiters are woken by every message and by the close.
  #cursor = 0;
  #isClosed = false;
  #wake: Array<() => void> = [];

  /**
   * open dials 127.0.0.1:port, sends `CONNECT /_rpc` (with `early` bytes in the same write, if given), and
   * resolves once the server answered 200.
   */
  static async open(port: number, early: Uint8Array = Buffer.alloc(0), localAddress?: string): Promise<RawTunnel> {
    return await RawTunnel.over(await rawSocket(port, localAddress), early);
  }

  /** over sends the CONNECT head and `early` on a connected socket, and resolves once the server answered 200. */
  static async over(socket: Socket, early: Uint8Array = Buffer.alloc(0)): Promise<RawTunnel> {
    const tunnel = readTunnelHead(socket);
    socket.write(early.length === 0 ? CONNECT_HEAD : Buffer.concat([CONNECT_HEAD, early]));
    return await tunnel;
  }

  /** Use open(), over() or readTunnelHead(). */
  constructor(socket: Socket, head: Buffer, rest: Buffer) {
    this.socket = socket;
    this.head = head;
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#isClosed = true;
        this.#wakeAll();
        resolve();
      }),
    );
    // A reset is an acceptable way for the server to drop a hostile peer; the test looks at 'close'.
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    if (rest.length > 0) this.#onData(rest);
    socket.resume();
  }

  /** pending counts messages received that no next() has returned yet. */
  get pending(): number {
    return this.messages.length - this.#cursor;
  }

  /**
   * write sends raw bytes (several chunks in one write). The returned promise settles once the kernel has them; a
   * caller that does not await it never sees an unhandled rejection from a socket the server closed.
   */
  write(...chunks: Uint8Array[]): Promise<void> {
    const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const written = new Promise<void>((resolve, reject) => this.socket.write(bytes, (error) => (error ? reject(error) : resolve())));
    written.catch(() => undefined);
    return written;
  }

  /** send encodes messages and sends them in one write. */
  send(...messages: Message[]): Promise<void> {
    return this.write(...messages.map((message) => encodeMessage(message)));
  }

  /** call sends a request and resolves with the next message, asserting it is the response with that id. */
  async call(id: number, method: string, params: unknown, meta?: RequestMeta): Promise<ResponseMessage> {
    await this.write(request(id, method, params, meta));
    return expectResponse(await this.next(), id);
  }

  /** messagesUntilClose resolves with every message the server sent once it has closed the socket. */
  async messagesUntilClose(): Promise<Message[]> {
    await this.closed;
    if (this.#undecodable !== undefined) throw new Error(`the server sent bytes that do not decode: ${String(this.#undecodable)}`);
    return this.messages;
  }

  /**
   * next resolves with the next message the server sent that no earlier next() returned, waiting for it if
   * needed. Rejects if the socket closes first, or if the server sent bytes that do not decode.
   */
  async next(): Promise<Message> {
    for (;;) {
      if (this.#undecodable !== undefined) throw new Error(`the server sent bytes that do not decode: ${String(this.#undecodable)}`);
      const message = this.messages[this.#cursor];
      if (message !== undefined) {
        this.#cursor++;
        return message;
      }
      if (this.#isClosed) throw new Error(`the socket closed before another message arrived; messages so far: ${JSON.stringify(this.messages).slice(0, 300)}`);
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
  }

  /** destroy closes the socket from this side. */
  destroy(): void {
    this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#undecodable !== undefined) return;
    try {
      for (const payload of this.#decoder.push(chunk)) this.messages.push(decodeMessage(payload, READ_LIMITS));
    } catch (error) {
      this.#undecodable = error;
      this.socket.destroy();
    }
    this.#wakeAll();
  }

  #wakeAll(): void {
    const waiting = this.#wake;
    this.#wake = [];
    for (const resolve of waiting) resolve();
  }
}

/** request returns the whole frame of `[0, id, method, params, meta?]`. */
export function request(id: number, method: string, params: unknown, meta?: RequestMeta): Buffer {
  return encodeMessage(meta === undefined ? { type: MessageType.Request, id, method, params } : { type: MessageType.Request, id, method, params, meta });
}

/** expectResponse asserts that `message` is the response to `id` and returns it. */
export function expectResponse(message: Message, id: number): ResponseMessage {
  expect(message.type, `expected a response, got ${JSON.stringify(message).slice(0, 300)}`).to.equal(MessageType.Response);
  const response = message as ResponseMessage;
  expect(response.id).to.equal(id);
  return response;
}

/** expectResult asserts that `message` answers `id` with a result and returns the result. */
export function expectResult(message: Message, id: number): unknown {
  const response = expectResponse(message, id);
  expect(response.error, `expected a result, got error ${JSON.stringify(response.error)}`).to.equal(undefined);
  return response.result;
}

/** expectErrorResponse asserts that `message` answers `id` with an error of `code`, and returns the wire error. */
export function expectErrorResponse(message: Message, id: number, code: string): WireError {
  const response = expectResponse(message, id);
  expect(response.error, `expected error ${code}, got result ${JSON.stringify(response.result)}`).to.not.equal(undefined);
  const error = response.error!;
  expect(error.code, error.message).to.equal(code);
  expect(error.message).to.be.a('string').and.not.equal('');
  return error;
}

/** expectGoaway asserts that `message` is a goaway with `code` and returns it. */
export function expectGoaway(message: Message, code: string): GoawayMessage {
  expect(message.type, `expected a goaway, got ${JSON.stringify(message).slice(0, 300)}`).to.equal(MessageType.Goaway);
  const goaway = message as GoawayMessage;
  expect(goaway.code, goaway.message).to.equal(code);
  expect(goaway.message).to.be.a('string').and.not.equal('');
  return goaway;
}

/**
 * expectOnlyGoaway asserts that `messages` (all a peer was sent before the close) is exactly one goaway with `code`,
 * and `lastId` when given, and returns it.
 */
export function expectOnlyGoaway(messages: readonly Message[], code: string, lastId?: number): GoawayMessage {
  expect(messages.map((message) => message.type), JSON.stringify(messages).slice(0, 300)).to.deep.equal([MessageType.Goaway]);
  const goaway = expectGoaway(messages[0]!, code);
  if (lastId !== undefined) expect(goaway.lastId).to.equal(lastId);
  return goaway;
}

// Wire-v1 field names may appear in a message about the field ("meta.timeout must be ..."); they are not peer data.
const WIRE_NAMES: ReadonlySet<string> = new Set(['timeout', 'headers']);

/**
 * expectNoPeerBytes asserts that a message written about hostile input quotes none of the peer's bytes: neither
 * their hex nor any printable run of `minRun` or more characters (wire-v1 field names excepted). Default 4.
 */
export function expectNoPeerBytes(message: string, peerBytes: Buffer, minRun = 4): void {
  if (peerBytes.length >= minRun - 1) expect(message).to.not.include(peerBytes.toString('hex'));
  for (const run of peerBytes.toString('latin1').match(new RegExp(`[\\x21-\\x7e]{${minRun},}`, 'g')) ?? []) {
    if (!WIRE_NAMES.has(run)) expect(message).to.not.include(run);
  }
}
