/**
 * Raw sockets that play a hand-written client against the real server: open a tunnel byte by byte, write crafted
 * frames, and read back the server's messages until it closes the socket.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { CONNECTED_RESPONSE, FrameDecoder, MessageType, decodeMessage, encodeFrame, type Message, type ResponseMessage } from '@tunnelrpc/protocol';

/** hex turns spaced hex such as `'ff ff ff ff'` into bytes. */
export function hex(text: string): Buffer {
  const digits = text.replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`hex(): not an even run of hex digits: ${text}`);
  return Buffer.from(digits, 'hex');
}

/** frame prefixes a payload with its 4-byte big-endian length. */
export function frame(payload: Uint8Array): Buffer {
  return encodeFrame(payload);
}

/**
 * rawSocket opens a plain TCP connection to 127.0.0.1:port and resolves once it is connected. `localAddress` picks
 * another loopback source (127.0.0.2) for tests of per-address limits.
 */
export async function rawSocket(port: number, localAddress?: string): Promise<Socket> {
  const socket = netConnect({ host: '127.0.0.1', port, ...(localAddress === undefined ? {} : { localAddress }) });
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

/** RawTunnel is a raw socket past the CONNECT handshake that decodes every frame the server sends. */
export class RawTunnel {
  readonly socket: Socket;
  /** Every message the server sent, in order. */
  readonly messages: Message[] = [];
  /** Resolves when the socket has closed (whoever closed it). */
  readonly closed: Promise<void>;
  readonly #decoder = new FrameDecoder(64 * 1024 * 1024);
  #undecodable: unknown;
  // next() reads `messages` in order from here; waiters are woken by every message and by the close.
  #cursor = 0;
  #isClosed = false;
  #wake: Array<() => void> = [];

  private constructor(socket: Socket, rest: Buffer) {
    this.socket = socket;
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

  /**
   * open dials 127.0.0.1:port, sends `CONNECT /_rpc` (with `early` bytes in the same write, if given), and checks
   * that the reply is exactly CONNECTED_RESPONSE.
   */
  static async open(port: number, early: Uint8Array = Buffer.alloc(0), localAddress?: string): Promise<RawTunnel> {
    const socket = await rawSocket(port, localAddress);
    socket.write(Buffer.concat([Buffer.from(`CONNECT /_rpc HTTP/1.0\r\nHost: 127.0.0.1:${port}\r\n\r\n`, 'latin1'), early]));
    const received = await readUntil(socket, '\r\n\r\n');
    const headEnd = received.indexOf('\r\n\r\n') + 4;
    const head = received.subarray(0, headEnd).toString('latin1');
    if (head !== CONNECTED_RESPONSE) {
      socket.destroy();
      throw new Error(`expected ${JSON.stringify(CONNECTED_RESPONSE)}, got ${JSON.stringify(head)}`);
    }
    return new RawTunnel(socket, received.subarray(headEnd));
  }

  /** write sends raw bytes. */
  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
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
    try {
      for (const payload of this.#decoder.push(chunk)) this.messages.push(decodeMessage(payload));
    } catch (error) {
      this.#undecodable ??= error;
    }
    this.#wakeAll();
  }

  #wakeAll(): void {
    const waiting = this.#wake;
    this.#wake = [];
    for (const resolve of waiting) resolve();
  }
}

/** expectResult asserts that `message` answers `id` with a result and returns the result. */
export function expectResult(message: Message, id: number): unknown {
  expect(message.type, JSON.stringify(message).slice(0, 300)).to.equal(MessageType.Response);
  const response = message as ResponseMessage;
  expect(response.id).to.equal(id);
  expect(response.error, JSON.stringify(response.error)).to.equal(undefined);
  return response.result;
}

/** expectErrorResponse asserts that `message` answers `id` with `code` and returns the wire error. */
export function expectErrorResponse(message: Message, id: number, code: string): NonNullable<ResponseMessage['error']> {
  expect(message.type, JSON.stringify(message).slice(0, 300)).to.equal(MessageType.Response);
  const response = message as ResponseMessage;
  expect(response.id).to.equal(id);
  expect(response.error?.code, JSON.stringify(response)).to.equal(code);
  return response.error!;
}
