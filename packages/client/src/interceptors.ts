/**
 * The layer above RpcClient's transport: the ambient deadline and cancellation of an inbound call (when a call is
 * made from inside a server handler), then the client's interceptors. It sits above queueing, redials and
 * retries, so an interceptor sees each call once, however many attempts it takes.
 */
import {
  RpcError,
  applyInterceptors,
  type AmbientCall,
  type CallFn,
  type Interceptor,
  type RpcCall,
  type StreamCall,
  type StreamKind,
  type StreamWatcher,
  type UnaryCall,
} from '@tunnelrpc/protocol';
import { ambientCalls, enableAmbientCalls, splitMethod } from '@tunnelrpc/protocol/internal';
import type { CallOptions, NotifyOptions } from './call-options.js';
import { checkCallFlags } from './options.js';

type Options = CallOptions & NotifyOptions;
/** Start sends or queues one call after its arguments are checked (RpcClient's transport). */
type Start = (notification: boolean, method: string, params: unknown, options: Options) => Promise<unknown>;

// The signal of a client call made without one: it never aborts (the deadline is in `deadline`).
const NEVER_ABORTED = new AbortController().signal;

/** CallLayer runs client calls through the ambient call and the interceptors. @internal */
export class CallLayer {
  readonly #start: Start;
  readonly #chain: CallFn | undefined;
  readonly #streamChain: CallFn | undefined;
  readonly #defaultTimeout: number;
  readonly #margin: number;
  readonly #target: string;

  constructor(start: Start, interceptors: readonly Interceptor[], defaultTimeout: number, deadlineMargin: number, target: string) {
    this.#start = start;
    this.#defaultTimeout = defaultTimeout;
    this.#margin = deadlineMargin;
    this.#target = target;
    this.#chain = interceptors.length === 0 ? undefined : applyInterceptors(this.#innermost, interceptors);
    this.#streamChain = interceptors.length === 0 ? undefined : applyInterceptors(innermostStream, interceptors);
    // From now on, servers in this process keep the inbound call where this client's calls can find it.
    enableAmbientCalls();
  }

  /** run starts one call or notification. */
  run(notification: boolean, method: string, params: unknown, options: Options): Promise<unknown> {
    // Before inheritDeadline is read: a string 'false' must fail the call, not inherit.
    const badFlag = flagsAreBooleans(options) ? undefined : checkCallFlags(notification ? `notification ${String(method)}` : String(method), options);
    if (badFlag !== undefined) return Promise.reject(badFlag);
    // The plain call (no interceptors, no inbound call to inherit from) makes no closures on its way.
    if (this.#chain === undefined && ((options as CallOptions).inheritDeadline === false || ambientCalls.getStore() === undefined)) {
      return this.#start(notification, method, params, options);
    }
    return this.#through(this.#chain, notification, method, options, (effective) => this.#start(notification, method, params, effective), (effective, headers, deadline) =>
      new ClientUnaryCall(method, params, headers, effective.signal ?? NEVER_ABORTED, deadline, this.#target, notification, effective),
    );
  }

  /**
   * runStream opens a stream through the ambient call and the interceptors, as run() a call: `open` sends it with
   * the params, headers, deadline and signal the interceptors left, and settles when the stream ends. `watch`
   * hands the interceptors' watchers to the stream.
   */
  runStream(method: string, params: unknown, kind: StreamKind, options: Options, watch: (watcher: StreamWatcher) => void, open: (params: unknown, options: Options) => Promise<unknown>): Promise<unknown> {
    const badFlag = flagsAreBooleans(options) ? undefined : checkCallFlags(String(method), options);
    if (badFlag !== undefined) return Promise.reject(badFlag);
    return this.#through(this.#streamChain, false, method, options, (effective) => open(params, effective), (effective, headers, deadline) =>
      new ClientStreamCall(method, params, headers, effective.signal ?? NEVER_ABORTED, deadline, this.#target, kind, effective, watch, open),
    );
  }

  // The one path of every kind of call: the ambient deadline and signal, then the chain (when there is one) around
  // `send`. Calls #start would refuse for their arguments go straight to it: interceptors see only calls that can
  // be sent.
  #through(chain: CallFn | undefined, notification: boolean, method: string, options: Options, send: (effective: Options) => Promise<unknown>, make: (effective: Options, headers: Record<string, string>, deadline: number) => RpcCall): Promise<unknown> {
    const ambient = (options as CallOptions).inheritDeadline === false ? undefined : ambientCalls.getStore();
    let effective = options;
    const now = Date.now();
    if (ambient !== undefined) {
      const inherited = this.#inherit(ambient, now, notification, method, options);
      if (inherited instanceof RpcError) return Promise.reject(inherited);
      effective = inherited;
    }
    if (chain === undefined) return send(effective);
    const timeout = effective.timeout ?? this.#defaultTimeout;
    const headers = effective.headers;
    if (typeof method !== 'string' || typeof timeout !== 'number' || !(timeout > 0) || !isPlainRecord(headers)) return send(effective);
    let outcome: Promise<unknown>;
    try {
      outcome = chain(make(effective, { ...headers }, now + timeout));
    } catch (error) {
      return Promise.reject(interceptorFailure(method, error));
    }
    // RpcError is the only error a call rejects with: an interceptor's own bug becomes INTERNAL, the throw its cause.
    return outcome.then(undefined, (error: unknown) => {
      throw interceptorFailure(method, error);
    });
  }

  // What is left of the inbound deadline, less the margin, and the inbound signal joined with the caller's.
  #inherit(ambient: AmbientCall, now: number, notification: boolean, method: string, options: Options): Options | RpcError {
    const left = ambient.deadline - now - this.#margin;
    const what = notification ? `notification ${String(method)}` : String(method);
    if (left <= 0) {
      return new RpcError(
        'DEADLINE_EXCEEDED',
        `${what} not sent: the deadline it inherits from ${ambient.method} (less deadlineMargin ${this.#margin} ms) has passed; it did not run. Pass inheritDeadline: false to give it its own`,
        { mayHaveRun: false },
      );
    }
    const timeout = options.timeout === undefined || !(options.timeout <= left) ? left : options.timeout;
    const inbound = ambient.signal;
    const signal = options.signal === undefined ? inbound : AbortSignal.any([options.signal, inbound]);
    return { ...options, timeout, signal };
  }

  readonly #innermost = (call: RpcCall): Promise<unknown> => {
    const own = call as ClientUnaryCall;
    const options: Options = {
      ...own.options,
      headers: sentHeaders(call.headers),
      timeout: call.deadline - Date.now(),
      signal: call.signal === NEVER_ABORTED ? undefined : call.signal,
    };
    return this.#start(call.notification, call.method, call.params, options);
  };
}

// The common case, checked without building the call's name: every per-call flag absent or a boolean.
function flagsAreBooleans(options: Options): boolean {
  const { waitForReady, idempotent, inheritDeadline } = options as CallOptions;
  return (waitForReady === undefined || typeof waitForReady === 'boolean') && (idempotent === undefined || typeof idempotent === 'boolean') && (inheritDeadline === undefined || typeof inheritDeadline === 'boolean');
}

// The innermost step of a stream: open it with what the interceptors left; settles when it ends.
function innermostStream(call: RpcCall): Promise<unknown> {
  const own = call as ClientStreamCall;
  const options: Options = {
    ...own.options,
    headers: sentHeaders(call.headers),
    timeout: call.deadline - Date.now(),
    signal: call.signal === NEVER_ABORTED ? undefined : call.signal,
  };
  return own.open(call.params, options);
}

// Interceptors get a headers map to write into; left empty it is not sent. An empty map would cost the request its
// hand-written meta on both sides (a meta with headers goes through msgpackr and the server's header checks).
function sentHeaders(headers: Record<string, string>): Record<string, string> | undefined {
  for (const _name in headers) return headers;
  return undefined;
}

function interceptorFailure(method: string, error: unknown): RpcError {
  if (error instanceof RpcError) return error;
  let text: string;
  try {
    text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } catch {
    text = 'a value that cannot be printed';
  }
  return new RpcError('INTERNAL', `a client interceptor failed on ${method} (${text.slice(0, 200)}); interceptors should throw RpcError`, { mayHaveRun: true }, { cause: error });
}

function isPlainRecord(value: unknown): value is Record<string, string> | undefined {
  if (value === undefined) return true;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** ClientCallBase holds what every kind of call shows client interceptors. */
abstract class ClientCallBase {
  readonly side = 'client' as const;
  readonly method: string;
  readonly service: string;
  readonly name: string;
  readonly registered = true;
  params: unknown;
  readonly headers: Record<string, string>;
  readonly signal: AbortSignal;
  readonly deadline: number;
  readonly peer: string;
  readonly auth: unknown = undefined;
  readonly options: Options;

  constructor(method: string, params: unknown, headers: Record<string, string>, signal: AbortSignal, deadline: number, peer: string, options: Options) {
    this.method = method;
    const { service, name } = splitMethod(method);
    this.service = service;
    this.name = name;
    this.params = params;
    this.headers = headers;
    this.signal = signal;
    this.deadline = deadline;
    this.peer = peer;
    this.options = options;
  }
}

/** ClientUnaryCall is a call or notification as client interceptors see it. @internal */
class ClientUnaryCall extends ClientCallBase implements UnaryCall {
  readonly kind = 'unary' as const;
  readonly notification: boolean;

  constructor(method: string, params: unknown, headers: Record<string, string>, signal: AbortSignal, deadline: number, peer: string, notification: boolean, options: Options) {
    super(method, params, headers, signal, deadline, peer, options);
    this.notification = notification;
  }
}

/** ClientStreamCall is a stream as client interceptors see it. @internal */
class ClientStreamCall extends ClientCallBase implements StreamCall {
  readonly kind = 'stream' as const;
  readonly notification = false as const;
  readonly streamKind: StreamKind;
  readonly watch: (watcher: StreamWatcher) => void;
  readonly open: (params: unknown, options: Options) => Promise<unknown>;

  constructor(method: string, params: unknown, headers: Record<string, string>, signal: AbortSignal, deadline: number, peer: string, streamKind: StreamKind, options: Options, watch: (watcher: StreamWatcher) => void, open: (params: unknown, options: Options) => Promise<unknown>) {
    super(method, params, headers, signal, deadline, peer, options);
    this.streamKind = streamKind;
    this.watch = watch;
    this.open = open;
  }
}
