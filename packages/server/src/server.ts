/**
 * RpcServer: the method table, the CONNECT takeover on a Node http/https server, the tunnel set, and graceful
 * shutdown. One port keeps serving the application's own HTTP routes.
 * Over 400 lines: it is the public class, and its TSDoc (the examples on attach, listen and close) is most of it.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Health, Reflection, RpcError, type ServiceContract } from '@tunnelrpc/protocol';
import { CONTRACT_HEADER, SERVER_MARKER_HEADER, SERVER_MARKER_VALUE, encodeSkewHeader, parseContractHeader, Observers } from '@tunnelrpc/protocol/internal';
import { Account, FairBudget } from './budget.js';
import { createHealth, createReflection } from './builtin.js';
import { DebugPage, type TunnelView } from './debug-page.js';
import { ServerConnection, type ConnectionHost } from './connection.js';
import { MethodTable } from './dispatch.js';
import type { ServiceImpl } from './handler-types.js';
import { createEmitter, type ServerEvent } from './events.js';
import { RateLimitedLog } from './log.js';
import { resolveServerOptions, type ResolvedServerOptions, type ServerOptions } from './options.js';
import { addressGroupOf, peerAddressOf } from './peer-address.js';
import { createProxyListener } from './proxy-listener.js';
import { answerClientError, malformedConnect, refuseConnect, statusForCode } from './refuse.js';
import { replyFor, serverFingerprint, upgradeProblem, type Handshake } from './takeover.js';
import { clientCertificateRefusal, peerOf } from './peer.js';
import { bindUnixSocket, checkUnixTarget, removeSocketFile, type UnixListenTarget, type UnixSocketFile } from './unix-listen.js';

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
export class RpcServer<Auth = unknown> {
  readonly #options: ResolvedServerOptions;
  readonly #methods: MethodTable;
  readonly #connections = new Set<ServerConnection>();
  // Per source address (an IPv6 source by its /64, peer-address.ts): its open tunnels, and what its calls hold.
  readonly #perIp = new Map<string, { tunnels: number; account: Account }>();
  readonly #budget: FairBudget;
  // Answers queued for peers that do not read, per blocked connection, and their sum (maxUnsentBytes).
  readonly #unsentBy = new Map<ServerConnection, number>();
  #unsentTotal = 0;
  // Every handler's ctx.draining; aborted when close() begins.
  readonly #draining = new AbortController();
  readonly #log: RateLimitedLog;
  #partialBytes = 0;
  // Connections whose reading waits for unfinished frames across the server to drop under maxPartialFrameBytes.
  readonly #waitingForPartialRoom = new Set<ServerConnection>();
  readonly #attached = new Set<HttpServer>();
  #ownServer: HttpServer | undefined;
  // The socket file listen({ path }) linked into place; libuv removes only the private name it bound, so close() does.
  #unixSocketFile: UnixSocketFile | undefined;
  // With proxyProtocol: the listener that reads the PROXY header, then hands each connection to #ownServer.
  #proxyListener: NetServer | undefined;
  #closing: Promise<void> | undefined;
  #sweep: NodeJS.Timeout | undefined;
  readonly #host: ConnectionHost;
  readonly #emit: ((event: ServerEvent) => void) | undefined;
  #tunnelIds = 0;
  // tunnelrpc.Health answers SERVING until close() begins.
  #serving = true;
  readonly #debug: DebugPage | undefined;

  /** Creates a server; throws RpcError INVALID_ARGUMENT for a bad option. */
  constructor(options: ServerOptions<Auth> = {}) {
    this.#options = resolveServerOptions(options);
    const debugPath = this.#options.debugPath;
    this.#debug = debugPath === undefined ? undefined : new DebugPage(debugPath, () => this.#methods, this.#options.authorize, () => this.#tunnelViews());
    this.#methods = new MethodTable(this.#options);
    if (this.#options.healthService) this.#methods.add(Health, createHealth(this.#methods, () => this.#serving));
    if (this.#options.reflectionService) this.#methods.add(Reflection, createReflection(this.#methods));
    this.#budget = new FairBudget(this.#options);
    this.#log = new RateLimitedLog(this.#options.logger, this.#options.maxLogEntriesPerSecond);
    this.#emit = createEmitter(this.#options.listeners, (entry) => this.#log.log(entry));
    // The debug page counts through an observer too: its numbers are the codes callers got.
    const observing = this.#debug === undefined ? this.#options.observers : [this.#debug.observer, ...this.#options.observers];
    const observers =
      observing.length === 0
        ? undefined
        : new Observers(observing, (error, hook) => this.#log.log({ level: 'warn', message: `a ServerOptions.observers entry threw in ${hook}; the call is not affected`, error }));
    this.#host = {
      observers,
      options: this.#options,
      methods: this.#methods,
      draining: this.#draining.signal,
      acquireCall: (connection, cost, calls) => this.#budget.acquire(connection.account, connection.addressAccount, cost, calls),
      releaseCall: (connection, cost, calls) => this.#budget.release(connection.account, connection.addressAccount, cost, calls),
      unsentChanged: (connection, bytes) => this.#unsentChanged(connection, bytes),
      partialBytesChanged: (delta) => {
        this.#partialBytes += delta;
        if (delta < 0 && this.#partialBytes < this.#options.maxPartialFrameBytes) this.#resumePartialWaiters();
      },
      partialOverCap: () => this.#partialBytes >= this.#options.maxPartialFrameBytes,
      waitForPartialRoom: (connection) => {
        this.#waitingForPartialRoom.add(connection);
      },
      log: (entry) => this.#log.log(entry),
      emit: this.#emit,
      connectionClosed: (connection) => {
        if (!this.#connections.delete(connection)) return;
        this.#emit?.({
          type: 'close',
          tunnel: connection.tunnelId,
          reason: connection.closeReason,
          duration: Date.now() - connection.openedAt,
          calls: connection.callsReceived,
          bytesIn: connection.bytesIn,
          bytesOut: connection.bytesOut,
        });
        this.#waitingForPartialRoom.delete(connection);
        const group = addressGroupOf(connection.peerAddress);
        const entry = this.#perIp.get(group);
        if (entry !== undefined && --entry.tunnels === 0) this.#perIp.delete(group);
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
  register<C extends ServiceContract>(contract: C, impl: ServiceImpl<C, Auth>): this {
    // The table runs handlers with contexts whose auth came from this server's authorize: Auth, as typed.
    this.#methods.add(contract, impl as unknown as ServiceImpl<C>);
    return this;
  }

  /** connectionCount is the number of open tunnels. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * attach serves RPC on an existing http or https server: CONNECTs and `Upgrade: tunnelrpc` GETs to the RPC path
   * open tunnels, other CONNECTs get 404, other methods on the RPC path get 405, and every other request (and
   * Upgrade to another path) goes to the request (and upgrade) listeners the server had when attach was called.
   * Attach after adding your own handlers.
   */
  attach(server: HttpServer): this {
    if (this.#attached.has(server)) return this;
    this.#attached.add(server);
    const listeners = server.listeners('request') as RequestListener[];
    type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
    const upgradeListeners = server.listeners('upgrade') as UpgradeListener[];
    server.removeAllListeners('upgrade');
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (this.#debug?.matches(req.url) === true) {
        this.#debug.serve(req, res);
        return;
      }
      if (this.#isRpcPath(req.url)) {
        res.writeHead(405, { Allow: 'CONNECT', [SERVER_MARKER_HEADER]: SERVER_MARKER_VALUE, 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' });
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
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (this.#isRpcPath(req.url) || upgradeListeners.length === 0) {
        this.handleUpgrade(req, socket, head);
        return;
      }
      for (const listener of upgradeListeners) listener.call(server, req, socket, head);
    });
    return this;
  }

  /**
   * handleConnect takes over a socket from an http 'connect' event, for servers that route CONNECT themselves.
   * It answers 404 for another path, 503 while closing or at maxConnections, and 401/403 when `authorize` refuses.
   */
  handleConnect(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#takeOver(req, socket, head, 'connect');
  }

  /**
   * handleUpgrade takes over a socket from an http 'upgrade' event (`GET` with `Connection: Upgrade` and
   * `Upgrade: tunnelrpc`) and answers `101 Switching Protocols`, for servers that route upgrades themselves. It
   * refuses as handleConnect does, and with 400 an Upgrade to another protocol.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#takeOver(req, socket, head, 'upgrade');
  }

  #takeOver(req: IncomingMessage, socket: Duplex, head: Buffer, handshake: Handshake): void {
    // Node removes its own listeners at the takeover: without this an ECONNRESET would crash the process.
    socket.on('error', destroyOnError);
    const malformed = malformedConnect(req);
    if (malformed !== undefined) {
      this.#refuse(socket, 400, malformed);
      return;
    }
    if (!this.#isRpcPath(req.url)) {
      this.#refuse(socket, 404, `404 no RPC endpoint at ${String(req.url).slice(0, 100)}; use ${this.#options.path}`);
      return;
    }
    const problem = handshake === 'upgrade' ? upgradeProblem(req) : undefined;
    if (problem !== undefined) {
      refuseConnect(socket, problem.status, problem.text);
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
    // Read now: the request object is not kept past the takeover.
    const reply = replyFor(handshake, this.#contractSkew(req));
    const authorize = this.#options.authorize;
    if (authorize === undefined) {
      this.#open(socket, head, undefined, reply);
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
      (auth) => this.#open(socket, head, auth, reply),
      (error: unknown) => this.#refuseAuth(socket, error),
    );
  }

  /**
   * listen creates an http server with tight head limits (10 s, 8 KiB, 64 headers), attaches to it and resolves
   * once it accepts connections. Port 0 picks a free port; the result tells which. With the proxyProtocol option,
   * every connection passes a PROXY header reader first. `{ path, mode }` listens on a
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
    // Node's 400/408/431 for a bad head, marked as ours so a client does not blame a proxy for them.
    server.on('clientError', answerClientError);
    this.#ownServer = server;
    this.attach(server);
    if (unix !== undefined) return this.#listenUnix(server, unix.path, unix.mode);
    const tcpPort = port as number;
    const proxy = this.#options.proxyProtocol;
    const listener = proxy === undefined ? server : (this.#proxyListener = createProxyListener(server, proxy, (entry) => this.#log.log(entry)));
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(new RpcError('UNAVAILABLE', `cannot listen on ${host}:${tcpPort}: ${error.message}`, undefined, { cause: error }));
      listener.once('error', onError);
      listener.listen(tcpPort, host, () => {
        listener.off('error', onError);
        const address = listener.address();
        const actual = typeof address === 'object' && address !== null ? address.port : tcpPort;
        const shownHost = host.includes(':') ? `[${host}]` : host;
        resolve({ host, port: actual, url: `http://${shownHost}:${actual}${this.#options.path}` });
      });
    });
  }

  async #listenUnix(server: HttpServer, path: string, mode: number): Promise<ListenAddress> {
    try {
      this.#unixSocketFile = await bindUnixSocket(server, path, mode);
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
   * close shuts down gracefully: tunnelrpc.Health turns NOT_SERVING and every handler's ctx.draining aborts, then
   * after shutdownDelay ms (default 0) new CONNECTs get 503 and every tunnel gets goaway UNAVAILABLE; tunnels still
   * open shutdownTimeout ms after close() was called are destroyed. Resolves when all are closed.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  // A connection's unsent answers changed; past maxUnsentBytes the ones holding more than an even share are cut.
  #unsentChanged(connection: ServerConnection, bytes: number): RpcError | undefined {
    this.#unsentTotal += bytes - (this.#unsentBy.get(connection) ?? 0);
    if (bytes === 0) this.#unsentBy.delete(connection);
    else this.#unsentBy.set(connection, bytes);
    const cap = this.#options.maxUnsentBytes;
    if (this.#unsentTotal <= cap || bytes <= cap / this.#unsentBy.size) return undefined;
    return new RpcError('UNAVAILABLE', `peer is not reading its answers, and the server holds more than maxUnsentBytes ${cap} of unread answers; this tunnel held ${bytes} of them`);
  }

  async #shutdown(): Promise<void> {
    // shutdownTimeout is the whole grace from close(), shutdownDelay included: what an orchestrator's termination
    // grace period (counted from its SIGTERM) needs to fit in.
    const timeout = this.#options.shutdownTimeout;
    const cutOff = setTimeout(() => {
      for (const connection of this.#connections) {
        connection.destroy(new RpcError('UNAVAILABLE', `server shut down; call did not finish within shutdownTimeout ${timeout} ms`));
      }
    }, timeout);
    // Health first, so that balancers that check it stop sending before the goaway (grpc.health.v1 practice).
    this.#serving = false;
    // Handlers that hold calls or streams open learn it now (ctx.draining), and can finish with a result.
    this.#draining.abort(new RpcError('UNAVAILABLE', 'the server is shutting down'));
    const delay = this.#options.shutdownDelay;
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    const own = this.#ownServer;
    const front = this.#proxyListener ?? own;
    const serverClosed = front === undefined ? Promise.resolve() : new Promise<void>((resolve) => front.close(() => resolve()));
    for (const connection of this.#connections) connection.drain('server is shutting down; reconnect to another instance');
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (this.#connections.size === 0) {
          clearInterval(check);
          resolve();
        }
      }, 10);
    });
    clearTimeout(cutOff);
    // Node's closeAllConnections skips taken-over sockets; ours are gone already, close idle keep-alives too.
    own?.closeAllConnections();
    await serverClosed;
    if (this.#unixSocketFile !== undefined) await removeSocketFile(this.#unixSocketFile);
  }

  // The skew header's value for a client that sent its contract fingerprints (PROTOCOL.md 2.6), else undefined.
  #contractSkew(req: IncomingMessage): string | undefined {
    const offered = req.headers[CONTRACT_HEADER.toLowerCase()];
    if (typeof offered !== 'string') return undefined;
    return encodeSkewHeader(parseContractHeader(offered), (method) => {
      const registered = this.#methods.get(method);
      return registered === undefined ? undefined : serverFingerprint(registered.path, registered.spec);
    });
  }

  #open(socket: Duplex, head: Buffer, auth: unknown, reply: string): void {
    // Checked again here: CONNECTs waiting on an async authorize all passed the first check together.
    if (socket.destroyed || this.#refusedForCapacity(socket)) return;
    const tcp = socket as Socket;
    tcp.setNoDelay?.(true);
    tcp.setKeepAlive?.(true, 60_000);
    tcp.setTimeout?.(0);
    const connection = new ServerConnection(this.#host, tcp, auth);
    connection.tunnelId = ++this.#tunnelIds;
    this.#connections.add(connection);
    const group = addressGroupOf(connection.peerAddress);
    let perIp = this.#perIp.get(group);
    if (perIp === undefined) {
      perIp = { tunnels: 0, account: new Account() };
      this.#perIp.set(group, perIp);
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
    this.#emit?.({ type: 'open', tunnel: connection.tunnelId, address: connection.peerAddress, port: connection.peerPort, principal: auth, tcpInfo: () => connection.tcpInfo() });
    connection.open(head, reply);
  }

  // Answers 503 when the server is closing or full; true when it did.
  #refusedForCapacity(socket: Duplex): boolean {
    if (this.#closing !== undefined) {
      this.#refuse(socket, 503, '503 server is shutting down; connect to another instance', { 'Retry-After': '1' });
      return true;
    }
    if (this.#connections.size >= this.#options.maxConnections) {
      this.#refuse(socket, 503, `503 server has maxConnections ${this.#options.maxConnections} tunnels open; retry later`, { 'Retry-After': '1' });
      return true;
    }
    const address = peerAddressOf(socket).address ?? 'unknown';
    const group = addressGroupOf(address);
    if ((this.#perIp.get(group)?.tunnels ?? 0) >= this.#options.maxConnectionsPerIp) {
      // Behind a TCP balancer without the PROXY protocol every tunnel has the balancer's address: say so.
      const text = `503 ${group === address ? address : `${address} (counted with its ${group})`} has maxConnectionsPerIp ${this.#options.maxConnectionsPerIp} tunnels open; share tunnels or raise the limit (behind a TCP balancer every tunnel comes from its address unless the server reads the PROXY protocol: option proxyProtocol)`;
      this.#refuse(socket, 503, text, { 'Retry-After': '1' });
      return true;
    }
    return false;
  }

  #refuseAuth(socket: Duplex, error: unknown): void {
    const rpc = error instanceof RpcError ? error : undefined;
    const status = rpc === undefined ? 403 : statusForCode(rpc.code);
    const text = rpc?.message ?? 'not allowed';
    this.#refuse(socket, status, `${status} ${text.slice(0, 200)}`, status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {});
  }

  #tunnelViews(): TunnelView[] {
    const now = Date.now();
    return [...this.#connections].map((connection) => ({
      tunnel: connection.tunnelId,
      address: connection.peerAddress,
      port: connection.peerPort,
      ageMs: now - connection.openedAt,
      inFlight: connection.inFlight,
      served: connection.callsReceived,
      bytesIn: connection.bytesIn,
      bytesOut: connection.bytesOut,
      tcpInfo: connection.tcpInfo(),
    }));
  }

  // Every refusal goes through here, so that listeners hear of each one.
  #refuse(socket: Duplex, status: number, body: string, headers: Record<string, string> = {}): void {
    this.#emit?.({ type: 'refused', address: peerAddressOf(socket).address ?? 'unknown', status, reason: body });
    refuseConnect(socket, status, body, headers);
  }

  #isRpcPath(url: string | undefined): boolean {
    if (url === undefined) return false;
    const query = url.indexOf('?');
    return (query === -1 ? url : url.slice(0, query)) === this.#options.path;
  }
}
