/**
 * Server options: every limit with its default in one object, validated once at construction
 * (SECURITY.md, "Limits and their defaults").
 * Over 400 lines: each option's TSDoc (unit, default, range, what happens at the limit) stands beside its check.
 */
import type { IncomingMessage } from 'node:http';
import { type CallObserver, type DecodeLimits, type Interceptor } from '@tunnelrpc/protocol';
import {
  MAX_UINT32,
  checkBoolean,
  checkDuration,
  checkFunction,
  checkFunctionList,
  checkInteger,
  checkInterceptors,
  checkObservers,
  checkString,
  definedOnly,
  describeOptionValue,
  optionError,
  orDefault,
  resolveDecodeLimits,
  resolveStreamLimits,
} from '@tunnelrpc/protocol/internal';

import { isIP } from 'node:net';
import type { ServerListener } from './events.js';
import type { PeerAddress } from './handler-types.js';
import { defaultLogger, type ServerLogger } from './log.js';
import { normalizeAddress } from './peer-address.js';
import type { ProxyProtocolOptions, ResolvedProxyProtocol } from './proxy-listener.js';

/** ServerOptions configures an RpcServer. Every field is optional; the defaults are safe for a public port. */
export interface ServerOptions<Auth = unknown> {
  /** Request target of the CONNECT. Default "/_rpc". */
  path?: string;
  /**
   * Largest frame payload accepted and sent, in bytes. A peer that announces more is sent goaway
   * RESOURCE_EXHAUSTED and disconnected; a result that would be larger is answered RESOURCE_EXHAUSTED.
   * Default 8 MiB (8388608). Range 1 … 4294967295.
   */
  maxFrameSize?: number;
  /** Deepest nesting of arrays and maps in a frame (the message array is level 1). Default 32. Range 2 … 1000. */
  maxDepth?: number;
  /** Most MessagePack values in one frame; more is goaway RESOURCE_EXHAUSTED. Default 262144. */
  maxItemsPerFrame?: number;
  /** Tunnels open at once; further CONNECTs are answered 503. Default 10000. Range 1 … 4294967295. */
  maxConnections?: number;
  /**
   * Tunnels open at once from one remote address (an IPv6 address counts by its /64, an IPv4-mapped one as its
   * IPv4 address); further CONNECTs from it are answered 503. Default: the value of
   * maxConnections (10000), that is no cap of its own: behind a TCP balancer that does not send the PROXY protocol
   * every tunnel has the balancer's address, and a lower default refused the whole fleet's next client service at
   * once. Set it (for example 256) on a server that clients reach directly, or behind a balancer with
   * proxyProtocol. Range 1 … 4294967295.
   */
  maxConnectionsPerIp?: number;
  /**
   * Shortest gap in ms between pings from a client that has no call running. A ping sooner than that is a strike;
   * past maxPingStrikes the tunnel is sent goaway RESOURCE_EXHAUSTED and closed (gRPC's too_many_pings). Calls
   * reset the count. 0 allows any rate. Default 10000.
   */
  minPingInterval?: number;
  /** Pings sooner than minPingInterval tolerated before the tunnel is closed. Default 2. Range 0 … 1000. */
  maxPingStrikes?: number;
  /**
   * ms without any frame from a client that has calls running, after which the server pings it: a client that
   * vanished (a half-open connection) would otherwise hold its calls until their deadlines. 0 disables.
   * Default 30000.
   */
  keepaliveInterval?: number;
  /** ms to wait for any frame after such a ping before the tunnel is destroyed and its calls aborted. Default 20000. */
  keepaliveTimeout?: number;
  /**
   * ms a client has to send its whole CONNECT head, for servers listen() creates (Node's headersTimeout and
   * requestTimeout; a late head gets 408). Set them on your own server when you use attach(). Default 10000.
   */
  handshakeTimeout?: number;
  /** Largest CONNECT head in bytes, for servers listen() creates (Node's maxHeaderSize; larger gets 431). Default 8192. */
  maxHeadSize?: number;
  /**
   * Calls (and notifications) one connection may have running. At the limit the server stops reading that
   * socket until a call finishes, so a fast pipelining client is slowed, not buffered. Default 128.
   */
  maxInFlight?: number;
  /**
   * Streams one connection may have open (PROTOCOL.md 12). They do not count towards maxInFlight: a stream whose
   * reader is slow never stops the server reading the tunnel. An opening past it is answered RESOURCE_EXHAUSTED
   * (not run). Each stream also counts as a call in maxCallsInFlight. Default 1024. Range 1 … 4294967295.
   */
  maxStreams?: number;
  /**
   * Bytes of client stream messages one connection may make the server hold: every grant reserves
   * maxStreamMessageSize per message until the handler takes it, and grants wait (FIFO) while this is used up, so
   * the stream data received and not yet consumed on a connection never exceeds it, whatever the number of streams.
   * Default 16 MiB (16777216). Range maxStreamMessageSize … 4294967295.
   */
  maxStreamBuffer?: number;
  /**
   * Largest client stream message payload accepted, in bytes, announced to the client with the first grant. A larger
   * one is goaway PROTOCOL_ERROR. Default 128 KiB (131072). Range 1 … maxFrameSize.
   */
  maxStreamMessageSize?: number;
  /**
   * Messages granted to one client stream and not yet consumed, at most (its window); more is granted as the handler
   * reads, once half is used. Default 32. Range 1 … 2147483647.
   */
  maxStreamCredit?: number;
  /**
   * Calls and notifications running across all connections; a request past it is answered RESOURCE_EXHAUSTED (a
   * notification past it is dropped and logged). Once half of it is in use, each connection, and each source
   * address unless shareByAddress is off, may hold at most a fair share: cap / (other active holders + 2).
   * Default 10000. Range 1 … 4294967295.
   */
  maxCallsInFlight?: number;
  /**
   * MessagePack values in the frames of all running calls and notifications together (the decoded heap they hold:
   * at worst about 64 bytes a value). A request that would pass it is answered RESOURCE_EXHAUSTED, so many
   * connections each holding large decoded params cannot add up without bound. Shared fairly as maxCallsInFlight.
   * Default 4194304 (about 256 MiB at worst).
   */
  maxItemsInFlight?: number;
  /**
   * Frame bytes of all running calls and notifications together: their params and headers (a decoded string
   * takes at most twice its bytes in memory). A request that would pass it is answered RESOURCE_EXHAUSTED. Shared
   * fairly as maxCallsInFlight. Default 64 MiB (67108864). Range 1 … 4294967295.
   */
  maxBytesInFlight?: number;
  /**
   * Share maxCallsInFlight, maxItemsInFlight and maxBytesInFlight between source addresses as well as between
   * connections (addresses grouped as for maxConnectionsPerIp), so that many tunnels from one address cannot take
   * the whole server. Turn it off behind a TCP
   * balancer that does not pass client addresses (every tunnel then has the balancer's address, which would get
   * half the budget at most). Default true.
   */
  shareByAddress?: boolean;
  /**
   * Headers (meta.headers) one call may carry; a request with more is answered INVALID_ARGUMENT, unrun.
   * Default 64. Range 0 … 65535.
   */
  maxHeaderCount?: number;
  /**
   * Bytes of header names and values (UTF-8) one call may carry; a request with more is answered
   * INVALID_ARGUMENT, unrun. Default 8192. Range 0 … 4294967295.
   */
  maxHeaderBytes?: number;
  /**
   * Keys of the largest map a request's params may hold; a request with a larger map is answered
   * INVALID_ARGUMENT before its params are validated (validating a map costs time per key: 131,000 unknown keys
   * cost zod about 90 ms). Send large collections as arrays, or raise it for large records. Default 8192.
   * Range 1 … 4294967295.
   */
  maxKeysPerMap?: number;
  /**
   * Bytes of unfinished frames held across all connections. A connection whose partial frame would grow past it
   * stops being read until other frames complete (its frameTimeout still runs), so stalled peers cannot pin
   * memory without bound. Default 128 MiB (134217728). Range 1 … 4294967295.
   */
  maxPartialFrameBytes?: number;
  /**
   * Bytes of answers queued, across all connections, for peers that do not read them (connections over
   * writeHighWaterMark). Past it, a connection holding more than an even share of it is cut off (UNAVAILABLE to
   * its calls), so that many non-reading peers cannot hold maxConnections x maxWriteBuffer between them. The held
   * total stays under twice this. Default 256 MiB (268435456). Range 1 … 4294967295.
   */
  maxUnsentBytes?: number;
  /** Log entries per second passed to `logger` (bursts of as many); the rest are counted in one line. Default 100. */
  maxLogEntriesPerSecond?: number;
  /**
   * Bytes queued for a peer that is not reading, above which the connection is destroyed (its calls are
   * abandoned) instead of queueing one more frame: a peer holds at most this plus one frame.
   * Default maxFrameSize + 1 MiB (9437184). Range 1 … 4294967295.
   */
  maxWriteBuffer?: number;
  /** Bytes queued for a peer above which the server stops reading that socket until it drains. Default 1 MiB. */
  writeHighWaterMark?: number;
  /** ms a peer over writeHighWaterMark has to drain before it is destroyed. 0 disables. Default 30000. */
  drainTimeout?: number;
  /**
   * ms a client that half-closed its connection (TCP FIN: it can send nothing more, not even a cancel or a pong)
   * may keep calls running: the calls still running then are cut off and the tunnel closed, giving back their
   * slots. 0 lets them run to their deadlines. Default 30000.
   */
  halfCloseTimeout?: number;
  /** ms from the first byte of a frame to its last; slower peers are sent goaway and closed. Default 30000. */
  frameTimeout?: number;
  /**
   * ms a tunnel may stay silent (no frame either way, no call running) before it is sent goaway UNAVAILABLE and
   * closed. Node applies no timeout to a socket after the CONNECT takeover. 0 disables. Default 60000.
   */
  idleTimeout?: number;
  /** ms granted to a call whose request carries no meta.timeout. Default 30000. */
  defaultTimeout?: number;
  /** Cap in ms on any call's deadline, whatever meta.timeout asks. Default 300000 (5 min). */
  maxTimeout?: number;
  /**
   * ms from close() to the cut-off: tunnels still open then are destroyed, their calls failing UNAVAILABLE. The
   * whole grace, shutdownDelay included (as an orchestrator's termination grace counts from its SIGTERM). Default
   * 10000.
   */
  shutdownTimeout?: number;
  /**
   * Parse every request's params, and every client stream message, with its method's zod schema (INVALID_ARGUMENT on
   * failure; for a stream message it ends the stream). Turn it off only for
   * tunnels from trusted peers, to save the parse: handlers then get the decoded params unchecked (still
   * bounded by the frame limits, and still mapped to bigints, Sets and Maps where the schema has them), and zod
   * transforms and defaults do not run. Default true.
   */
  validateParams?: boolean;
  /**
   * Check every handler's result against its method's output schema before it is sent. Off by default: results are
   * checked once, by the side that receives them (the typed client parses every result against its own copy of the
   * contract, which is also what catches a server built from another version of it), as params are checked once,
   * by the server. Turn it on in development and tests to catch a handler's wrong result where it is made: it is
   * logged (level error, with the method and the issues) and the caller gets INTERNAL without the values.
   */
  validateResults?: boolean;
  /**
   * Send the text of non-RpcError throws to callers as the INTERNAL message. Off by default: handler errors can
   * hold secrets, so callers get a generic message and the detail goes to `logger`.
   */
  exposeInternalErrors?: boolean;
  /**
   * Decides whether a CONNECT may open a tunnel. Throw RpcError UNAUTHENTICATED (answered 401),
   * PERMISSION_DENIED (403), RESOURCE_EXHAUSTED (429) or UNAVAILABLE (503); any other throw is 403. The value
   * returned is handed to every handler as `ctx.auth`, typed: `new RpcServer({ authorize })` takes its type from
   * what authorize returns. Only the CONNECT's headers pass through authorize; per-call headers (meta.headers) do
   * not, so a per-call `authorization` header is the handler's to check.
   */
  authorize?: (req: IncomingMessage, peer: PeerAddress) => Auth | Promise<Auth>;
  /**
   * Refuse every CONNECT that did not come with a client certificate the https server verified (missing, expired,
   * or issued by a CA not in its `ca`): 401 with a body saying why, which the client reports as UNAUTHENTICATED,
   * and a warn log entry. Create the https server with `requestCert: true` and `rejectUnauthorized: false`, so
   * that a refusal is an answer the client can read (with `rejectUnauthorized: true` TLS itself refuses, with an
   * alert and no reason). The verified certificate is on `ctx.peer.certificate` and given to `authorize`.
   * Default false.
   */
  requireClientCertificate?: boolean;
  /**
   * Receives leveled log entries with fields (method, code, peer, error): handler crashes (error), dropped
   * notifications and peers that misbehave (warn), aborted handlers (debug). Default: warn and error to stderr.
   */
  logger?: ServerLogger;
  /**
   * Read the PROXY protocol (v1 or v2) on the listener listen() creates, from the balancers in `trusted` only, so
   * that ctx.peer, logs and maxConnectionsPerIp see each client's own address instead of the balancer's. Every
   * connection must then start with a header (HAProxy `send-proxy-v2`, nginx `proxy_protocol on`); see
   * ProxyProtocolOptions. Default: off (no header is read, ever).
   */
  proxyProtocol?: ProxyProtocolOptions;
  /**
   * Interceptors run around every handler, `(next) => async (call) => next(call)`; the first is the outermost. They
   * see the parsed params, the headers (changes reach the handler), the signal, deadline, peer and auth, and may
   * answer with an RpcError instead of calling `next`. The call is answered once the outermost one settles. Fixed
   * at construction: handlers are wrapped once, when registered. Default none (handlers run unwrapped).
   */
  interceptors?: readonly Interceptor[];
  /**
   * Observers hear every call the server admits start and end (method, type, code, seconds), streams and
   * notifications included, synchronously and without joining the call's path: the way to count calls (as
   * `@tunnelrpc/prometheus` does) at a few additions per call, where an interceptor costs a closure and a promise.
   * Default none.
   */
  observers?: readonly CallObserver[];
  /**
   * Keep the call being served in an AsyncLocalStorage while its handler (and its interceptors) run, so that a
   * tunnelrpc client call made from there inherits what is left of its deadline and is cancelled with it (the
   * client's `inheritDeadline`). The store is entered only once the process has created a tunnelrpc client (before
   * that no call could inherit anything, and the server pays nothing). On Node 20 it then tracks every promise an
   * async handler makes, about 0.7 µs of CPU per call on the small-payload bench cell (`pnpm bench:observe`, mode
   * async-context); turn it off on a server whose handlers call other tunnelrpc services without wanting their
   * deadlines to follow. Default true.
   */
  propagateContext?: boolean;
  /**
   * Receive tunnel life events, synchronously: open (address, principal), refused (status, reason), active and
   * idle (0 <-> 1 calls running), goaway (sent or received), close (reason, duration, calls, bytes in and out).
   * A listener that throws is logged (warn) and skipped; the tunnel is not affected. Default none.
   */
  listeners?: readonly ServerListener[];
  /**
   * Serve `tunnelrpc.Health.check({ service? })`: SERVING, NOT_SERVING once close() has begun, or NOT_FOUND for a
   * service the server does not have (after grpc.health.v1). Default true.
   */
  healthService?: boolean;
  /**
   * Serve `tunnelrpc.Reflection.list()`: every service and method with its kind and the JSON Schema of its params
   * and result (what `tunnelrpc list` and `describe` print). Turn it off if your schemas are not for callers to
   * see. Default true.
   */
  reflectionService?: boolean;
  /**
   * ms close() waits between turning tunnelrpc.Health to NOT_SERVING and sending goaway: time for balancers that
   * check health to stop sending new calls here. Open tunnels keep taking calls meanwhile; new CONNECTs get 503.
   * Default 0. Range 0 … 2147483647.
   */
  shutdownDelay?: number;
  /**
   * Serve a debug page at this path on the same http server (Go's /debug/rpc): per service its methods with
   * signatures, calls, errors by code and p50/p99 latency (of the last 1024 calls), and the open tunnels with
   * address, age, calls in flight, calls served and bytes; `?format=json` gives the same as JSON. Requests go
   * through `authorize` first, refused as a CONNECT would be (401/403/429/503). It adds one interceptor, the
   * outermost. Default undefined: off.
   */
  debugPath?: string;
}

/** ResolvedServerOptions is ServerOptions with every default filled in. @internal */
export interface ResolvedServerOptions extends DecodeLimits {
  path: string;
  maxConnections: number;
  maxConnectionsPerIp: number;
  minPingInterval: number;
  maxPingStrikes: number;
  keepaliveInterval: number;
  keepaliveTimeout: number;
  handshakeTimeout: number;
  maxHeadSize: number;
  maxInFlight: number;
  maxStreams: number;
  maxStreamBuffer: number;
  maxStreamMessageSize: number;
  maxStreamCredit: number;
  maxCallsInFlight: number;
  maxItemsInFlight: number;
  maxBytesInFlight: number;
  shareByAddress: boolean;
  maxHeaderCount: number;
  maxHeaderBytes: number;
  maxKeysPerMap: number;
  maxPartialFrameBytes: number;
  maxUnsentBytes: number;
  maxLogEntriesPerSecond: number;
  maxWriteBuffer: number;
  writeHighWaterMark: number;
  drainTimeout: number;
  halfCloseTimeout: number;
  frameTimeout: number;
  idleTimeout: number;
  defaultTimeout: number;
  maxTimeout: number;
  shutdownTimeout: number;
  exposeInternalErrors: boolean;
  validateParams: boolean;
  validateResults: boolean;
  authorize: ((req: IncomingMessage, peer: PeerAddress) => unknown) | undefined;
  requireClientCertificate: boolean;
  logger: ServerLogger;
  proxyProtocol: ResolvedProxyProtocol | undefined;
  interceptors: readonly Interceptor[];
  observers: readonly CallObserver[];
  propagateContext: boolean;
  listeners: readonly ServerListener[];
  healthService: boolean;
  reflectionService: boolean;
  shutdownDelay: number;
  debugPath: string | undefined;
}

/** checkListeners validates a `listeners` option: an array of functions. @internal */
export function checkListeners<L>(name: string, value: readonly L[] | undefined): readonly L[] {
  return checkFunctionList<L>(name, value, 'functions, (event) => void');
}

function checkDebugPath(debugPath: unknown, rpcPath: string): string | undefined {
  if (debugPath === undefined) return undefined;
  const expected = 'a path starting with "/", without spaces, "?" or "#", other than path; for example "/debug/tunnelrpc"';
  return checkString('debugPath', debugPath, expected, (text) => text.startsWith('/') && !/[\s?#]/.test(text) && text !== rpcPath);
}

/** resolveServerOptions fills defaults and validates every option, throwing INVALID_ARGUMENT naming the bad one. */
export function resolveServerOptions<Auth>(options: ServerOptions<Auth> = {}): ResolvedServerOptions {
  const given = definedOnly(options);
  const decode = resolveDecodeLimits(given);
  const path = checkString('path', orDefault(given.path, '/_rpc'), 'a request target that starts with "/" and holds no spaces, such as "/_rpc"', (text) => text.startsWith('/') && !/\s/.test(text));
  const ms = (name: keyof ServerOptions, fallback: number, min = 0): number => checkDuration(name, orDefault(given[name], fallback), min);
  const count = (name: keyof ServerOptions, fallback: number): number =>
    checkInteger(name, orDefault(given[name], fallback), 1, MAX_UINT32);
  const flag = (name: keyof ServerOptions, fallback: boolean): boolean => checkBoolean(name, orDefault(given[name], fallback));
  return {
    ...decode,
    path,
    maxConnections: count('maxConnections', 10_000),
    maxConnectionsPerIp: count('maxConnectionsPerIp', orDefault(given.maxConnections, 10_000)),
    minPingInterval: ms('minPingInterval', 10_000),
    maxPingStrikes: checkInteger('maxPingStrikes', orDefault(given.maxPingStrikes, 2), 0, 1000),
    keepaliveInterval: ms('keepaliveInterval', 30_000),
    keepaliveTimeout: ms('keepaliveTimeout', 20_000, 1),
    handshakeTimeout: ms('handshakeTimeout', 10_000, 1),
    maxHeadSize: checkInteger('maxHeadSize', orDefault(given.maxHeadSize, 8192), 1024, 1024 * 1024),
    maxInFlight: count('maxInFlight', 128),
    maxStreams: count('maxStreams', 1024),
    ...resolveStreamLimits(given, decode.maxFrameSize),
    maxCallsInFlight: count('maxCallsInFlight', 10_000),
    maxItemsInFlight: count('maxItemsInFlight', 4_194_304),
    maxBytesInFlight: count('maxBytesInFlight', 64 * 1024 * 1024),
    shareByAddress: flag('shareByAddress', true),
    maxHeaderCount: checkInteger('maxHeaderCount', orDefault(given.maxHeaderCount, 64), 0, 65_535),
    maxHeaderBytes: checkInteger('maxHeaderBytes', orDefault(given.maxHeaderBytes, 8192), 0, MAX_UINT32),
    maxKeysPerMap: count('maxKeysPerMap', 8192),
    maxPartialFrameBytes: count('maxPartialFrameBytes', 128 * 1024 * 1024),
    maxUnsentBytes: count('maxUnsentBytes', 256 * 1024 * 1024),
    maxLogEntriesPerSecond: count('maxLogEntriesPerSecond', 100),
    maxWriteBuffer: count('maxWriteBuffer', Math.min(MAX_UINT32, decode.maxFrameSize + 1024 * 1024)),
    writeHighWaterMark: count('writeHighWaterMark', 1024 * 1024),
    drainTimeout: ms('drainTimeout', 30_000),
    halfCloseTimeout: ms('halfCloseTimeout', 30_000),
    frameTimeout: ms('frameTimeout', 30_000),
    idleTimeout: ms('idleTimeout', 60_000),
    defaultTimeout: ms('defaultTimeout', 30_000, 1),
    maxTimeout: ms('maxTimeout', 300_000, 1),
    shutdownTimeout: ms('shutdownTimeout', 10_000),
    exposeInternalErrors: flag('exposeInternalErrors', false),
    validateParams: flag('validateParams', true),
    validateResults: flag('validateResults', false),
    authorize: given.authorize === undefined ? undefined : checkFunction('authorize', given.authorize, '(req, peer) => principal (sync or async)'),
    requireClientCertificate: flag('requireClientCertificate', false),
    logger: checkFunction('logger', orDefault(given.logger, defaultLogger), '(entry) => void'),
    interceptors: checkInterceptors('interceptors', given.interceptors),
    observers: checkObservers('observers', given.observers),
    propagateContext: flag('propagateContext', true),
    listeners: checkListeners('listeners', given.listeners),
    healthService: flag('healthService', true),
    reflectionService: flag('reflectionService', true),
    shutdownDelay: ms('shutdownDelay', 0),
    debugPath: checkDebugPath(given.debugPath, path),
    proxyProtocol: resolveProxyProtocol(given.proxyProtocol),
  };
}

function resolveProxyProtocol(given: ProxyProtocolOptions | undefined): ResolvedProxyProtocol | undefined {
  if (given === undefined) return undefined;
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw optionError('proxyProtocol', 'an object such as { trusted: ["127.0.0.1"] }', given);
  const trusted: unknown = (given as { trusted?: unknown }).trusted;
  const expected = 'a list of 1 … 1000 source addresses (your balancers), such as ["127.0.0.1"]';
  if (!Array.isArray(trusted) || trusted.length === 0 || trusted.length > 1000) throw optionError('proxyProtocol.trusted', expected, trusted);
  for (const [index, address] of trusted.entries()) {
    if (typeof address !== 'string' || isIP(address) === 0) {
      throw optionError('proxyProtocol.trusted', expected, trusted, `item ${index} is ${describeOptionValue(address)}, which is not an IPv4 or IPv6 address`);
    }
  }
  return {
    trusted: new Set(trusted.map((address: string) => normalizeAddress(address))),
    headerTimeout: checkDuration('proxyProtocol.headerTimeout', orDefault(given.headerTimeout, 5000), 3000),
  };
}
