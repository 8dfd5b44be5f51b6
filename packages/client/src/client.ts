/**
 * RpcClient: many concurrent calls multiplexed over one tunnel, answered in any order, with redials after a loss.
 * Every call ends: answered, or failed with an RpcError whose code says why and whose data says whether it may
 * have run. Calls that surely did not run, and idempotent ones, are re-sent on the next tunnel within their
 * deadline; calls made while there is no tunnel wait for one, bounded by their deadline.
 */
import type { Socket } from 'node:net';
import { RpcError, lowerCaseHeaderName } from '@tunnelrpc/protocol';
import { callDeadlines, failCall, settleCall, type Call } from './call.js';
import { dial, type Dialed } from './dial.js';
import { createClientEmitter, type ClientEvent } from './events.js';
import { CallLayer } from './interceptors.js';
import type { ResolvedClientOptions } from './options.js';
import type { DialTarget } from './target.js';
import { Feed, StreamCall, StreamCore, type StreamSchemas } from './stream.js';
import { Tunnel, type TunnelHost } from './tunnel.js';
import type { StreamKind } from '@tunnelrpc/protocol';

/** CallOptions tune one call. */
export interface CallOptions {
  /** Deadline in ms from now; the server gets what is left of it as meta.timeout. Default: defaultTimeout. */
  timeout?: number;
  /** Aborting it fails the call with CANCELLED and sends a cancel to the server. */
  signal?: AbortSignal;
  /**
   * Headers for the handler (ctx.headers): trace ids, per-call credentials. A plain object of string to string;
   * names are sent in lower case, as HTTP compares them. Two names equal after lowercasing, a value that is not a
   * string, more than maxHeaderCount headers or more than maxHeaderBytes bytes fail this call alone with
   * INVALID_ARGUMENT, unsent.
   */
  headers?: Record<string, string>;
  /**
   * Wait for a tunnel when none is open (true), or fail at once with UNAVAILABLE `{mayHaveRun: false}` (false).
   * Default: the client's waitForReady (true).
   */
  waitForReady?: boolean;
  /**
   * The method is safe to run twice: after a lost tunnel the call is re-sent (up to maxRetries) instead of failing
   * with "may have run". The typed client sets it from the contract. Default false.
   */
  idempotent?: boolean;
  /**
   * Inherit the deadline and cancellation of the inbound call whose handler makes this call (on a tunnelrpc server
   * with propagateContext on): the call gets what is left of that deadline less the client's deadlineMargin (or its
   * own `timeout` when shorter), and is cancelled when the inbound call is. Past the inherited deadline it fails
   * DEADLINE_EXCEEDED unsent. false gives the call its own deadline and signal only. Default true.
   */
  inheritDeadline?: boolean;
}

/** StreamOptions tune one stream, as CallOptions a call; the deadline covers the whole stream. */
export type StreamOptions = Omit<CallOptions, 'idempotent'>;

/** NotifyOptions tune one notification. */
export interface NotifyOptions {
  /** Headers for the handler (ctx.headers), checked as CallOptions.headers. */
  headers?: Record<string, string>;
  /**
   * ms the notification may wait for a tunnel (or for a server that does not read) before it fails
   * DEADLINE_EXCEEDED, unsent. Not sent to the server. Default: defaultTimeout.
   */
  timeout?: number;
  /** Aborting it before the notification is written fails it with CANCELLED, unsent. */
  signal?: AbortSignal;
  /** As CallOptions.waitForReady. */
  waitForReady?: boolean;
  /** As CallOptions.inheritDeadline. Default true. */
  inheritDeadline?: boolean;
}

/** CallFailure says, in every locally made error's `data`, whether the server may have run the call. */
export interface CallFailure {
  /** False when the call surely did not run (never sent, or refused by a goaway): safe to retry. */
  mayHaveRun: boolean;
}

const NO_OPTIONS: CallOptions = Object.freeze({});

// setTimeout's ceiling: a longer timeout is clamped to it.
const MAX_TIMER_MS = 2_147_483_647;

// Dial errors that another try will not fix: calls waiting for a tunnel fail with them at once.
const PERMANENT_REFUSALS: ReadonlySet<string> = new Set(['UNAUTHENTICATED', 'PERMISSION_DENIED', 'UNIMPLEMENTED', 'INVALID_ARGUMENT']);

/** RpcClient sends calls and notifications to one server. Create it with connect(). */
export class RpcClient {
  readonly #options: ResolvedClientOptions;
  readonly #target: DialTarget;
  readonly #host: TunnelHost;
  readonly #layer: CallLayer;
  readonly #emit: ((event: ClientEvent) => void) | undefined;
  // Each tunnel's socket, for the byte counts of its disconnected event (only kept when there are listeners).
  readonly #sockets = new WeakMap<Tunnel, Socket>();
  // The tunnel new calls go to; older ones finish their calls in #draining.
  #tunnel: Tunnel | undefined;
  readonly #draining = new Set<Tunnel>();
  // Calls waiting for a tunnel, oldest first.
  #queue: Call[] = [];
  #state: 'open' | 'closing' | 'closed' = 'open';
  #dialing = false;
  // Aborts the dial in progress: close() must not leave a socket and a handshake timer behind.
  #dialAbort: AbortController | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #failedDials = 0;
  #lastDialError: RpcError | undefined;
  #closeReason: RpcError | undefined;
  readonly #closed: Promise<RpcError | undefined>;
  #resolveClosed!: (reason: RpcError | undefined) => void;

  // One function per client, shared by its calls, for when a call's deadline passes.
  readonly #expire = (call: Call, timeout: number): void => {
    this.#giveUp(call, 'DEADLINE_EXCEEDED', `${call.method} passed its deadline of ${timeout} ms`);
  };

  /** @internal Use connect() or createRpcClient(). Without `dialed`, the client dials in the background. */
  constructor(dialed: Dialed | undefined, options: ResolvedClientOptions, target: DialTarget) {
    this.#options = options;
    this.#target = target;
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#emit = createClientEmitter(options.listeners);
    this.#layer = new CallLayer(
      (notification, method, params, callOptions) => this.#start(notification, method, params, callOptions),
      options.interceptors,
      options.defaultTimeout,
      options.deadlineMargin,
      target.display,
    );
    this.#host = {
      tunnelDraining: (tunnel, refused) => this.#onDraining(tunnel, refused),
      tunnelEnded: (tunnel, reason, orphans, refused) => this.#onEnded(tunnel, reason, orphans, refused),
      tunnelWritable: (tunnel) => {
        if (tunnel === this.#tunnel) this.#flushQueue();
      },
    };
    if (dialed !== undefined) this.#adopt(dialed);
    else this.#redial();
  }

  /** target is the URL this client dials. */
  get target(): string {
    return this.#target.display;
  }

  /** pendingCalls counts calls not yet settled: waiting for a tunnel or for their answer. */
  get pendingCalls(): number {
    let count = this.#queue.length + (this.#tunnel?.callCount ?? 0);
    for (const tunnel of this.#draining) count += tunnel.callCount;
    return count;
  }

  /** closed resolves when the client is done: undefined after close(), else the error that ended it. */
  get closed(): Promise<RpcError | undefined> {
    return this.#closed;
  }

  /**
   * call invokes `method` ("Service.method") and resolves with its result, or rejects with an RpcError:
   * the server's error, DEADLINE_EXCEEDED at the deadline, CANCELLED on abort, UNAVAILABLE when the tunnel is lost
   * and the call may have run, RESOURCE_EXHAUSTED when too many calls wait. Bad arguments fail this call alone,
   * before anything is written (`data.mayHaveRun: false`): INVALID_ARGUMENT for a method that is not a string,
   * headers that are not a plain object
   * of strings, duplicate names in lower case, more than maxHeaderCount or maxHeaderBytes, params that cannot be
   * encoded, or a NaN timeout; DEADLINE_EXCEEDED for a timeout of 0 or less. A fractional timeout is rounded up.
   */
  call(method: string, params?: unknown, options: CallOptions = NO_OPTIONS): Promise<unknown> {
    return this.#layer.run(false, method, params, options);
  }

  /**
   * notify sends a notification: no answer, no result. Like a call, it waits for a tunnel when none is open
   * (bounded by its timeout, default defaultTimeout, and by maxPendingCalls), and resolves once it is written to
   * the socket. Rejects with an RpcError whose data says `{mayHaveRun: false}`: INVALID_ARGUMENT for bad headers or
   * params, DEADLINE_EXCEEDED when no tunnel came in time, CANCELLED on abort, UNAVAILABLE after close() or with
   * waitForReady false, RESOURCE_EXHAUSTED past maxPendingCalls. A notification written to a tunnel that is then
   * lost may or may not have run; it is never re-sent.
   */
  notify(method: string, params?: unknown, options: NotifyOptions = NO_OPTIONS): Promise<void> {
    return this.#layer.run(true, method, params, options) as Promise<void>;
  }

  /**
   * stream opens a stream (PROTOCOL.md 12) of `kind` on `method`. `source` gives the messages of a client or bidi
   * stream (read only as the server grants credit); a bidi stream opened without one is fed with send() / end().
   * Iterate the returned StreamCall for the server's messages (reading grants more credit; `break` cancels), and
   * await its `result`. A stream is never re-sent once a message has crossed the wire. Prefer createClient's typed
   * methods, which pass the contract's schemas.
   */
  stream(method: string, params: unknown, kind: StreamKind, options: StreamOptions = NO_OPTIONS, source?: AsyncIterable<unknown> | Iterable<unknown>, schemas: StreamSchemas = {}): StreamCall {
    let feed: Feed | undefined;
    let iterator: AsyncIterator<unknown> | undefined;
    if (kind !== 'serverStream') {
      if (source === undefined) {
        feed = new Feed();
        iterator = feed;
      } else {
        iterator = toAsyncIterator(source);
      }
    }
    let call: Call | undefined;
    // The core calls this from promise callbacks (the caller's source, the reader leaving): no throw may escape it.
    const core = new StreamCore(kind, method, schemas, iterator, (error) => {
      if (call === undefined) return;
      try {
        this.#failStream(call, error);
      } catch (crash) {
        call.tunnel?.destroy(new RpcError('INTERNAL', `ending ${method} failed inside the client; the tunnel was closed`, undefined, { cause: crash }));
      }
    });
    const result = this.#start(false, method, params, { ...options, idempotent: false }, core, (made) => (call = made));
    const finish = (reason: RpcError | undefined): void => {
      try {
        if (reason !== undefined) feed?.close(reason);
        core.finish(reason);
      } catch {
        // finish only settles local iterators; there is nothing left to tell.
      }
    };
    result.then(
      () => finish(undefined),
      (error: unknown) => finish(RpcError.from(error, 'UNKNOWN')),
    );
    return new StreamCall(core, result, feed, () => {
      if (call !== undefined) this.#failStream(call, new RpcError('CANCELLED', `${method} was cancelled by the caller`, { mayHaveRun: true }));
    });
  }

  // A stream ends early on our side (reader left, invalid message, source threw, cancel()): the server is told
  // with a cancel, and the call fails with `error`.
  #failStream(call: Call, error: RpcError): void {
    if (call.settled) return;
    const tunnel = call.tunnel;
    if (tunnel !== undefined) tunnel.abandon(call);
    else this.#queue = this.#queue.filter((queued) => queued !== call);
    if (settleCall(call)) call.reject(error);
  }

  // Checks a call's arguments locally, so that a bad one fails that call alone and never reaches the server (which
  // would treat it as a violation and close the tunnel under every other call), then sends or queues it.
  #start(notification: boolean, method: string, params: unknown, options: CallOptions & NotifyOptions, stream?: StreamCore, made?: (call: Call) => void): Promise<unknown> {
    if (typeof method !== 'string') {
      // A non-string method is a violation on the wire (PROTOCOL.md 5.1): it would close the tunnel.
      return Promise.reject(new RpcError('INVALID_ARGUMENT', `the method of a ${notification ? 'notification' : 'call'} must be a string such as "Service.method"; got ${typeof method}`, { mayHaveRun: false }));
    }
    const what = notification ? `notification ${method}` : method;
    if (this.#state !== 'open') {
      const why = this.#closeReason === undefined ? `close() was called on the client for ${this.#target.display}` : `the tunnel to ${this.#target.display} is closed (${this.#closeReason.message})`;
      return Promise.reject(new RpcError('UNAVAILABLE', `${what} not sent: ${why}; connect again`, { mayHaveRun: false }));
    }
    const timeout = checkTimeout(what, options.timeout ?? this.#options.defaultTimeout);
    if (timeout instanceof RpcError) return Promise.reject(timeout);
    const headers = checkHeaders(what, options.headers, this.#options);
    if (headers instanceof RpcError) return Promise.reject(headers);
    const signal = options.signal;
    if (signal?.aborted === true) {
      return Promise.reject(new RpcError('CANCELLED', `${what} not sent: its AbortSignal was aborted already`, { mayHaveRun: false }, { cause: signal.reason }));
    }
    if (!(options.waitForReady ?? this.#options.waitForReady) && this.#tunnel?.accepting !== true) {
      const last = this.#lastDialError === undefined ? '' : ` (last dial error: ${this.#lastDialError.message})`;
      return Promise.reject(
        new RpcError('UNAVAILABLE', `${what} not sent: no tunnel to ${this.#target.display} is open and waitForReady is false${last}; retry later or let it wait (waitForReady: true)`, { mayHaveRun: false }),
      );
    }
    if (this.#load() >= this.#options.maxPendingCalls) {
      return Promise.reject(
        new RpcError('RESOURCE_EXHAUSTED', `${what} not sent: ${this.#options.maxPendingCalls} calls are waiting for answers (maxPendingCalls); slow down or raise the limit`, { mayHaveRun: false }),
      );
    }
    const now = Date.now();
    return new Promise((resolve, reject) => {
      const call: Call = {
        notification,
        method,
        params,
        headers,
        deadline: now + timeout,
        idempotent: options.idempotent === true,
        resolve,
        reject,
        signal,
        onAbort: undefined,
        deadlineGroup: undefined,
        attempts: 0,
        mayHaveRun: false,
        tunnel: undefined,
        id: 0,
        settled: false,
        stream,
        expire: this.#expire,
      };
      made?.(call);
      callDeadlines.arm(call, timeout, now);
      if (signal !== undefined) {
        // AbortSignal.timeout() aborts with a TimeoutError: that is a deadline, not a cancel.
        call.onAbort = () => {
          const reason = RpcError.from(signal.reason, 'CANCELLED');
          const code = reason.code === 'DEADLINE_EXCEEDED' ? 'DEADLINE_EXCEEDED' : 'CANCELLED';
          this.#giveUp(call, code, `${what} was ${code === 'CANCELLED' ? 'cancelled' : 'timed out'} by its AbortSignal`, signal.reason);
        };
        signal.addEventListener('abort', call.onAbort, { once: true });
      }
      this.#dispatch(call, timeout);
    });
  }

  /**
   * close ends the client gracefully: no new calls, calls waiting for a tunnel fail unsent, a goaway goes to the
   * server, and the socket closes once every sent call has its answer (each still bounded by its deadline).
   * A dial in progress is aborted (its socket destroyed, its timers cleared). Resolves when every tunnel is closed;
   * it always settles.
   */
  close(): Promise<void> {
    if (this.#state === 'open') {
      this.#state = 'closing';
      clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = undefined;
      this.#dialAbort?.abort();
      const queued = this.#queue;
      this.#queue = [];
      for (const call of queued) failCall(call, 'UNAVAILABLE', `${call.method} not sent: close() was called on the client`, call.mayHaveRun);
      this.#tunnel?.close();
      for (const tunnel of this.#draining) tunnel.close();
      this.#finishCloseIfDone();
    }
    return this.#closed.then(() => undefined);
  }

  #load(): number {
    let load = this.#queue.length + (this.#tunnel?.load ?? 0);
    for (const tunnel of this.#draining) load += tunnel.load;
    return load;
  }

  // Sends a call on the current tunnel, or queues it until one opens. A call sent at once carries its whole
  // timeout; a queued one what is left of it.
  #dispatch(call: Call, timeout?: number): void {
    const tunnel = this.#tunnel;
    if (tunnel === undefined || !tunnel.accepting) {
      if (!this.#options.reconnect && !this.#dialing) {
        failCall(call, 'UNAVAILABLE', `${call.method} not sent: the server is shutting down this tunnel (goaway) and reconnect is off; connect again to ${this.#target.display}`, call.mayHaveRun);
        return;
      }
      this.#queue.push(call);
      this.#ensureDialing();
      return;
    }
    // A server that does not read slows the caller down instead of growing our buffers: calls wait, in order,
    // until the socket drains (bounded by their deadlines and maxPendingCalls).
    if (this.#queue.length > 0 || tunnel.unsentBytes > this.#options.maxWriteBuffer) {
      this.#queue.push(call);
      return;
    }
    this.#sendOn(tunnel, call, timeout);
  }

  #sendOn(tunnel: Tunnel, call: Call, timeout?: number): void {
    const refused = call.notification ? tunnel.notify(call) : tunnel.send(call, timeout);
    if (refused !== undefined && settleCall(call)) call.reject(refused);
  }

  // Sends waiting calls, oldest first, while the current tunnel takes them.
  #flushQueue(): void {
    const tunnel = this.#tunnel;
    if (tunnel === undefined || !tunnel.accepting) return;
    let sent = 0;
    while (sent < this.#queue.length && tunnel.unsentBytes <= this.#options.maxWriteBuffer) {
      const call = this.#queue[sent++]!;
      if (call.settled) continue;
      this.#sendOn(tunnel, call);
    }
    this.#queue = this.#queue.slice(sent);
  }

  // The caller stops waiting (deadline or abort). A call on a tunnel is cancelled there and may have run.
  #giveUp(call: Call, code: 'DEADLINE_EXCEEDED' | 'CANCELLED', message: string, cause?: unknown): void {
    if (call.settled) return;
    const tunnel = call.tunnel;
    if (tunnel !== undefined) {
      tunnel.abandon(call);
      failCall(call, code, `${message}; it may have run on the server`, true, cause);
      return;
    }
    this.#queue = this.#queue.filter((queued) => queued !== call);
    const waiting = this.#lastDialError === undefined ? '' : ` while no tunnel was open (last dial error: ${this.#lastDialError.message})`;
    const ran = call.mayHaveRun ? '; an earlier attempt may have run on the server' : '; it did not run';
    failCall(call, code, `${message}${waiting}${ran}`, call.mayHaveRun, cause);
  }

  #onDraining(tunnel: Tunnel, refused: Call[]): void {
    if (this.#tunnel === tunnel) {
      this.#lostCurrent(tunnel);
      this.#draining.add(tunnel);
    }
    for (const call of refused) this.#retryOrFail(call, undefined, true);
    this.#ensureDialing();
  }

  #onEnded(tunnel: Tunnel, reason: RpcError | undefined, orphans: Call[], refused: Call[]): void {
    if (this.#emit !== undefined) {
      const socket = this.#sockets.get(tunnel);
      this.#emit({
        type: 'disconnected',
        target: this.#target.display,
        reason: reason?.message ?? 'the tunnel closed',
        code: reason?.code,
        bytesIn: socket?.bytesRead ?? 0,
        bytesOut: socket?.bytesWritten ?? 0,
      });
    }
    if (this.#tunnel === tunnel) this.#lostCurrent(tunnel);
    this.#draining.delete(tunnel);
    for (const call of orphans) this.#retryOrFail(call, reason, false);
    // Above the lastId of a closing goaway: not run, but not re-sent either, since one of them may be the frame
    // that broke the server's limits and would break the next tunnel the same way.
    for (const call of refused) {
      const why = reason?.message ?? `the tunnel to ${this.#target.display} closed`;
      failCall(call, 'UNAVAILABLE', `${call.method} failed: ${why}; the server had not taken it, so it did not run`, call.mayHaveRun, reason);
    }
    if (this.#state === 'closing') {
      this.#finishCloseIfDone();
      return;
    }
    if (!this.#options.reconnect) {
      if (this.#tunnel === undefined && this.#draining.size === 0) {
        this.#finish(reason ?? new RpcError('UNAVAILABLE', `the server at ${this.#target.display} shut this tunnel down (goaway) and reconnect is off`));
      }
      return;
    }
    this.#ensureDialing();
  }

  // A call whose tunnel went away: re-send it when it surely did not run, or when it is idempotent and has tries
  // left; otherwise it fails saying it may have run.
  #retryOrFail(call: Call, reason: RpcError | undefined, surelyNotRun: boolean): void {
    if (call.settled) return;
    const retry =
      this.#state === 'open' &&
      this.#options.reconnect &&
      call.deadline > Date.now() &&
      // A stream is never re-sent once a message has crossed (its source cannot be replayed, its reader has read).
      call.stream?.delivered !== true &&
      (surelyNotRun || (call.idempotent && call.attempts <= this.#options.maxRetries));
    if (!surelyNotRun) call.mayHaveRun = true;
    if (retry) {
      this.#queue.push(call);
      return;
    }
    if (surelyNotRun) {
      failCall(call, 'UNAVAILABLE', `${call.method} was not run: the server is shutting down (goaway) and did not take it; safe to retry on a new connection to ${this.#target.display}`, call.mayHaveRun);
      return;
    }
    const why = reason?.message ?? `the tunnel to ${this.#target.display} closed`;
    failCall(call, 'UNAVAILABLE', `${call.method} failed: ${why}; it may have run on the server`, true, reason);
  }

  // The current tunnel stops taking calls (goaway, loss, violation). The backoff is reset only by a tunnel that
  // achieved something (answered a call or a ping, or stayed up maxReconnectDelay ms), not by a handshake: a
  // server that accepts and then drops every tunnel at once gets the growing delay, from the first redial on.
  #lostCurrent(tunnel: Tunnel): void {
    this.#tunnel = undefined;
    if (tunnel.proved(this.#options.maxReconnectDelay)) this.#failedDials = 0;
    else this.#failedDials++;
  }

  #ensureDialing(): void {
    if (this.#state !== 'open' || !this.#options.reconnect || this.#dialing || this.#reconnectTimer !== undefined) return;
    if (this.#tunnel?.accepting === true) return;
    const delay = this.#failedDials === 0 ? 0 : this.#backoff(this.#failedDials);
    this.#emit?.({ type: 'reconnecting', target: this.#target.display, attempt: this.#failedDials + 1, delay });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#redial();
    }, delay);
    this.#reconnectTimer.unref();
  }

  // Exponential backoff with equal jitter: half the delay fixed, half random, so clients spread out.
  #backoff(failures: number): number {
    const { minReconnectDelay, maxReconnectDelay } = this.#options;
    const ceiling = Math.min(maxReconnectDelay, minReconnectDelay * 2 ** Math.min(failures - 1, 30));
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  #redial(): void {
    this.#dialing = true;
    const abort = new AbortController();
    this.#dialAbort = abort;
    dial(this.#target, this.#options, abort.signal).then(
      (dialed) => {
        this.#dialing = false;
        this.#dialAbort = undefined;
        if (this.#state !== 'open') {
          dialed.socket.destroy();
          return;
        }
        this.#lastDialError = undefined;
        this.#adopt(dialed);
      },
      (error: unknown) => {
        this.#dialing = false;
        this.#dialAbort = undefined;
        if (this.#state !== 'open') return;
        this.#failedDials++;
        const rpc = RpcError.from(error, 'UNAVAILABLE');
        this.#lastDialError = rpc;
        if (!this.#options.reconnect) {
          // A background first dial (createRpcClient) with reconnect off: no second try, the client is done.
          this.#finish(rpc);
          return;
        }
        if (PERMANENT_REFUSALS.has(rpc.code)) {
          const queued = this.#queue;
          this.#queue = [];
          for (const call of queued) {
            failCall(call, rpc.code, `${call.method} not sent: ${rpc.message}`, call.mayHaveRun, rpc);
          }
        }
        this.#ensureDialing();
      },
    ).catch((error: unknown) => {
      // A bug in the code above must not become an unhandled rejection: count it as a failed dial and go on.
      this.#dialing = false;
      this.#lastDialError = RpcError.from(error, 'INTERNAL');
      this.#ensureDialing();
    });
  }

  // Stores a new tunnel as the current one, then starts it: the frames that came with its 200 head may end it at
  // once, and its ended callbacks must find it stored (issue 7: an ended tunnel never becomes the current one).
  #adopt(dialed: Dialed): void {
    const tunnel = new Tunnel(dialed.socket, dialed.rest, this.#options, this.#target.display, this.#host);
    this.#tunnel = tunnel;
    if (this.#emit !== undefined) {
      this.#sockets.set(tunnel, dialed.socket);
      this.#emit({ type: 'connected', target: this.#target.display, address: dialed.socket.remoteAddress, port: dialed.socket.remotePort });
    }
    tunnel.start();
    if (this.#tunnel === tunnel && tunnel.ended) this.#lostCurrent(tunnel);
    this.#flushQueue();
  }

  #finishCloseIfDone(): void {
    if (this.#tunnel?.ended === true) this.#tunnel = undefined;
    for (const tunnel of this.#draining) if (tunnel.ended) this.#draining.delete(tunnel);
    if (this.#tunnel === undefined && this.#draining.size === 0) this.#finish(undefined);
  }

  #finish(reason: RpcError | undefined): void {
    if (this.#state === 'closed') return;
    this.#closeReason = reason ?? (this.#state === 'closing' ? new RpcError('UNAVAILABLE', 'close() was called') : undefined);
    this.#state = 'closed';
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#dialAbort?.abort();
    const queued = this.#queue;
    this.#queue = [];
    const why = reason === undefined ? '' : ` (${reason.message})`;
    for (const call of queued) failCall(call, 'UNAVAILABLE', `${call.method} not sent: the client for ${this.#target.display} is closed${why}`, call.mayHaveRun, reason);
    this.#resolveClosed(reason);
  }
}

function toAsyncIterator(source: AsyncIterable<unknown> | Iterable<unknown>): AsyncIterator<unknown> {
  if (typeof (source as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') return (source as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  if (typeof (source as Iterable<unknown> | null)?.[Symbol.iterator] !== 'function') {
    throw new RpcError('INVALID_ARGUMENT', 'the messages of a client or bidi stream must be an AsyncIterable or an Iterable', { mayHaveRun: false });
  }
  const iterator = (source as Iterable<unknown>)[Symbol.iterator]();
  return {
    next: () => Promise.resolve(iterator.next()),
    return: () => Promise.resolve(iterator.return?.() ?? { value: undefined, done: true }),
  };
}

// A call's timeout in whole ms, or the error that fails it: NaN or a non-number is a caller's bug
// (INVALID_ARGUMENT); zero or less is a deadline already passed, as in `ctx.deadline - Date.now()` (DEADLINE_EXCEEDED,
// unsent); a fraction is rounded up, and anything past setTimeout's ceiling is clamped to it.
function checkTimeout(what: string, timeout: unknown): number | RpcError {
  if (typeof timeout !== 'number' || Number.isNaN(timeout)) {
    return new RpcError('INVALID_ARGUMENT', `timeout of ${what} must be a number of ms; got ${typeof timeout === 'number' ? 'NaN' : typeof timeout}`, { mayHaveRun: false });
  }
  if (timeout <= 0) {
    return new RpcError('DEADLINE_EXCEEDED', `${what} not sent: its deadline had passed already (timeout ${timeout} ms); it did not run`, { mayHaveRun: false });
  }
  return Math.min(Math.ceil(timeout), MAX_TIMER_MS);
}

// A call's headers as sent (names in lower case), or the error that fails that call alone: everything the server
// would refuse as a violation or a limit is caught here, before a byte is written (issue 8).
function checkHeaders(what: string, headers: unknown, options: ResolvedClientOptions): Record<string, string> | undefined | RpcError {
  if (headers === undefined) return undefined;
  const bad = (why: string): RpcError => new RpcError('INVALID_ARGUMENT', `${what} not sent: ${why}`, { mayHaveRun: false });
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) return bad('headers must be a plain object of string names to string values');
  const proto: unknown = Object.getPrototypeOf(headers);
  if (proto !== Object.prototype && proto !== null) return bad('headers must be a plain object of string names to string values (not a Map, Headers or class instance)');
  const names = Object.keys(headers);
  if (names.length > options.maxHeaderCount) {
    return bad(`${names.length} headers exceed maxHeaderCount ${options.maxHeaderCount}; send fewer or raise maxHeaderCount on both peers`);
  }
  const out: Record<string, string> = {};
  let bytes = 0;
  for (const name of names) {
    let value: unknown;
    try {
      value = (headers as Record<string, unknown>)[name];
    } catch (error) {
      return bad(`reading header ${JSON.stringify(name.slice(0, 64))} threw (${error instanceof Error ? error.message : String(error)})`);
    }
    if (typeof value !== 'string') return bad(`header ${JSON.stringify(name.slice(0, 64))} is a ${value === null ? 'null' : typeof value}; header values must be strings`);
    const lower = lowerCaseHeaderName(name);
    if (Object.hasOwn(out, lower)) return bad(`headers hold ${JSON.stringify(lower.slice(0, 64))} twice when names are compared in lower case, as HTTP does; keep one`);
    bytes += Buffer.byteLength(lower, 'utf8') + Buffer.byteLength(value, 'utf8');
    if (bytes > options.maxHeaderBytes) {
      return bad(`headers exceed maxHeaderBytes ${options.maxHeaderBytes} (names and values, UTF-8); send less or raise maxHeaderBytes on both peers`);
    }
    // defineProperty: a name such as "__proto__" is an ordinary header, never the object's prototype.
    Object.defineProperty(out, lower, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
