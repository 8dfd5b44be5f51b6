/**
 * FaultBox: a TCP middle box on 127.0.0.1 for tests, put between a tunnelrpc client and server. It forwards every
 * byte and can break the connection the ways networks and servers do: each byte in its own write (frames split at
 * every offset), a delay per chunk, a slow reader on the server's side, a cut after N bytes (mid-frame), a server
 * that dies after answering N calls, and a hold that keeps everything back until released (deadlines then pass
 * with nothing on the wire). Exported from `@tunnelrpc/client/testing`.
 *
 * It reads the tunnelrpc stream it carries (the handshake heads, then frames) only to count requests and responses;
 * what it forwards is the bytes as they came.
 */
import { once } from 'node:events';
import { createServer, connect as netConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { RpcError } from '@tunnelrpc/protocol';
import { FrameDecoder } from '@tunnelrpc/protocol/internal';

/** FaultOptions are the faults a FaultBox applies; set() changes them while connections run. */
export interface FaultOptions {
  /** Write each byte on its own, a turn of the event loop apart, in both directions. Default false. */
  splitEveryByte?: boolean;
  /** ms each chunk waits before it is forwarded, in both directions (order is kept). Default 0. */
  delay?: number;
  /** Bytes per second the box reads from the server: a slow reader, so the server's writes back up. Default unlimited. */
  readRate?: number;
  /** Forward only this many bytes from the server after its handshake reply, then cut both sockets (mid-frame). */
  dropAfterBytes?: number;
  /** After this many responses reach clients (all connections together), the server "dies": every connection is cut and the box stops listening. */
  dieAfterCalls?: number;
}

/** FaultStats counts what went through a FaultBox. */
export interface FaultStats {
  connections: number;
  bytesToServer: number;
  bytesToClient: number;
  /** Request frames (type 0) sent to the server. */
  requests: number;
  /** Response frames (type 1) delivered to clients. */
  responses: number;
}

/** FaultTarget is where a FaultBox forwards: a tunnelrpc URL on 127.0.0.1 (http://127.0.0.1:port/...) or a port. */
export type FaultTarget = string | number;

const LOOPBACK = '127.0.0.1';

function targetPort(target: FaultTarget): { port: number; path: string } {
  if (typeof target === 'number') return { port: target, path: '/_rpc' };
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new RpcError('INVALID_ARGUMENT', `FaultBox target ${JSON.stringify(target)} is not a URL; give http://127.0.0.1:PORT/_rpc or a port`);
  }
  if (url.protocol !== 'http:' || (url.hostname !== LOOPBACK && url.hostname !== 'localhost')) {
    throw new RpcError('INVALID_ARGUMENT', `FaultBox forwards plain TCP on 127.0.0.1 only; got ${target}`);
  }
  return { port: Number(url.port || 80), path: url.pathname === '/' || url.pathname === '' ? '/_rpc' : url.pathname };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

// One direction of one connection: chunks forwarded in order, one at a time, with the faults applied.
class Lane {
  readonly #queue: Buffer[] = [];
  #running = false;
  #headDone = false;
  #head: Buffer = Buffer.alloc(0);
  readonly #frames = new FrameDecoder(0xffff_ffff);
  #afterHead = 0;

  constructor(
    readonly from: Socket,
    readonly to: Socket,
    readonly toServer: boolean,
    readonly box: FaultBox,
    readonly cut: () => void,
  ) {
    from.on('data', (chunk: Buffer) => {
      this.#queue.push(chunk);
      if (!this.#running) void this.#run();
    });
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      for (let chunk = this.#queue.shift(); chunk !== undefined; chunk = this.#queue.shift()) {
        const faults = this.box.faults;
        if (this.box.held) await this.box.released();
        if ((faults.delay ?? 0) > 0) await sleep(faults.delay!);
        const part = chunk;
        if (!this.toServer && faults.dropAfterBytes !== undefined && this.#headDone) {
          const room = faults.dropAfterBytes - this.#afterHead;
          if (room < part.length) {
            if (room > 0) this.to.write(part.subarray(0, room));
            this.cut();
            return;
          }
        }
        this.#observe(part);
        if (faults.splitEveryByte === true) {
          for (let i = 0; i < part.length && !this.to.destroyed; i++) {
            this.to.write(part.subarray(i, i + 1));
            await nextTurn();
          }
        } else if (!this.to.write(part)) {
          this.from.pause();
          await Promise.race([once(this.to, 'drain'), once(this.to, 'close')]);
          this.from.resume();
        }
        if (!this.toServer && (faults.readRate ?? 0) > 0) {
          this.from.pause();
          await sleep((part.length / faults.readRate!) * 1000);
          this.from.resume();
        }
        if (this.to.destroyed) return;
      }
    } catch {
      this.cut();
    } finally {
      this.#running = false;
    }
  }

  // Counts bytes, and request or response frames once the handshake head has passed.
  #observe(chunk: Buffer): void {
    if (this.toServer) this.box.stats.bytesToServer += chunk.length;
    else this.box.stats.bytesToClient += chunk.length;
    let rest = chunk;
    if (!this.#headDone) {
      this.#head = Buffer.concat([this.#head, chunk]);
      const end = this.#head.indexOf('\r\n\r\n');
      if (end === -1) return;
      this.#headDone = true;
      rest = this.#head.subarray(end + 4);
      this.#head = Buffer.alloc(0);
    }
    this.#afterHead += rest.length;
    let payloads: Buffer[];
    try {
      payloads = this.#frames.push(rest);
    } catch {
      return; // not frames the box can read: it forwards them all the same
    }
    // A message is a MessagePack array whose first element is its type (PROTOCOL.md 5): 0 request, 1 response.
    for (const payload of payloads) {
      const type = payload[1];
      if (this.toServer && type === 0) this.box.stats.requests++;
      if (!this.toServer && type === 1) this.box.responseDelivered();
    }
  }
}

/**
 * FaultBox forwards 127.0.0.1 TCP connections to a tunnelrpc server with faults applied. Dial `box.url` instead of
 * the server's URL; close() when done.
 */
export class FaultBox {
  /** faults are the faults in force; set() replaces them. */
  faults: FaultOptions;
  /** stats count the traffic so far. */
  readonly stats: FaultStats = { connections: 0, bytesToServer: 0, bytesToClient: 0, requests: 0, responses: 0 };
  /** url is the address to dial: the target's path on the box's port. */
  readonly url: string;
  /** port is the box's port on 127.0.0.1. */
  readonly port: number;
  readonly #server: Server;
  readonly #target: number;
  readonly #pairs = new Set<[Socket, Socket]>();
  #hold: { promise: Promise<void>; release: () => void } | undefined;
  #dead = false;

  private constructor(server: Server, target: number, path: string, faults: FaultOptions) {
    this.#server = server;
    this.#target = target;
    this.faults = faults;
    this.port = (server.address() as AddressInfo).port;
    this.url = `http://${LOOPBACK}:${this.port}${path}`;
    server.on('connection', (client) => this.#accept(client));
  }

  /** start listens on 127.0.0.1 (a free port) in front of `target`. Throws INVALID_ARGUMENT for a target off loopback. */
  static async start(target: FaultTarget, faults: FaultOptions = {}): Promise<FaultBox> {
    const { port, path } = targetPort(target);
    const server = createServer();
    server.listen(0, LOOPBACK);
    await once(server, 'listening');
    return new FaultBox(server, port, path, { ...faults });
  }

  /** set replaces the faults; chunks already waiting keep the faults they started with for their current step. */
  set(faults: FaultOptions): void {
    this.faults = { ...faults };
  }

  /** hold keeps every chunk back, in both directions, until release(): a network that went quiet. */
  hold(): void {
    if (this.#hold !== undefined) return;
    let release!: () => void;
    const promise = new Promise<void>((resolve) => (release = resolve));
    this.#hold = { promise, release };
  }

  /** release lets held chunks go, in order. */
  release(): void {
    this.#hold?.release();
    this.#hold = undefined;
  }

  /** held tells whether hold() is in force. @internal */
  get held(): boolean {
    return this.#hold !== undefined;
  }

  /** released resolves when the hold ends. @internal */
  released(): Promise<void> {
    return this.#hold?.promise ?? Promise.resolve();
  }

  /** cutAll destroys every connection through the box now (both sides), as a network failure would. */
  cutAll(): void {
    for (const [client, server] of this.#pairs) {
      client.destroy();
      server.destroy();
    }
  }

  /** responseDelivered counts a response and lets the server die once dieAfterCalls is reached. @internal */
  responseDelivered(): void {
    this.stats.responses++;
    const limit = this.faults.dieAfterCalls;
    if (limit !== undefined && this.stats.responses >= limit && !this.#dead) {
      this.#dead = true;
      this.#server.close();
      // After the response that reached the limit has been written.
      setImmediate(() => this.cutAll());
    }
  }

  /** close stops listening, cuts every connection and releases a hold. */
  async close(): Promise<void> {
    this.release();
    this.cutAll();
    if (this.#server.listening) await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    this.stats.connections++;
    client.setNoDelay(true);
    const server = netConnect({ host: LOOPBACK, port: this.#target });
    server.setNoDelay(true);
    const pair: [Socket, Socket] = [client, server];
    this.#pairs.add(pair);
    const cut = (): void => {
      client.destroy();
      server.destroy();
    };
    // Either side failing or ending ends both: a box has no half-open state of its own to offer.
    for (const socket of pair) {
      socket.on('error', cut);
      socket.on('close', () => {
        cut();
        this.#pairs.delete(pair);
      });
    }
    new Lane(client, server, true, this, cut);
    new Lane(server, client, false, this, cut);
  }
}
