/**
 * Client options: every limit with its default, validated once in connect().
 *
 * Over 400 lines: every option's TSDoc (unit, default, range, what happens at the limit) is the reference users
 * read; the options type and its one resolver stay side by side so that a new option is written once, in one place.
 */
import { lookup } from 'node:dns/promises';
import type { ConnectionOptions } from 'node:tls';
import {
  type ContractSkew,
  type ServiceContract,
  RpcError,
  type DecodeLimits,
  type Interceptor,
  type CallObserver,
} from '@tunnelrpc/protocol';
import {
  MAX_UINT32,
  describeSkew,
  encodeContractHeader,
  checkBoolean,
  checkDuration,
  checkFunction,
  checkFunctionList,
  checkInteger,
  checkInterceptors,
  checkObservers,
  checkOneOf,
  definedOnly,
  optionError,
  orDefault,
  resolveDecodeLimits,
  resolveStreamLimits,
} from '@tunnelrpc/protocol/internal';
import type { ClientListener } from './events.js';
import type { HandshakeKind } from './handshake-reply.js';
import { resolveOutlierDetection, type OutlierDetectionOptions, type ResolvedOutlierDetection } from './outlier.js';

/**
 * ConnectHeaders are the headers of the CONNECT: a fixed object, or a function (sync or async) called before
 * every dial, so that a rotating token reaches each redial without a new client.
 */
export type ConnectHeaders = Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);

/** ResolvedAddress is one answer of the lookup option: an IPv4 or IPv6 address (family is informational). */
export interface ResolvedAddress {
  address: string;
  family?: number;
}

/**
 * LookupFunction resolves a host name to every address it has (A and AAAA), as `dns.promises.lookup(hostname,
 * { all: true })` does. It may be sync or async; a throw or rejection counts as a failed resolution.
 */
export type LookupFunction = (hostname: string) => readonly ResolvedAddress[] | Promise<readonly ResolvedAddress[]>;

/** ClientOptions configures connect(). Every field is optional. */
export interface ClientOptions {
  /**
   * Headers sent with the CONNECT, such as `Authorization`; Host is set from the URL. A function is called before
   * each dial (the first one and every redial); if it throws or rejects, that dial fails UNAVAILABLE (or with the
   * code of the RpcError it threw) and the client retries with backoff.
   */
  headers?: ConnectHeaders;
  /** TLS settings for https:// URLs (ca, cert, key, servername, rejectUnauthorized). */
  tls?: ConnectionOptions;
  /**
   * How to ask for the tunnel: 'connect' sends `CONNECT <path>` (answered 200); 'upgrade' sends `GET <path>` with
   * `Upgrade: tunnelrpc` (answered 101), which HTTP-aware proxies such as HAProxy mode http and nginx pass while
   * they refuse CONNECT. Both carry the same frames. Default 'connect'.
   */
  handshake?: HandshakeKind;
  /**
   * Forward proxy to dial through, as `http://host:port` or `http://user:password@host:port` (sent as
   * Proxy-Authorization: Basic): the client sends `CONNECT host:port` to it, then its own handshake inside (TLS
   * inside for https:// URLs). Undefined reads the environment as undici's EnvHttpProxyAgent does: http_proxy /
   * HTTP_PROXY, https_proxy / HTTPS_PROXY (lower case first), no_proxy / NO_PROXY. false never uses a proxy.
   * Unix socket URLs never do. Default: the environment.
   */
  proxy?: string | false;
  /** ms to connect and get the reply head; past it connect() fails UNAVAILABLE. Default 10000. 1 … 2147483647. */
  handshakeTimeout?: number;
  /** Largest reply head accepted, in bytes; a longer one fails connect() with UNAVAILABLE. Default 8192. */
  maxHeadSize?: number;
  /**
   * Largest frame payload accepted and sent, in bytes. A larger response closes the connection (goaway
   * RESOURCE_EXHAUSTED); a larger request fails that call with RESOURCE_EXHAUSTED before it is sent.
   * Default 8 MiB (8388608). Range 1 … 4294967295.
   */
  maxFrameSize?: number;
  /**
   * Deepest nesting of arrays and maps in a frame, received or sent. A deeper response closes the tunnel (goaway
   * PROTOCOL_ERROR); a call or notification whose params are deeper fails INVALID_ARGUMENT, unsent (the server,
   * with the same default, would close the tunnel for it). Default 32. Range 2 … 1000.
   */
  maxDepth?: number;
  /**
   * Most MessagePack values in one frame, received or sent. A response with more closes the tunnel (goaway
   * RESOURCE_EXHAUSTED); a call or notification with more fails RESOURCE_EXHAUSTED, unsent. Default 262144.
   */
  maxItemsPerFrame?: number;
  /** Deadline in ms of a call that gives no `timeout`. Every call has one. Default 30000. 1 … 2147483647. */
  defaultTimeout?: number;
  /**
   * Calls waiting for an answer (including ones given up locally whose answer has not arrived yet). A call past
   * it fails at once with RESOURCE_EXHAUSTED, unsent. Default 1024. Range 1 … 4294967295.
   */
  maxPendingCalls?: number;
  /**
   * Bytes queued to a server that is not reading, above which new calls wait (in order, each bounded by its
   * deadline and by maxPendingCalls) until the socket drains: a slow server slows callers down rather than
   * growing this process's memory. A ping that arrives while more than this is unsent stops reading the socket
   * until it drains, so a server that pings and never reads our pongs cannot grow them without bound (the kernel
   * buffers hold the rest). Default 1 MiB (1048576). Range 1 … 4294967295.
   */
  maxWriteBuffer?: number;
  /**
   * Redial after the tunnel is lost or the server sends goaway, with exponential backoff and jitter. Calls made
   * meanwhile wait for the new tunnel, each bounded by its deadline. Default true.
   */
  reconnect?: boolean;
  /**
   * First backoff delay in ms after a failed dial, or after losing a tunnel that achieved nothing (the server
   * answered no call and no ping, and it was up less than maxReconnectDelay); it doubles per failure, with equal
   * jitter (half fixed, half random). A successful handshake alone does not reset it. Default 100.
   * Range 1 … 2147483647.
   */
  minReconnectDelay?: number;
  /**
   * Largest backoff delay in ms between dials. A tunnel that stayed up this long, or answered a call or a ping,
   * resets the backoff: the next redial after its loss is immediate. Default 10000. Range 1 … 2147483647.
   */
  maxReconnectDelay?: number;
  /**
   * Times a call to a method marked idempotent is re-sent after the tunnel was lost while it ran (it may have run).
   * Calls that surely did not run (never sent, or refused by goaway) are re-sent regardless, within their
   * deadline. Default 2. Range 0 … 100.
   */
  maxRetries?: number;
  /**
   * ms without any frame from the server after which the client sends a ping. Shorter than the idle cut of common
   * proxies (HAProxy: 50 s). 0 disables keepalive pings. Default 30000.
   */
  keepaliveInterval?: number;
  /** ms to wait for any frame after a keepalive ping before the tunnel is declared dead. Default 20000. */
  keepaliveTimeout?: number;
  /**
   * ms from the first byte of a frame from the server to its last. A frame still incomplete after it (a server
   * trickling bytes of a frame that never ends) closes the tunnel: goaway PROTOCOL_ERROR, and its calls fail
   * UNAVAILABLE. Time with reading stopped on our side does not count. 0 disables. Default 30000.
   * Range 0 … 2147483647.
   */
  frameTimeout?: number;
  /**
   * Most headers in one call's or notification's `headers`. A call with more fails INVALID_ARGUMENT at once,
   * unsent, and no other call is affected. The reference server refuses more by default too. Default 64.
   * Range 0 … 65535.
   */
  maxHeaderCount?: number;
  /**
   * Most bytes of one call's `headers`: names plus values, UTF-8. A call with more fails INVALID_ARGUMENT at once,
   * unsent. The reference server refuses more by default too. Default 8192. Range 0 … 4294967295.
   */
  maxHeaderBytes?: number;
  /**
   * Calls and notifications made while no tunnel is open wait for one, each bounded by its deadline (gRPC's
   * wait-for-ready). false fails them at once with UNAVAILABLE `{mayHaveRun: false}` instead (fail fast); a call
   * can override it with its own `waitForReady`. Default true.
   */
  waitForReady?: boolean;
  /**
   * Bytes of server stream messages one tunnel may make this client hold: every grant reserves
   * maxStreamMessageSize per message until your code reads it, and grants wait (first come, first served) while
   * this is used up, so unread stream data per tunnel never exceeds it, whatever the number of streams
   * (PROTOCOL.md 12.4). Default 16 MiB (16777216). Range maxStreamMessageSize … 4294967295.
   */
  maxStreamBuffer?: number;
  /**
   * Largest server stream message payload accepted, in bytes, announced in each stream's opening
   * (meta.maxMessageSize). A larger one closes the tunnel: goaway PROTOCOL_ERROR. Default 128 KiB (131072).
   * Range 1 … maxFrameSize.
   */
  maxStreamMessageSize?: number;
  /**
   * Messages granted to one stream and not yet read, at most (its window); more is granted as your code reads,
   * once half is read. Default 32. Range 1 … 2147483647.
   */
  maxStreamCredit?: number;
  /**
   * Interceptors run around every call and notification, `(next) => async (call) => next(call)`; the first is the
   * outermost. They sit above queueing, redials and retries (they see each call once), may change `call.headers`
   * and `call.params` before `next`, and may answer with an RpcError instead of calling it. Default none.
   */
  interceptors?: readonly Interceptor[];
  /**
   * Observers hear every call the client sends start and end (method, type, code, seconds), streams and
   * notifications included, however many attempts it takes, synchronously and without joining the call's path:
   * the way to count calls (as `@tunnelrpc/prometheus` does) at a few additions per call. A throw in one is
   * ignored. Default none.
   */
  observers?: readonly CallObserver[];
  /**
   * ms taken off the deadline a call inherits from the inbound call whose handler makes it (CallOptions
   * inheritDeadline), to leave that handler time to answer after the inner call fails. Default 10.
   * Range 0 … 60000.
   */
  deadlineMargin?: number;
  /**
   * Receive connection events, synchronously: connected (address), disconnected (reason, code), reconnecting
   * (attempt, delay). A listener that throws is skipped; the client and its calls are not affected. Default none.
   */
  listeners?: readonly ClientListener[];
  /**
   * Tunnels kept open to each endpoint (each URL, or each address a host name resolves to). Behind Node's
   * `cluster` or a TCP balancer each tunnel lands on one worker, so N tunnels spread one client over up to N of
   * them. While an endpoint has no tunnel it is probed with one dial at a time; the others follow once it is up.
   * Default 1. Range 1 … 256.
   */
  tunnelsPerEndpoint?: number;
  /**
   * ms between DNS resolutions of the URLs' host names, to pick up addresses added or removed. Addresses that
   * leave the answer are drained and closed; a failed resolution keeps the addresses known. 0 resolves only at
   * start and after failures. Default 30000. Range 0 … 2147483647.
   */
  resolveInterval?: number;
  /**
   * Least ms between two DNS resolutions of one host name when they are caused by failures (a dial refused, a
   * tunnel lost): a flapping fleet cannot turn into a flood of DNS queries. Default 5000. Range 0 … 2147483647.
   */
  minResolveInterval?: number;
  /**
   * Resolves a URL's host name to its addresses; each becomes an endpoint (IP address URLs and unix sockets are
   * not resolved). Default: `dns.promises.lookup(hostname, { all: true, verbatim: true })` (the system resolver,
   * /etc/hosts included, every A and AAAA record). Replace it for service discovery or tests.
   */
  lookup?: LookupFunction;
  /**
   * The contracts this client was built with. Their method fingerprints (a hash of each method's schemas) go with
   * every handshake (header Tunnelrpc-Contract, PROTOCOL.md 2.6); a server that knows the header answers which of
   * those methods it has with other schemas or lacks, and the client reports that once, at the first dial that
   * finds it, through onContractSkew. Servers that do not know the header ignore it. Default: none sent.
   */
  contracts?: readonly ServiceContract[];
  /**
   * Called once per client with the methods whose schemas differ on the server or that it lacks, and the URL.
   * Default: a process warning (code TUNNELRPC_CONTRACT_SKEW) naming each method. A listener that throws is
   * ignored.
   */
  onContractSkew?: (skew: readonly ContractSkew[], url: string) => void;
  /**
   * Eject an endpoint for what its calls say: answers in a row that blame it (UNAVAILABLE, INTERNAL,
   * DEADLINE_EXCEEDED; never a code that blames the caller), or a success rate far below the other endpoints'. An
   * ejected endpoint gets no calls (unless every other one is out) for a time that grows with each ejection, then
   * takes real calls again. Settings and defaults follow Envoy's outlier detection: see OutlierDetectionOptions and
   * the README's "Scaling out". false turns it off. Default: on, with those defaults.
   */
  outlierDetection?: OutlierDetectionOptions | false;
  /**
   * ms an attempt of an idempotent call may wait for its answer before the call is re-sent on another tunnel (the
   * first attempt is cancelled; Envoy's per_try_timeout), within its deadline and maxRetries. A frozen replica then
   * costs one attempt, not the deadline. A call with no tries left keeps waiting. 0 turns it off. Default 0.
   * Range 0 … 2147483647.
   */
  attemptTimeout?: number;
  /**
   * ms a tunnel with calls waiting may stay silent (no frame at all; the client pings it after half of this) while
   * another of the client's tunnels answers, before it is treated as failed: closed, its idempotent calls re-sent
   * elsewhere, the others failed UNAVAILABLE `mayHaveRun: true`. A lone tunnel is never judged so (keepalive still
   * applies). 0 turns it off. Default 2000. Range 0 … 2147483647.
   */
  unresponsiveTimeout?: number;
  /**
   * Largest backoff in ms between dials while they are refused outright (ECONNREFUSED: the host is up and nothing
   * listens). Such a dial costs a packet each way, so a restarted server is found promptly. Default 250.
   * Range 1 … 2147483647.
   */
  maxRefusedReconnectDelay?: number;
  /**
   * Weigh the two-choice pick by latency: each tunnel's outstanding calls plus one, times its endpoint's peak-EWMA
   * of answer times (Finagle's and Linkerd's balancer), so a slow replica gets fewer calls without being ejected.
   * false picks on outstanding calls alone. Default true.
   */
  latencyAware?: boolean;
  /**
   * ms over which the latency estimate of latencyAware forgets (its time constant). Finagle and Linkerd use 10 s;
   * with three replicas one latency peak then kept a healthy replica out of favour for tens of seconds (in a run of
   * `pnpm bench:pool`'s grey cell at 256 callers, half the calls/s of least-request picking), while 1 s still keeps
   * a replica answering in 200 ms out. Default 1000. Range 1 … 2147483647.
   */
  latencyDecayTime?: number;
}

/** ResolvedClientOptions is ClientOptions with every default filled in. @internal */
export interface ResolvedClientOptions extends DecodeLimits {
  headers: ConnectHeaders;
  tls: ConnectionOptions;
  handshake: HandshakeKind;
  proxy: string | false | undefined;
  handshakeTimeout: number;
  maxHeadSize: number;
  defaultTimeout: number;
  maxPendingCalls: number;
  maxWriteBuffer: number;
  reconnect: boolean;
  minReconnectDelay: number;
  maxReconnectDelay: number;
  maxRetries: number;
  keepaliveInterval: number;
  keepaliveTimeout: number;
  frameTimeout: number;
  maxHeaderCount: number;
  maxHeaderBytes: number;
  waitForReady: boolean;
  maxStreamBuffer: number;
  maxStreamMessageSize: number;
  maxStreamCredit: number;
  interceptors: readonly Interceptor[];
  observers: readonly CallObserver[];
  deadlineMargin: number;
  listeners: readonly ClientListener[];
  tunnelsPerEndpoint: number;
  resolveInterval: number;
  minResolveInterval: number;
  lookup: LookupFunction;
  /** The Tunnelrpc-Contract header value, or undefined when no contracts were given. */
  contractHeader: string | undefined;
  onContractSkew: (skew: readonly ContractSkew[], url: string) => void;
  outlierDetection: ResolvedOutlierDetection;
  attemptTimeout: number;
  unresponsiveTimeout: number;
  maxRefusedReconnectDelay: number;
  latencyAware: boolean;
  latencyDecayTime: number;
}

function checkHeadersOption(value: unknown): ConnectHeaders {
  if (typeof value === 'function' || (typeof value === 'object' && value !== null && !Array.isArray(value))) return value as ConnectHeaders;
  throw optionError('headers', 'an object of strings or a function returning one', value);
}

// Every A and AAAA record, in the resolver's order, as net.connect would see them.
const systemLookup: LookupFunction = (hostname) => lookup(hostname, { all: true, verbatim: true });

function contractHeaderOf(contracts: unknown): string | undefined {
  if (contracts === undefined) return undefined;
  if (!Array.isArray(contracts) || !contracts.every((each) => typeof each === 'object' && each !== null && typeof (each as ServiceContract).name === 'string' && typeof (each as ServiceContract).methods === 'object')) {
    throw new RpcError('INVALID_ARGUMENT', 'option contracts must be an array of defineService results');
  }
  const value = encodeContractHeader(contracts as ServiceContract[]);
  return value.length === 0 ? undefined : value;
}

function checkSkewListener(value: unknown): (skew: readonly ContractSkew[], url: string) => void {
  if (value === undefined) return warnSkew;
  if (typeof value !== 'function') throw new RpcError('INVALID_ARGUMENT', `option onContractSkew must be a function (skew, url) => void; got ${typeof value}`);
  return value as (skew: readonly ContractSkew[], url: string) => void;
}

// The default report: one process warning, which Node prints once to stderr.
function warnSkew(skew: readonly ContractSkew[], url: string): void {
  process.emitWarning(`contract skew with ${url}: ${describeSkew(skew)}; calls to these methods may fail until client and server agree`, { code: 'TUNNELRPC_CONTRACT_SKEW' });
}

/** resolveClientOptions fills defaults and validates, throwing INVALID_ARGUMENT naming the bad option. */
export function resolveClientOptions(options: ClientOptions = {}): ResolvedClientOptions {
  const given = definedOnly(options);
  const decode = resolveDecodeLimits(given);
  return {
    ...decode,
    headers: checkHeadersOption(orDefault(given.headers, {})),
    tls: checkObject('tls', orDefault(given.tls, {}), 'an object of TLS settings such as { ca, cert, key }'),
    handshake: checkOneOf<HandshakeKind>('handshake', orDefault(given.handshake, 'connect'), ['connect', 'upgrade']),
    proxy: checkProxy(given.proxy),
    handshakeTimeout: checkDuration('handshakeTimeout', orDefault(given.handshakeTimeout, 10_000), 1),
    maxHeadSize: checkInteger('maxHeadSize', orDefault(given.maxHeadSize, 8192), 64, 1024 * 1024),
    defaultTimeout: checkDuration('defaultTimeout', orDefault(given.defaultTimeout, 30_000), 1),
    maxPendingCalls: checkInteger('maxPendingCalls', orDefault(given.maxPendingCalls, 1024), 1, MAX_UINT32),
    maxWriteBuffer: checkInteger('maxWriteBuffer', orDefault(given.maxWriteBuffer, 1024 * 1024), 1, MAX_UINT32),
    reconnect: checkBoolean('reconnect', orDefault(given.reconnect, true)),
    minReconnectDelay: checkDuration('minReconnectDelay', orDefault(given.minReconnectDelay, 100), 1),
    maxReconnectDelay: checkDuration('maxReconnectDelay', orDefault(given.maxReconnectDelay, 10_000), 1),
    maxRetries: checkInteger('maxRetries', orDefault(given.maxRetries, 2), 0, 100),
    keepaliveInterval: checkDuration('keepaliveInterval', orDefault(given.keepaliveInterval, 30_000)),
    keepaliveTimeout: checkDuration('keepaliveTimeout', orDefault(given.keepaliveTimeout, 20_000), 1),
    frameTimeout: checkDuration('frameTimeout', orDefault(given.frameTimeout, 30_000)),
    maxHeaderCount: checkInteger('maxHeaderCount', orDefault(given.maxHeaderCount, 64), 0, 65_535),
    maxHeaderBytes: checkInteger('maxHeaderBytes', orDefault(given.maxHeaderBytes, 8192), 0, MAX_UINT32),
    waitForReady: checkBoolean('waitForReady', orDefault(given.waitForReady, true)),
    ...resolveStreamLimits(given, decode.maxFrameSize),
    interceptors: checkInterceptors('interceptors', given.interceptors),
    observers: checkObservers('observers', given.observers),
    deadlineMargin: checkInteger('deadlineMargin', orDefault(given.deadlineMargin, 10), 0, 60_000),
    listeners: checkFunctionList<ClientListener>('listeners', given.listeners, 'functions, (event) => void'),
    tunnelsPerEndpoint: checkInteger('tunnelsPerEndpoint', orDefault(given.tunnelsPerEndpoint, 1), 1, 256),
    resolveInterval: checkDuration('resolveInterval', orDefault(given.resolveInterval, 30_000)),
    minResolveInterval: checkDuration('minResolveInterval', orDefault(given.minResolveInterval, 5000)),
    lookup: checkFunction<LookupFunction>('lookup', orDefault(given.lookup, systemLookup), '(hostname) => [{ address }]'),
    contractHeader: contractHeaderOf(given.contracts),
    onContractSkew: checkSkewListener(given.onContractSkew),
    outlierDetection: resolveOutlierDetection(given.outlierDetection),
    attemptTimeout: checkDuration('attemptTimeout', orDefault(given.attemptTimeout, 0)),
    unresponsiveTimeout: checkDuration('unresponsiveTimeout', orDefault(given.unresponsiveTimeout, 2000)),
    maxRefusedReconnectDelay: checkDuration('maxRefusedReconnectDelay', orDefault(given.maxRefusedReconnectDelay, 250), 1),
    latencyAware: checkBoolean('latencyAware', orDefault(given.latencyAware, true)),
    latencyDecayTime: checkDuration('latencyDecayTime', orDefault(given.latencyDecayTime, 1000), 1),
  };
}

function checkProxy(value: unknown): string | false | undefined {
  if (value === undefined || value === false || typeof value === 'string') return value;
  throw optionError('proxy', "a URL string such as 'http://proxy:3128', or false", value);
}

function checkObject<T extends object>(name: string, value: unknown, expected: string): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw optionError(name, expected, value);
  return value as T;
}

/**
 * checkCallFlags refuses a call whose boolean options (waitForReady, idempotent, inheritDeadline) hold anything but
 * true, false or undefined: a string 'false' would read as true. INVALID_ARGUMENT, unsent. @internal
 */
export function checkCallFlags(what: string, options: object): RpcError | undefined {
  for (const name of ['waitForReady', 'idempotent', 'inheritDeadline'] as const) {
    const value: unknown = (options as Record<string, unknown>)[name];
    if (value === undefined || typeof value === 'boolean') continue;
    const error = optionError(name, 'true or false', value);
    return new RpcError('INVALID_ARGUMENT', `${what} not sent: ${error.message}`, { ...(error.data as object), mayHaveRun: false });
  }
  return undefined;
}
