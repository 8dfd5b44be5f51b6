/**
 * RpcServer: the method table, the CONNECT takeover on a Node http/https server, the tunnel set, and graceful
 * shutdown. One port keeps serving the application's own HTTP routes.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { RpcError, type ServiceContract } from '@tunnelrpc/protocol';
import { Account, FairBudget } from './budget.js';
import { ServerConnection, type ConnectionHost } from './connection.js';
import { MethodTable, type ServiceImpl } from './dispatch.js';
import { RateLimitedLog } from './log.js';
import { resolveServerOptions, type ResolvedServerOptions, type ServerOptions } from './options.js';
import { clientCertificateRefusal, peerOf } from './peer.js';
import { malformedConnect, refuseConnect, statusForCode } from './refuse.js';
import { checkUnixTarget, clearStaleSocket, setSocketMode, type UnixListenTarget } from './unix-listen.js';

const MAX_HEADERS_COUNT = 64;

function peerTextOf(peer: { address: string | undefined; port: number | undefined }): string {
  return `${peer.address ?? 'unknown'}:${peer.port ?? '?'}`;
}

// Shared by every tunnel's socket: its own closure per tunnel would cost memory on idle tunnels.
function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** ListenAddress is where listen() accepted connections. */
export interface ListenAddress {
  /** The host, or `unix` for a unix socket. */
  host: string;
  /** The port (0 for a unix socket). */
  port: number;
  /** The socket file, for a unix socket. */
  path?: string;
  /** The URL a client passes to connect(): `http://HOST:PORT/_rpc`, or `unix:/path` for a unix socket. */
  url: string;
}

/**
 * RpcServer serves registered services over CONNECT tunnels. Attach it to your http/https server, or let
 * listen() create one.
 */
export class RpcServer {
  readonly #options: ResolvedServerOptions;
  readonly #methods = new MethodTable();
  readonly #connections = new Set<ServerConnection>();
  // Per source address: its open tunnels, and what its running calls hold of the budget.
  readonly #perIp = new Map<string, { tunnels: number; account: Account }>();
  readonly #budget: FairBudget;
  readonly #log: RateLimitedLog;
  #partialBytes = 0;
  // Connections whose reading waits for unfinished frames across the server to drop under maxPartialFrameBytes.
  readonly #waitingForPartialRoom = new Set<ServerConnection>();
  readonly #attached = new Set<HttpServer>();
  #ownServer: HttpServer | undefined;
  #closing: Promise<void> | undefined;
  #sweep: NodeJS.Timeout | undefined;
  readonly #host: ConnectionHost;

  /** Creates a server; throws RpcError INVALID_ARGUMENT for a bad option. */
  constructor(options: ServerOptions = {}) {
    this.#options = resolveServerOptions(options);
    this.#budget = new FairBudget(this.#options);
    this.#log = new RateLimitedLog(this.#options.logger, this.#options.maxLogEntriesPerSecond);
    this.#host = {
      options: this.#options,
      methods: this.#methods,
      acquireCall: (connection, cost) => this.#budget.acquire(connection.account, connection.addressAccount, cost),
      releaseCall: (connection, cost) => this.#budget.release(connection.account, connection.addressAccount, cost),
      partialBytesChanged: (delta) => {
        this.#partialBytes += delta;
        if (delta < 0 && this.#partialBytes < this.#options.maxPartialFrameBytes) this.#resumePartialWaiters();
      },
      partialOverCap: () => this.#partialBytes >= this.#options.maxPartialFrameBytes,
      waitForPartialRoom: (connection) => {
        this.#waitingForPartialRoom.add(connection);
      },
      log: (entry) => this.#log.log(entry),
      connectionClosed: (connection) => {
        if (!this.#connections.delete(connection)) return;
        this.#waitingForPartialRoom.delete(connection);
        const address = connection.peerAddress;
        const entry = this.#perIp.get(address);
        if (entry !== undefined && --entry.tunnels === 0) this.#perIp.delete(address);
        if (this.#connections.size === 0 && this.#sweep !== undefined) {
          clearInterval(this.#sweep);
          this.#sweep = undefined;
        }
      },
    };
  }

  // Room for unfinished frames again: the held chunks are fed in order until the server is over the cap again.
  #resumePartialWaiters(): void {
    for (const connection of this.#waitingForPartialRoom) {
      if (this.#partialBytes >= this.#options.maxPartialFrameBytes) return;
      this.#waitingForPartialRoom.delete(connection);
      connection.resumeHeld();
    }
  }

  /** register adds a service: one handler per contract method, typed from its schemas. */
  register<C extends ServiceContract>(contract: C, impl: ServiceImpl<C>): this {
    this.#methods.add(contract, impl);
    return this;
  }

  /** connectionCount is the number of open tunnels. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * attach serves RPC on an existing http or https server: CONNECTs to the RPC path open tunnels, other CONNECTs
   * get 404, other methods on the RPC path get 405, and every other request goes to the request listeners the
   * server had when attach was called. Attach after adding your request handler.
   */
  attach(server: HttpServer): this {
    if (this.#attached.has(server)) return this;
    this.#attached.add(server);
    const listeners = server.listeners('request') as RequestListener[];
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (this.#isRpcPath(req.url)) {
        res.writeHead(405, { Allow: 'CONNECT', 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' });
        res.end('405 must CONNECT');
        return;
      }
      if (listeners.length === 0) {
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('404 not found\n');
        return;
      }
      for (const listener of listeners) listener.call(server, req, res);
    });
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.handleConnect(req, socket, head));
    return this;
  }

  /**
   * handleConnect takes over a socket from an http 'connect' event, for servers that route CONNECT themselves.
   * It answers 404 for another path, 503 while closing or at maxConnections, and 401/403 when `authorize` refuses.
   */
  handleConnect(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node removes its own listeners at the takeover: without this an ECONNRESET would crash the process.
    socket.on('error', destroyOnError);
    const malformed = malformedConnect(req);
    if (malformed !== undefined) {
      refuseConnect(socket, 400, malformed);
      return;
    }
    if (!this.#isRpcPath(req.url)) {
      refuseConnect(socket, 404, `404 no RPC endpoint at ${String(req.url).slice(0, 100)}; use ${this.#options.path}`);
      return;
    }
    if (this.#refusedForCapacity(socket)) return;
    if (this.#options.requireClientCertificate) {
      const refusal = clientCertificateRefusal(socket);
      if (refusal !== undefined) {
        this.#log.log({ level: 'warn', message: `CONNECT refused: ${refusal}`, peer: peerTextOf(peerOf(socket)), code: 'UNAUTHENTICATED' });
        refuseConnect(socket, 401, `401 ${refusal}`);
        return;
      }
    }
    const authorize = this.#options.authorize;
    if (authorize === undefined) {
      this.#open(socket, head, undefined);
      return;
    }
    let decision: unknown;
    try {
      decision = authorize(req, peerOf(socket));
    } catch (error) {
      this.#refuseAuth(socket, error);
      return;
    }
    Promise.resolve(decision).then(
      (auth) => this.#open(socket, head, auth),
      (error: unknown) => this.#refuseAuth(socket, error),
    );
  }

  /**
   * listen creates an http server with tight head limits (10 s, 8 KiB, 64 headers), attaches to it and resolves
   * once it accepts connections. Port 0 picks a free port; the result tells which. `{ path, mode }` listens on a
   * unix socket instead: a stale socket file is replaced, but one another process serves (or a file that is not a
   * socket) is left alone and listen rejects FAILED_PRECONDITION; the file gets `mode` (default 0o600) and is
   * removed by close().
   */
  listen(port: number | UnixListenTarget, host = '127.0.0.1'): Promise<ListenAddress> {
    if (this.#ownServer !== undefined) {
      return Promise.reject(new RpcError('FAILED_PRECONDITION', 'listen() was called already; create another RpcServer for another port'));
    }
    let unix: { path: string; mode: number } | undefined;
    if (typeof port === 'object' && port !== null) {
      try {
        unix = checkUnixTarget(port);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    // Node's defaults (60 s for headers, 300 s per request, 16 KiB of headers) are meant for a proxy in front; a
    // server that listen() creates faces peers directly (SECURITY.md, limits).
    const { handshakeTimeout, maxHeadSize } = this.#options;
    const server = createServer({
      headersTimeout: handshakeTimeout,
      requestTimeout: handshakeTimeout,
      connectionsCheckingInterval: Math.min(1000, handshakeTimeout),
      maxHeaderSize: maxHeadSize,
    });
    server.maxHeadersCount = MAX_HEADERS_COUNT;
    this.#ownServer = server;
    this.attach(server);
    if (unix !== undefined) return this.#listenUnix(server, unix.path, unix.mode);
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(new RpcError('UNAVAILABLE', `cannot listen on ${host}:${String(port)}: ${error.message}`, undefined, { cause: error }));
      server.once('error', onError);
      server.listen(port as number, host, () => {
        server.off('error', onError);
        const address = server.address();
        const actual = typeof address === 'object' && address !== null ? address.port : (port as number);
        const shownHost = host.includes(':') ? `[${host}]` : host;
        resolve({ host, port: actual, url: `http://${shownHost}:${actual}${this.#options.path}` });
      });
    });
  }

  async #listenUnix(server: HttpServer, path: string, mode: number): Promise<ListenAddress> {
    try {
      await clearStaleSocket(path);
      await new Promise<void>((resolve, reject) => {
        const onError = (error: Error): void => reject(new RpcError('UNAVAILABLE', `cannot listen on ${path}: ${error.message}`, undefined, { cause: error }));
        server.once('error', onError);
        server.listen(path, () => {
          server.off('error', onError);
          resolve();
        });
      });
      // Node removes the socket file when the server closes (libuv unlinks the path it bound).
      await setSocketMode(path, mode);
    } catch (error) {
      // Nothing of ours stays behind: a later listen() on this server may try again.
      this.#ownServer = undefined;
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
      throw error;
    }
    const url = this.#options.path === '/_rpc' ? `unix:${path}` : `http+unix://${encodeURIComponent(path)}${this.#options.path}`;
    return { host: 'unix', port: 0, path, url };
  }

  /**
   * close shuts down gracefully: new CONNECTs get 503, every tunnel gets goaway UNAVAILABLE, calls in flight
   * have shutdownTimeout ms to finish, then remaining tunnels are destroyed. Resolves when all are closed.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const own = this.#ownServer;
    const serverClosed = own === undefined ? Promise.resolve() : new Promise<void>((resolve) => own.close(() => resolve()));
    for (const connection of this.#connections) connection.drain('server is shutting down; reconnect to another instance');
    const allClosed = new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (this.#connections.size === 0) {
          clearInterval(check);
          clearTimeout(deadline);
          resolve();
        }
      }, 10);
      const deadline = setTimeout(() => {
        for (const connection of this.#connections) {
          connection.destroy(new RpcError('UNAVAILABLE', `server shut down; call did not finish within shutdownTimeout ${this.#options.shutdownTimeout} ms`));
        }
      }, this.#options.shutdownTimeout);
    });
    await allClosed;
    // Node's closeAllConnections skips taken-over sockets; ours are gone already, close idle keep-alives too.
    own?.closeAllConnections();
    await serverClosed;
  }

  #open(socket: Duplex, head: Buffer, auth: unknown): void {
    // Checked again here: CONNECTs waiting on an async authorize all passed the first check together.
    if (socket.destroyed || this.#refusedForCapacity(socket)) return;
    const tcp = socket as Socket;
    tcp.setNoDelay?.(true);
    tcp.setKeepAlive?.(true, 60_000);
    tcp.setTimeout?.(0);
    const connection = new ServerConnection(this.#host, tcp, auth);
    this.#connections.add(connection);
    let perIp = this.#perIp.get(connection.peerAddress);
    if (perIp === undefined) {
      perIp = { tunnels: 0, account: new Account() };
      this.#perIp.set(connection.peerAddress, perIp);
    }
    perIp.tunnels++;
    if (this.#options.shareByAddress) connection.addressAccount = perIp.account;
    // One sweep checks the idle, frame and drain deadlines of every tunnel (no timer per idle tunnel), often
    // enough that each fires within a quarter of its own length, and at least once a second.
    const { idleTimeout, frameTimeout, drainTimeout, keepaliveInterval, keepaliveTimeout } = this.#options;
    const timeouts = [idleTimeout, frameTimeout, drainTimeout, keepaliveTimeout, 4000];
    if (keepaliveInterval > 0) timeouts.push(keepaliveInterval);
    const shortest = Math.min(...timeouts.filter((ms) => ms > 0));
    this.#sweep ??= setInterval(() => {
      const now = Date.now();
      for (const each of this.#connections) each.guarded(() => each.checkTimers(now));
    }, Math.max(50, Math.floor(shortest / 4))).unref();
    connection.open(head);
  }

  // Answers 503 when the server is closing or full; true when it did.
  #refusedForCapacity(socket: Duplex): boolean {
    if (this.#closing !== undefined) {
      refuseConnect(socket, 503, '503 server is shutting down; connect to another instance', { 'Retry-After': '1' });
      return true;
    }
    if (this.#connections.size >= this.#options.maxConnections) {
      refuseConnect(socket, 503, `503 server has maxConnections ${this.#options.maxConnections} tunnels open; retry later`, { 'Retry-After': '1' });
      return true;
    }
    const address = (socket as Socket).remoteAddress ?? 'unknown';
    if ((this.#perIp.get(address)?.tunnels ?? 0) >= this.#options.maxConnectionsPerIp) {
      refuseConnect(socket, 503, `503 ${address} has maxConnectionsPerIp ${this.#options.maxConnectionsPerIp} tunnels open; share tunnels or raise the limit`, { 'Retry-After': '1' });
      return true;
    }
    return false;
  }

  #refuseAuth(socket: Duplex, error: unknown): void {
    const rpc = error instanceof RpcError ? error : undefined;
    const status = rpc === undefined ? 403 : statusForCode(rpc.code);
    const text = rpc?.message ?? 'not allowed';
    refuseConnect(socket, status, `${status} ${text.slice(0, 200)}`, status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {});
  }

  #isRpcPath(url: string | undefined): boolean {
    if (url === undefined) return false;
    const query = url.indexOf('?');
    return (query === -1 ? url : url.slice(0, query)) === this.#options.path;
  }
}
