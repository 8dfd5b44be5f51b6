/**
 * Interceptors: one type for both sides, in the shape of connect-es. An interceptor wraps the function that runs a
 * call, `(next) => async (call) => result`; it may read and change `call.headers`, time the call, log it, retry it
 * by calling `next` again, or answer it without calling `next` by throwing an RpcError. The first interceptor in a
 * list is the outermost: it sees the call first and the outcome last.
 *
 * On the server the innermost `next` is the handler; on the client it is the transport call (below retries and
 * redials, so an interceptor counts calls, not attempts). Every kind of call passes the same chain: unary calls,
 * notifications and streams. For a stream, `next` settles when the stream ends (with its final result or error),
 * so an interceptor that times `await next(call)` times the whole stream, one that throws before `next` refuses
 * the opening, and `call.watch()` shows it each message both ways.
 *
 * Pure: no sockets, no timers.
 */
import { checkFunctionList } from './option-checks.js';
import { RpcError } from './errors.js';
import type { StreamKind } from './stream-state.js';

/** CallKind tells the shape of a call: `unary` (one params value in, one result out) or `stream`. */
export type CallKind = 'unary' | 'stream';

/** CallSide tells which end runs the interceptor. */
export type CallSide = 'client' | 'server';

/** UnaryCall is one unary call (or notification) as interceptors see it, on either side. */
export interface UnaryCall {
  readonly kind: 'unary';
  /** `server` for a call being handled, `client` for a call being made. */
  readonly side: CallSide;
  /** Wire name, `"Service.method"`. */
  readonly method: string;
  /** Service part of the wire name (`"Service"`; everything before the last dot). */
  readonly service: string;
  /** Method part of the wire name (`"method"`). */
  readonly name: string;
  /**
   * False on the server for a method nobody registered (the innermost `next` answers UNIMPLEMENTED): its name came
   * from the peer, so metrics and traces should label it `_OTHER`. Always true on the client.
   */
  readonly registered: boolean;
  /**
   * The params. Server: parsed by the method's schema. Client: as the caller passed them. An interceptor may replace
   * them before calling `next`.
   */
  params: unknown;
  /**
   * Headers (meta.headers), names in lower case. Changes made before `next` reach the handler (server) or the wire
   * (client).
   */
  readonly headers: Record<string, string>;
  /** Aborted when the call is cancelled, passes its deadline, or its tunnel closes (server); the caller's signal (client). */
  readonly signal: AbortSignal;
  /** Absolute deadline in ms since the epoch (compare with Date.now()). */
  readonly deadline: number;
  /** The other end: `"address:port"` of the tunnel (server), the target URL (client). */
  readonly peer: string;
  /** True for a notification: the result is discarded. */
  readonly notification: boolean;
  /** What ServerOptions.authorize returned for the tunnel (server); undefined on the client. */
  readonly auth: unknown;
}

/**
 * StreamWatcher sees each message of a stream as it crosses this side. `received` runs for every message that
 * arrived (validated, before the handler or reader takes it), `sent` for every message about to be written. Both
 * run synchronously; a watcher that throws ends the stream with what it threw (an RpcError as written, anything
 * else INTERNAL), so a watcher can refuse a message as an interceptor refuses a call.
 */
export interface StreamWatcher {
  received?(message: unknown): void;
  sent?(message: unknown): void;
}

/**
 * StreamCall is one stream (server, client or bidirectional) as interceptors see it, on either side: the common
 * fields of a call, the opening params, and `watch` for the messages. Its `next` resolves with the stream's final
 * result when it ends, or rejects with the error that ended it (cancel, deadline, a lost tunnel included).
 */
export interface StreamCall extends Omit<UnaryCall, 'kind' | 'notification'> {
  readonly kind: 'stream';
  /** Which directions carry messages: `serverStream`, `clientStream` or `bidiStream`. */
  readonly streamKind: StreamKind;
  /** Always false: a stream is never a notification. */
  readonly notification: false;
  /** watch adds a watcher of the stream's messages; call it before `next`, as later messages are all it sees. */
  watch(watcher: StreamWatcher): void;
}

/**
 * RpcCall is any call an interceptor can see; switch on `kind`. An interceptor that handles only unary calls checks
 * `call.kind` and passes other kinds on unchanged.
 */
export type RpcCall = UnaryCall | StreamCall;

/** CallFn runs a call to its outcome: resolves with the result, or rejects (an RpcError for the caller to see). */
export type CallFn = (call: RpcCall) => Promise<unknown>;

/** Interceptor wraps a CallFn. Return a function that calls `next(call)` (or not, to answer by itself). */
export type Interceptor = (next: CallFn) => CallFn;

/**
 * applyInterceptors composes `interceptors` around `fn`; the first in the list is the outermost. An empty list
 * returns `fn` unchanged.
 */
export function applyInterceptors(fn: CallFn, interceptors: readonly Interceptor[]): CallFn {
  let next = fn;
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i]!(next);
  return next;
}

/**
 * checkInterceptors validates an `interceptors` option: an array of functions. Throws RpcError INVALID_ARGUMENT
 * naming the option otherwise.
 * @internal
 */
export function checkInterceptors(name: string, value: unknown): readonly Interceptor[] {
  return checkFunctionList<Interceptor>(name, value, 'interceptor functions, (next) => async (call) => next(call)');
}

/**
 * splitMethod splits a wire name into its service and method parts at the last dot (`"a.b.C.m"` -> `a.b.C`, `m`).
 * @internal
 */
export function splitMethod(method: string): { service: string; name: string } {
  const dot = method.lastIndexOf('.');
  return dot === -1 ? { service: '', name: method } : { service: method.slice(0, dot), name: method.slice(dot + 1) };
}
