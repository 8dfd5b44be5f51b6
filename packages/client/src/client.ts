/**
 * RpcClient: many concurrent calls multiplexed over one tunnel, answered in any order, with redials after a loss.
 * Every call ends: answered, or failed with an RpcError whose code says why and whose data says whether it may
 * have run. Calls that surely did not run, and idempotent ones, are re-sent on the next tunnel within their
 * deadline; calls made while there is no tunnel wait for one, bounded by their deadline.
 */
import { MessageType, RpcError, encodePayload, frameTooLarge } from '@tunnelrpc/protocol';
import { callDeadlines, failCall, settleCall, type Call } from './call.js';
import { dial, type Dialed } from './dial.js';
import type { ResolvedClientOptions } from './options.js';
import type { DialTarget } from './target.js';
import { Tunnel, type TunnelHost } from './tunnel.js';

/** CallOptions tune one call. */
export interface CallOptions {
  /** Deadline in ms from now; the server gets what is left of it as meta.timeout. Default: defaultTimeout. */
  timeout?: number;
  /** Aborting it fails the call with CANCELLED and sends a cancel to the server. */
  signal?: AbortSignal;
  /** Headers for the handler (ctx.headers): trace ids, per-call credentials. */
  headers?: Record<string, string>;
  /**
   * The method is safe to run twice: after a lost tunnel the call is re-sent (up to maxRetries) instead of failing
   * with "may have run". The typed client sets it from the contract. Default false.
   */
  idempotent?: boolean;
}

/** NotifyOptions tune one notification. */
export interface NotifyOptions {
  /** Headers for the handler (ctx.headers). */
  headers?: Record<string, string>;
}

/** CallFailure says, in every locally made error's `data`, whether the server may have run the call. */
export interface CallFailure {
  /** False when the call surely did not run (never sent, or refused by a goaway): safe to retry. */
  mayHaveRun: boolean;
}

const NO_OPTIONS: CallOptions = Object.freeze({});

// Dial errors that another try will not fix: calls waiting for a tunnel fail with them at once.
const PERMANENT_REFUSALS: ReadonlySet<string> = new Set(['UNAUTHENTICATED', 'PERMISSION_DENIED', 'UNIMPLEMENTED', 'INVALID_ARGUMENT']);

/** RpcClient sends calls and notifications to one server. Create it with connect(). */
export class RpcClient {
  readonly #options: ResolvedClientOptions;
  readonly #target: DialTarget;
  readonly #host: TunnelHost;
  // The tunnel new calls go to; older ones finish their calls in #draining.
  #tunnel: Tunnel | undefined;
  readonly #draining = new Set<Tunnel>();
  // Calls waiting for a tunnel, oldest first.
  #queue: Call[] = [];
  #state: 'open' | 'closing' | 'closed' = 'open';
  #dialing = false;
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

  /** @internal Use connect(). */
  constructor(dialed: Dialed, options: ResolvedClientOptions, target: DialTarget) {
    this.#options = options;
    this.#target = target;
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#host = {
      tunnelDraining: (tunnel, refused) => this.#onDraining(tunnel, refused),
      tunnelEnded: (tunnel, reason, orphans, refused) => this.#onEnded(tunnel, reason, orphans, refused),
      tunnelWritable: (tunnel) => {
        if (tunnel === this.#tunnel) this.#flushQueue();
      },
    };
    this.#tunnel = new Tunnel(dialed.socket, dialed.rest, options, target.display, this.#host);
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
   * and the call may have run, RESOURCE_EXHAUSTED when too many calls wait.
   */
  call(method: string, params?: unknown, options: CallOptions = NO_OPTIONS): Promise<unknown> {
    if (this.#state !== 'open') {
      const why = this.#closeReason === undefined ? `close() was called on the client for ${this.#target.display}` : `the tunnel to ${this.#target.display} is closed (${this.#closeReason.message})`;
      return Promise.reject(new RpcError('UNAVAILABLE', `${method} not sent: ${why}; connect again`, { mayHaveRun: false }));
    }
    const timeout = options.timeout ?? this.#options.defaultTimeout;
    if (!Number.isInteger(timeout) || timeout < 0 || timeout > 2_147_483_647) {
      return Promise.reject(new RpcError('INVALID_ARGUMENT', `timeout of ${method} must be an integer of ms from 0 to 2147483647; got ${String(timeout)}`));
    }
    if (this.#load() >= this.#options.maxPendingCalls) {
      return Promise.reject(
        new RpcError('RESOURCE_EXHAUSTED', `${method} not sent: ${this.#options.maxPendingCalls} calls are waiting for answers (maxPendingCalls); slow down or raise the limit`, { mayHaveRun: false }),
      );
    }
    const signal = options.signal;
    if (signal?.aborted === true) {
      return Promise.reject(new RpcError('CANCELLED', `${method} not sent: its AbortSignal was aborted already`, { mayHaveRun: false }, { cause: signal.reason }));
    }
    const now = Date.now();
    return new Promise((resolve, reject) => {
      const call: Call = {
        method,
        params,
        headers: options.headers,
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
        expire: this.#expire,
      };
      callDeadlines.arm(call, timeout, now);
      if (signal !== undefined) {
        // AbortSignal.timeout() aborts with a TimeoutError: that is a deadline, not a cancel.
        call.onAbort = () => {
          const reason = RpcError.from(signal.reason, 'CANCELLED');
          const code = reason.code === 'DEADLINE_EXCEEDED' ? 'DEADLINE_EXCEEDED' : 'CANCELLED';
          this.#giveUp(call, code, `${method} was ${code === 'CANCELLED' ? 'cancelled' : 'timed out'} by its AbortSignal`, signal.reason);
        };
        signal.addEventListener('abort', call.onAbort, { once: true });
      }
      this.#dispatch(call, timeout);
    });
  }

  /** notify sends a notification: no answer, no result. Throws RpcError when it cannot be sent now. */
  notify(method: string, params?: unknown, options: NotifyOptions = {}): void {
    const tunnel = this.#tunnel;
    if (this.#state !== 'open' || tunnel === undefined || !tunnel.accepting) {
      const why = this.#state !== 'open' ? 'close() was called on the client' : 'no open tunnel (the last one was lost or got goaway; the client reconnects)';
      throw new RpcError('UNAVAILABLE', `notification ${method} not sent: ${why} (${this.#target.display})`, { mayHaveRun: false });
    }
    let payload: Uint8Array;
    try {
      payload = encodePayload({ type: MessageType.Notification, method, params, ...(options.headers === undefined ? {} : { meta: { headers: options.headers } }) });
    } catch (error) {
      throw new RpcError('INVALID_ARGUMENT', `notification ${method} not sent: ${(error as Error).message}`, undefined, { cause: error });
    }
    if (payload.length > this.#options.maxFrameSize) throw frameTooLarge(payload.length, this.#options.maxFrameSize, 'sent');
    tunnel.notify(payload);
  }

  /**
   * close ends the client gracefully: no new calls, calls waiting for a tunnel fail unsent, a goaway goes to the
   * server, and the socket closes once every sent call has its answer (each still bounded by its deadline).
   * Resolves when every tunnel is closed.
   */
  close(): Promise<void> {
    if (this.#state === 'open') {
      this.#state = 'closing';
      clearTimeout(this.#reconnectTimer);
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
      if (!this.#options.reconnect) {
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
    const refused = tunnel.send(call, timeout);
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
      const refused = tunnel.send(call);
      if (refused !== undefined && settleCall(call)) call.reject(refused);
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
      this.#tunnel = undefined;
      this.#draining.add(tunnel);
    }
    for (const call of refused) this.#retryOrFail(call, undefined, true);
    this.#ensureDialing();
  }

  #onEnded(tunnel: Tunnel, reason: RpcError | undefined, orphans: Call[], refused: Call[]): void {
    if (this.#tunnel === tunnel) this.#tunnel = undefined;
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

  #ensureDialing(): void {
    if (this.#state !== 'open' || !this.#options.reconnect || this.#dialing || this.#reconnectTimer !== undefined) return;
    if (this.#tunnel?.accepting === true) return;
    const delay = this.#failedDials === 0 ? 0 : this.#backoff(this.#failedDials);
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
    dial(this.#target, this.#options).then(
      (dialed) => {
        this.#dialing = false;
        if (this.#state !== 'open') {
          dialed.socket.destroy();
          return;
        }
        this.#failedDials = 0;
        this.#lastDialError = undefined;
        this.#tunnel = new Tunnel(dialed.socket, dialed.rest, this.#options, this.#target.display, this.#host);
        this.#flushQueue();
      },
      (error: unknown) => {
        this.#dialing = false;
        this.#failedDials++;
        const rpc = RpcError.from(error, 'UNAVAILABLE');
        this.#lastDialError = rpc;
        if (PERMANENT_REFUSALS.has(rpc.code)) {
          const queued = this.#queue;
          this.#queue = [];
          for (const call of queued) {
            failCall(call, rpc.code, `${call.method} not sent: ${rpc.message}`, call.mayHaveRun, rpc);
          }
        }
        this.#ensureDialing();
      },
    );
  }

  #finishCloseIfDone(): void {
    if (this.#tunnel === undefined && this.#draining.size === 0) this.#finish(undefined);
  }

  #finish(reason: RpcError | undefined): void {
    if (this.#state === 'closed') return;
    this.#closeReason = reason ?? (this.#state === 'closing' ? new RpcError('UNAVAILABLE', 'close() was called') : undefined);
    this.#state = 'closed';
    clearTimeout(this.#reconnectTimer);
    const queued = this.#queue;
    this.#queue = [];
    for (const call of queued) failCall(call, 'UNAVAILABLE', `${call.method} not sent: the client for ${this.#target.display} is closed`, call.mayHaveRun);
    this.#resolveClosed(reason);
  }
}
