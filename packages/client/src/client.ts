/**
 * RpcClient: many concurrent calls multiplexed over the tunnels of a pool (one URL: one tunnel), answered in any
 * order, with redials after a loss.
 * Every call ends: answered, or failed with an RpcError whose code says why and whose data says whether it may
 * have run. Calls that surely did not run, and idempotent ones, are re-sent on another tunnel (another endpoint
 * when the pool has one) within their deadline; calls made while there is no tunnel wait for one, bounded by their
 * deadline.
 *
 * Over 400 lines: RpcClient is one state machine (its queue, close and the hand-off of calls between tunnels) whose
 * methods share private state; its argument checks and retry rules already live in call-arguments.ts and retries.ts.
 */
import { RpcError, type StreamKind } from '@tunnelrpc/protocol';
import { NO_RESOLVER, callDeadlines, failCall, promiseFor, rejectCall, type Call } from './call.js';
import { checkHeaders, checkMethod, checkTimeout, toAsyncIterator } from './call-arguments.js';
import type { CallOptions, NotifyOptions, StreamOptions } from './call-options.js';
import type { EndpointSnapshot } from './endpoint.js';
import { CallLayer } from './interceptors.js';
import { ClientObservation } from './observation.js';
import { checkCallFlags, type ResolvedClientOptions } from './options.js';
import { Pool, type PoolHost } from './pool.js';
import { failUnresent, mayResend } from './retries.js';
import { Feed, StreamCall, StreamCore, type StreamSchemas } from './stream.js';
import type { DialTarget } from './target.js';

const NO_OPTIONS: CallOptions = Object.freeze({});

/**
 * firstTunnel resolves once a client's first tunnel is open; rejects with the dial error (closing the client) when
 * every endpoint failed its first try. connect() awaits it. @internal
 */
export let firstTunnel: (client: RpcClient) => Promise<void>;

/** RpcClient sends calls and notifications to one server, or spreads them over several. Create it with connect(). */
export class RpcClient {
  readonly #options: ResolvedClientOptions;
  readonly #display: string;
  // The endpoints and their tunnels; it picks the tunnel of each call, the client decides retries.
  readonly #pool: Pool;
  // Interceptors and ambient deadlines, above queueing, redials and retries: they see each call once.
  readonly #layer: CallLayer;
  // ClientOptions.observers; undefined without them (the stage then costs nothing).
  readonly #observation: ClientObservation | undefined;
  // Calls waiting for a tunnel, oldest first.
  #queue: Call[] = [];
  #state: 'open' | 'closing' | 'closed' = 'open';
  #closeReason: RpcError | undefined;
  // Why the last tunnel ended: with reconnect off, the reason the client is done.
  #lastEndReason: RpcError | undefined;
  readonly #closed: Promise<RpcError | undefined>;
  #resolveClosed!: (reason: RpcError | undefined) => void;

  // One function per client, shared by its calls, for when a call's deadline passes.
  readonly #expire = (call: Call, timeout: number): void => {
    this.#giveUp(call, 'DEADLINE_EXCEEDED', `${call.method} passed its deadline of ${timeout} ms`);
  };

  static {
    firstTunnel = async (client) => {
      try {
        await client.#pool.ready();
      } catch (error) {
        await client.close();
        throw error;
      }
    };
  }

  /** @internal Use connect() or createRpcClient(): the client dials every endpoint in the background. */
  constructor(options: ResolvedClientOptions, targets: readonly DialTarget[]) {
    this.#options = options;
    this.#display = targets.map((target) => target.display).join(', ');
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#observation = options.observers.length === 0 ? undefined : new ClientObservation(options.observers);
    this.#layer = new CallLayer(
      (notification, method, params, callOptions) => this.#start(notification, method, params, callOptions),
      options.interceptors,
      options.defaultTimeout,
      options.deadlineMargin,
      this.#display,
    );
    const host: PoolHost = {
      tunnelReady: () => this.#flushQueue(),
      tunnelDraining: (refused) => this.#onDraining(refused),
      tunnelEnded: (reason, orphans, refused, url) => this.#onEnded(reason, orphans, refused, url),
      dialFailed: (error) => this.#onDialFailed(error),
      poolClosed: () => this.#onPoolClosed(),
      attemptTimedOut: (call) => {
        this.#retryOrFail(call, undefined, false);
        this.#flushQueue();
      },
    };
    this.#pool = new Pool(targets, options, host);
    this.#pool.start();
  }

  /** target is the URL this client dials (the URLs, comma-separated, for a pool of several). */
  get target(): string {
    return this.#display;
  }

  /**
   * endpoints says what each endpoint is doing: one entry per URL, or per address a host name resolved to, each
   * with its state (connecting, ready, draining, ejected, closed), open tunnels, outstanding calls, calls sent,
   * failures and ejections. A frozen snapshot: read it again to see changes.
   */
  get endpoints(): readonly EndpointSnapshot[] {
    return this.#pool.snapshot();
  }

  /** pendingCalls counts calls not yet settled: waiting for a tunnel or for their answer. */
  get pendingCalls(): number {
    return this.#queue.length + this.#pool.callCount;
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
    // A stream ended on our side while client interceptors still hold its opening: it is never sent.
    let endedEarly: RpcError | undefined;
    const end = (error: RpcError): void => {
      if (call === undefined) endedEarly ??= error;
      else this.#failStream(call, error);
    };
    // The core calls this from promise callbacks (the caller's source, the reader leaving): no throw may escape it.
    const core = new StreamCore(kind, method, schemas, iterator, (error) => {
      try {
        end(error);
      } catch (crash) {
        call?.tunnel?.destroy(new RpcError('INTERNAL', `ending ${method} failed inside the client; the tunnel was closed`, undefined, { cause: crash }));
      }
    });
    const result = this.#layer.runStream(method, params, kind, { ...options, idempotent: false }, (watcher) => core.watch(watcher), (opening, effective) => {
      if (endedEarly !== undefined) return Promise.reject(endedEarly);
      return this.#start(false, method, opening, effective, core, (made) => (call = made));
    });
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
    return new StreamCall(core, result, feed, () => end(new RpcError('CANCELLED', `${method} was cancelled by the caller`, { mayHaveRun: true })));
  }

  // A stream ends early on our side (reader left, invalid message, source threw, cancel()): the server is told
  // with a cancel, and the call fails with `error`.
  #failStream(call: Call, error: RpcError): void {
    if (call.settled) return;
    const tunnel = call.tunnel;
    if (tunnel !== undefined) tunnel.abandon(call);
    else this.#queue = this.#queue.filter((queued) => queued !== call);
    rejectCall(call, error);
  }

  // Checks a call's arguments locally, so that a bad one fails that call alone and never reaches the server (which
  // would treat it as a violation and close the tunnel under every other call), then sends or queues it.
  #start(notification: boolean, method: string, params: unknown, options: CallOptions & NotifyOptions, stream?: StreamCore, made?: (call: Call) => void): Promise<unknown> {
    const badMethod = checkMethod(notification, method);
    if (badMethod !== undefined) return Promise.reject(badMethod);
    const what = notification ? `notification ${method}` : method;
    if (this.#state !== 'open') {
      const why = this.#closeReason === undefined ? `close() was called on the client for ${this.#display}` : `the tunnel to ${this.#display} is closed (${this.#closeReason.message})`;
      return Promise.reject(new RpcError('UNAVAILABLE', `${what} not sent: ${why}; connect again`, { mayHaveRun: false }));
    }
    const timeout = checkTimeout(what, options.timeout ?? this.#options.defaultTimeout);
    if (timeout instanceof RpcError) return Promise.reject(timeout);
    const headers = checkHeaders(what, options.headers, this.#options);
    if (headers instanceof RpcError) return Promise.reject(headers);
    const badFlag = checkCallFlags(what, options);
    if (badFlag !== undefined) return Promise.reject(badFlag);
    const signal = options.signal;
    if (signal?.aborted === true) {
      return Promise.reject(new RpcError('CANCELLED', `${what} not sent: its AbortSignal was aborted already`, { mayHaveRun: false }, { cause: signal.reason }));
    }
    if (!(options.waitForReady ?? this.#options.waitForReady) && !this.#pool.hasAccepting) {
      const lastError = this.#pool.lastError;
      const last = lastError === undefined ? '' : ` (last dial error: ${lastError.message})`;
      return Promise.reject(
        new RpcError('UNAVAILABLE', `${what} not sent: no tunnel to ${this.#display} is open and waitForReady is false${last}; retry later or let it wait (waitForReady: true)`, { mayHaveRun: false }),
      );
    }
    if (this.#load() >= this.#options.maxPendingCalls) {
      return Promise.reject(
        new RpcError('RESOURCE_EXHAUSTED', `${what} not sent: ${this.#options.maxPendingCalls} calls are waiting for answers (maxPendingCalls); slow down or raise the limit`, { mayHaveRun: false }),
      );
    }
    const now = Date.now();
    // The one record of the call: the tunnel, the deadline timers and the pool hold it, and it lets go of
    // everything when it settles (call.ts).
    const call: Call = {
      notification,
      method,
      params,
      headers,
      deadline: now + timeout,
      idempotent: options.idempotent === true,
      resolve: NO_RESOLVER,
      reject: NO_RESOLVER,
      signal,
      onAbort: undefined,
      deadlineGroup: undefined,
      deadlineSlot: 0,
      attempts: 0,
      sentAt: 0,
      mayHaveRun: false,
      tunnel: undefined,
      id: 0,
      settled: false,
      stream,
      expire: this.#expire,
      observers: undefined,
      observedMethod: undefined,
      observedAt: 0,
    };
    const promise = promiseFor(call);
    try {
      this.#observation?.begin(call, stream);
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
    } catch (error) {
      // What the promise's executor did before: a throw here fails this call, never the caller's stack.
      rejectCall(call, RpcError.from(error, 'INTERNAL'));
    }
    return promise;
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
      const queued = this.#queue;
      this.#queue = [];
      for (const call of queued) failCall(call, 'UNAVAILABLE', `${call.method} not sent: close() was called on the client`, call.mayHaveRun);
      // Stops dials and resolutions, closes every tunnel gracefully; poolClosed finishes the client.
      this.#pool.close();
    }
    return this.#closed.then(() => undefined);
  }

  #load(): number {
    return this.#queue.length + this.#pool.load;
  }

  // Sends a call on the tunnel the pool picks, or queues it until one opens. A call sent at once carries its whole
  // timeout; a queued one what is left of it.
  #dispatch(call: Call, timeout?: number): void {
    if (!this.#pool.hasAccepting) {
      if (!this.#pool.canOpen) {
        failCall(call, 'UNAVAILABLE', `${call.method} not sent: the server is shutting down this tunnel (goaway) and reconnect is off; connect again to ${this.#display}`, call.mayHaveRun);
        return;
      }
      this.#queue.push(call);
      return;
    }
    // A server that does not read slows the caller down instead of growing our buffers: calls wait, in order,
    // until a socket drains (bounded by their deadlines and maxPendingCalls).
    if (this.#queue.length > 0 || !this.#sendOn(call, timeout)) this.#queue.push(call);
  }

  // false when no tunnel takes the call now (it stays unsettled, for the caller to queue).
  #sendOn(call: Call, timeout?: number): boolean {
    const refused = this.#pool.trySend(call, timeout);
    if (refused === false) return false;
    if (refused !== undefined) rejectCall(call, refused);
    return true;
  }

  // Sends waiting calls, oldest first, while some tunnel takes them.
  #flushQueue(): void {
    if (this.#state !== 'open') return;
    let sent = 0;
    while (sent < this.#queue.length) {
      const call = this.#queue[sent]!;
      if (!call.settled && !this.#sendOn(call)) break;
      sent++;
    }
    if (sent > 0) this.#queue = this.#queue.slice(sent);
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
    const lastError = this.#pool.hasAccepting ? undefined : this.#pool.lastError;
    const waiting = lastError === undefined ? '' : ` while no tunnel was open (last dial error: ${lastError.message})`;
    const ran = call.mayHaveRun ? '; an earlier attempt may have run on the server' : '; it did not run';
    failCall(call, code, `${message}${waiting}${ran}`, call.mayHaveRun, cause);
  }

  // A goaway: the calls it refused go to another tunnel (the draining one takes no new calls).
  #onDraining(refused: Call[]): void {
    for (const call of refused) this.#retryOrFail(call, undefined, true);
    this.#flushQueue();
  }

  #onEnded(reason: RpcError | undefined, orphans: Call[], refused: Call[], url: string): void {
    this.#lastEndReason = reason ?? this.#lastEndReason;
    for (const call of orphans) this.#retryOrFail(call, reason, false, url);
    // Above the lastId of a closing goaway: not run, but not re-sent either, since one of them may be the frame
    // that broke the server's limits and would break the next tunnel the same way.
    for (const call of refused) {
      const why = reason?.message ?? `the tunnel to ${url} closed`;
      failCall(call, 'UNAVAILABLE', `${call.method} failed: ${why}; the server had not taken it, so it did not run`, call.mayHaveRun, reason);
    }
    this.#flushQueue();
  }

  // A dial or resolution failed. When every endpoint refuses in a way another try will not fix (401, 403, 404),
  // the calls waiting for a tunnel fail with that refusal's code at once.
  #onDialFailed(_error: RpcError): void {
    if (this.#state !== 'open') return;
    const refusal = this.#pool.permanentRefusal();
    if (refusal === undefined) return;
    const queued = this.#queue;
    this.#queue = [];
    for (const call of queued) failCall(call, refusal.code, `${call.method} not sent: ${refusal.message}`, call.mayHaveRun, refusal);
  }

  // Every endpoint is closed: after close(), or with reconnect off once every tunnel is gone.
  #onPoolClosed(): void {
    if (this.#state === 'closing') {
      this.#finish(undefined);
      return;
    }
    this.#finish(this.#lastEndReason ?? this.#pool.lastError ?? new RpcError('UNAVAILABLE', `the server at ${this.#display} shut this tunnel down (goaway) and reconnect is off`));
  }

  // A call whose tunnel went away: re-send it when retries.ts allows, else it fails saying whether it may have run.
  #retryOrFail(call: Call, reason: RpcError | undefined, surelyNotRun: boolean, url = this.#display): void {
    if (call.settled) return;
    const canSend = this.#state === 'open' && (this.#options.reconnect || this.#pool.hasAccepting);
    const retry = canSend && mayResend(call, surelyNotRun, this.#options.maxRetries);
    if (!surelyNotRun) call.mayHaveRun = true;
    if (retry) {
      this.#queue.push(call);
      return;
    }
    failUnresent(call, reason, surelyNotRun, this.#display, url);
  }

  #finish(reason: RpcError | undefined): void {
    if (this.#state === 'closed') return;
    this.#closeReason = reason ?? (this.#state === 'closing' ? new RpcError('UNAVAILABLE', 'close() was called') : undefined);
    this.#state = 'closed';
    this.#pool.close();
    const queued = this.#queue;
    this.#queue = [];
    const why = reason === undefined ? '' : ` (${reason.message})`;
    for (const call of queued) failCall(call, 'UNAVAILABLE', `${call.method} not sent: the client for ${this.#display} is closed${why}`, call.mayHaveRun, reason);
    this.#resolveClosed(reason);
  }
}
