/**
 * Server options: every limit with its default in one object, validated once at construction
 * (shared/RELIABILITY.md section 5).
 */
import type { IncomingMessage } from 'node:http';
import { checkInteger, definedOnly, MAX_UINT32, resolveDecodeLimits, RpcError, type DecodeLimits } from '@tunnelrpc/protocol';

import type { PeerAddress } from './dispatch.js';
import { defaultLogger, type ServerLogger } from './log.js';

/** ServerOptions configures an RpcServer. Every field is optional; the defaults are safe for a public port. */
export interface ServerOptions {
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
  /** Tunnels open at once from one remote address; further CONNECTs from it are answered 503. Default 256. */
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
   * connections, so that many tunnels from one address cannot take the whole server. Turn it off behind a TCP
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
  /** ms that close() lets calls in flight finish before it destroys the remaining tunnels. Default 10000. */
  shutdownTimeout?: number;
  /**
   * Parse every request's params with its method's zod schema (INVALID_ARGUMENT on failure). Turn it off only for
   * tunnels from trusted peers, to save the parse: handlers then get the decoded params as they came, unchecked
   * (still bounded by the frame limits), and zod transforms and defaults do not run. Default true.
   */
  validateParams?: boolean;
  /**
   * Send the text of non-RpcError throws to callers as the INTERNAL message. Off by default: handler errors can
   * hold secrets, so callers get a generic message and the detail goes to `logger`.
   */
  exposeInternalErrors?: boolean;
  /**
   * Decides whether a CONNECT may open a tunnel. Throw RpcError UNAUTHENTICATED (answered 401),
   * PERMISSION_DENIED (403), RESOURCE_EXHAUSTED (429) or UNAVAILABLE (503); any other throw is 403. The value
   * returned is handed to every handler as `ctx.auth`.
   */
  authorize?: (req: IncomingMessage, peer: PeerAddress) => unknown;
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
  maxCallsInFlight: number;
  maxItemsInFlight: number;
  maxBytesInFlight: number;
  shareByAddress: boolean;
  maxHeaderCount: number;
  maxHeaderBytes: number;
  maxKeysPerMap: number;
  maxPartialFrameBytes: number;
  maxLogEntriesPerSecond: number;
  maxWriteBuffer: number;
  writeHighWaterMark: number;
  drainTimeout: number;
  frameTimeout: number;
  idleTimeout: number;
  defaultTimeout: number;
  maxTimeout: number;
  shutdownTimeout: number;
  exposeInternalErrors: boolean;
  validateParams: boolean;
  authorize: ((req: IncomingMessage, peer: PeerAddress) => unknown) | undefined;
  requireClientCertificate: boolean;
  logger: ServerLogger;
}

const MAX_TIMER_MS = 2_147_483_647; // setTimeout's ceiling

function checkFlag(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new RpcError('INVALID_ARGUMENT', `option ${name} must be true or false; got ${String(value)}`);
  return value;
}

/** resolveServerOptions fills defaults and validates every option, throwing INVALID_ARGUMENT naming the bad one. */
export function resolveServerOptions(options: ServerOptions = {}): ResolvedServerOptions {
  const given = definedOnly(options);
  const decode = resolveDecodeLimits(given);
  const path = given.path ?? '/_rpc';
  if (!path.startsWith('/') || /\s/.test(path)) {
    throw new RpcError('INVALID_ARGUMENT', `option path ${JSON.stringify(path)} must start with "/" and hold no spaces`);
  }
  const ms = (name: keyof ServerOptions, fallback: number, min = 0): number =>
    checkInteger(name, given[name] ?? fallback, min, MAX_TIMER_MS);
  const count = (name: keyof ServerOptions, fallback: number): number =>
    checkInteger(name, given[name] ?? fallback, 1, MAX_UINT32);
  return {
    ...decode,
    path,
    maxConnections: count('maxConnections', 10_000),
    maxConnectionsPerIp: count('maxConnectionsPerIp', 256),
    minPingInterval: ms('minPingInterval', 10_000),
    maxPingStrikes: checkInteger('maxPingStrikes', given.maxPingStrikes ?? 2, 0, 1000),
    keepaliveInterval: ms('keepaliveInterval', 30_000),
    keepaliveTimeout: ms('keepaliveTimeout', 20_000, 1),
    handshakeTimeout: ms('handshakeTimeout', 10_000, 1),
    maxHeadSize: checkInteger('maxHeadSize', given.maxHeadSize ?? 8192, 1024, 1024 * 1024),
    maxInFlight: count('maxInFlight', 128),
    maxCallsInFlight: count('maxCallsInFlight', 10_000),
    maxItemsInFlight: count('maxItemsInFlight', 4_194_304),
    maxBytesInFlight: count('maxBytesInFlight', 64 * 1024 * 1024),
    shareByAddress: given.shareByAddress ?? true,
    maxHeaderCount: checkInteger('maxHeaderCount', given.maxHeaderCount ?? 64, 0, 65_535),
    maxHeaderBytes: checkInteger('maxHeaderBytes', given.maxHeaderBytes ?? 8192, 0, MAX_UINT32),
    maxKeysPerMap: count('maxKeysPerMap', 8192),
    maxPartialFrameBytes: count('maxPartialFrameBytes', 128 * 1024 * 1024),
    maxLogEntriesPerSecond: count('maxLogEntriesPerSecond', 100),
    maxWriteBuffer: count('maxWriteBuffer', Math.min(MAX_UINT32, decode.maxFrameSize + 1024 * 1024)),
    writeHighWaterMark: count('writeHighWaterMark', 1024 * 1024),
    drainTimeout: ms('drainTimeout', 30_000),
    frameTimeout: ms('frameTimeout', 30_000),
    idleTimeout: ms('idleTimeout', 60_000),
    defaultTimeout: ms('defaultTimeout', 30_000, 1),
    maxTimeout: ms('maxTimeout', 300_000, 1),
    shutdownTimeout: ms('shutdownTimeout', 10_000),
    exposeInternalErrors: given.exposeInternalErrors ?? false,
    validateParams: given.validateParams ?? true,
    authorize: given.authorize,
    requireClientCertificate: checkFlag('requireClientCertificate', given.requireClientCertificate ?? false),
    logger: given.logger ?? defaultLogger,
  };
}
