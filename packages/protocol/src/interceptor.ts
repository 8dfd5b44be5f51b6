/**
 * Interceptors: one type for both sides, in the shape of connect-es. An interceptor wraps the function that runs a
 * call, `(next) => async (call) => result`; it may read and change `call.headers`, time the call, log it, retry it
 * by calling `next` again, or answer it without calling `next` by throwing an RpcError. The first interceptor in a
 * list is the outermost: it sees the call first and the outcome last.
 *
 * On the server the innermost `next` is the handler; on the client it is the transport call (below retries and
 * redials, so an interceptor counts calls, not attempts). Only unary calls exist today; `kind` is there so that
 * streams can be added as a second shape without changing this type.
 *
 * Pure: no sockets, no timers.
 */
import { checkFunctionList } from './option-checks.js';
import { RpcError } from './errors.js';

/** CallKind tells the shape of a call: `unary` today (one params value in, one result out); `stream` is reserved. */
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
 * RpcCall is any call an interceptor can see. Streams join this union as a second kind, in connect-es's shape: a
 * `StreamCall` with `kind: 'stream'`, the same common fields, and `messages: AsyncIterable<unknown>` in place of
 * `params`; its `next` resolves with the response messages as an AsyncIterable. An interceptor that handles only
 * unary calls checks `call.kind` and passes other kinds on unchanged, so adding the kind breaks none.
 */
export type RpcCall = UnaryCall;

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
