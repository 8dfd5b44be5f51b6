/**
 * The method table and the mapping of handler outcomes to wire errors (Go's service.call; wire-v1 "Error codes").
 */
import type { Socket } from 'node:net';
import {
  RpcError,
  formatIssues,
  methodPath,
  parseWithSchema,
  summarizeIssues,
  isPlainMap,
  methodKind,
  type MethodKind,
  type MethodSpec,
  type ParsedClientMessageOf,
  type ParsedInputOf,
  type ReturnOf,
  type ServerMessageOf,
  type ServiceContract,
} from '@tunnelrpc/protocol';
import type { LogEntry } from './log.js';

/** PeerAddress is the remote end of a tunnel as the socket reports it. */
export interface PeerAddress {
  address: string | undefined;
  port: number | undefined;
  family: string | undefined;
}

/** CallContext is handed to every handler next to its parsed params. */
export interface CallContext {
  /** Wire name of the method, `"Service.method"`. */
  readonly method: string;
  /** Aborted when the call is cancelled, passes its deadline, or its connection closes. */
  readonly signal: AbortSignal;
  /** Absolute deadline, in ms since the epoch (compare with Date.now()). */
  readonly deadline: number;
  /** Headers the caller sent in meta.headers. */
  readonly headers: Readonly<Record<string, string>>;
  /** True for a notification: the result is discarded and errors are only logged. */
  readonly notification: boolean;
  /** Remote address of the tunnel. */
  readonly peer: PeerAddress;
  /** The tunneled socket (a net.Socket, or a tls.TLSSocket behind https). */
  readonly socket: Socket;
  /** What ServerOptions.authorize returned for this tunnel (undefined without authorize). */
  readonly auth: unknown;
}

/** Handler runs one method: parsed params in, result (or a promise of it) out. Throw RpcError to fail the call. */
export type Handler<M extends MethodSpec> = (input: ParsedInputOf<M>, ctx: CallContext) => ReturnOf<M> | Promise<ReturnOf<M>>;

/**
 * ServerStreamHandler runs a serverStream method: an async generator whose every `yield` sends one message (pulled
 * only when the client has granted credit) and whose return value is the result. `finally` blocks run when the
 * stream ends early (cancel, deadline, goaway cut-off, a lost tunnel); ctx.signal is aborted then.
 */
export type ServerStreamHandler<M extends MethodSpec> = (input: ParsedInputOf<M>, ctx: CallContext) => AsyncIterator<ServerMessageOf<M>, ReturnOf<M>, undefined>;

/**
 * ClientStreamHandler runs a clientStream method: it reads the client's messages (validated, ending when the client
 * half-closes, throwing the RpcError that ended the stream otherwise) and returns the result.
 */
export type ClientStreamHandler<M extends MethodSpec> = (input: ParsedInputOf<M>, messages: AsyncIterable<ParsedClientMessageOf<M>>, ctx: CallContext) => ReturnOf<M> | Promise<ReturnOf<M>>;

/** BidiStreamHandler runs a bidiStream method: the client's messages in, an async generator of messages out. */
export type BidiStreamHandler<M extends MethodSpec> = (input: ParsedInputOf<M>, messages: AsyncIterable<ParsedClientMessageOf<M>>, ctx: CallContext) => AsyncIterator<ServerMessageOf<M>, ReturnOf<M>, undefined>;

/** HandlerOf is the handler type a method spec requires, by its kind. */
export type HandlerOf<M extends MethodSpec> = M extends { readonly kind: 'serverStream' }
  ? ServerStreamHandler<M>
  : M extends { readonly kind: 'clientStream' }
    ? ClientStreamHandler<M>
    : M extends { readonly kind: 'bidiStream' }
      ? BidiStreamHandler<M>
      : Handler<M>;

/** ServiceImpl is the handler object a contract requires: one handler per method, typed from the schemas. */
export type ServiceImpl<C extends ServiceContract> = { [K in keyof C['methods']]: HandlerOf<C['methods'][K]> };

/** RegisteredMethod is one row of the method table. @internal */
export interface RegisteredMethod {
  readonly path: string;
  readonly spec: MethodSpec;
  readonly kind: MethodKind;
  readonly handler: (input: unknown, ...rest: unknown[]) => unknown;
}

/** MethodTable maps wire names to handlers. A Map, so "__proto__" or "toString" is simply not found. @internal */
export class MethodTable {
  readonly #methods = new Map<string, RegisteredMethod>();

  add<C extends ServiceContract>(contract: C, impl: ServiceImpl<C>): void {
    for (const name of Object.keys(contract.methods)) {
      const path = methodPath(contract, name);
      const handler: unknown = (impl as Record<string, unknown>)[name];
      if (typeof handler !== 'function') {
        throw new RpcError('INVALID_ARGUMENT', `register(${contract.name}): no handler function for method ${name}`);
      }
      if (this.#methods.has(path)) {
        throw new RpcError('ALREADY_EXISTS', `method ${path} is registered already; register each service once`);
      }
    }
    for (const [name, spec] of Object.entries(contract.methods)) {
      const handler = (impl as Record<string, (input: unknown, ...rest: unknown[]) => unknown>)[name]!;
      this.#methods.set(methodPath(contract, name), { path: methodPath(contract, name), spec, kind: methodKind(spec), handler: handler.bind(impl) });
    }
  }

  get(method: string): RegisteredMethod | undefined {
    return this.#methods.get(method);
  }
}

/** unknownMethod is the UNIMPLEMENTED answer for a method nobody registered. @internal */
export function unknownMethod(method: string): RpcError {
  return new RpcError('UNIMPLEMENTED', `method ${JSON.stringify(method.slice(0, 200))} is not implemented by this server; check the service and method name`);
}

/**
 * parseParams validates params with the method's input schema; on failure INVALID_ARGUMENT with capped issues.
 * With `validate` false (ServerOptions.validateParams, trusted peers) they pass unchecked, as decoded.
 */
export function parseParams(method: RegisteredMethod, params: unknown, validate = true): { ok: true; input: unknown } | { ok: false; error: RpcError } {
  if (!validate) return { ok: true, input: params };
  let result = parseWithSchema(method.spec.input, params);
  // PROTOCOL.md 5.1: an empty map is accepted wherever nil is (a caller in another language sends {}, gRPC's Empty,
  // for a method that takes no params).
  if (!result.success && isPlainMap(params) && Object.keys(params).length === 0) {
    const retry = parseWithSchema(method.spec.input, null);
    if (retry.success) result = retry;
  }
  if (result.success) return { ok: true, input: result.data };
  const summary = summarizeIssues(result.issues);
  return {
    ok: false,
    error: new RpcError('INVALID_ARGUMENT', `invalid params for ${method.path}: ${formatIssues(summary.issues)}`, summary),
  };
}

/**
 * errorFromHandler maps what a handler threw to the error sent to the caller. RpcError goes as written; anything
 * else becomes INTERNAL with a generic message, and the detail goes to the log only (unless exposed). Either way
 * the data says `mayHaveRun: true`: the handler ran, so whatever a call it made downstream reported about that
 * other hop (an UNAVAILABLE that "did not run") must not reach our caller as if it were about this call.
 */
export function errorFromHandler(thrown: unknown, method: string, expose: boolean, log: (entry: LogEntry) => void): RpcError {
  if (thrown instanceof RpcError) return markMayHaveRun(thrown);
  log({ level: 'error', message: 'handler threw; the caller got INTERNAL', method, code: 'INTERNAL', error: thrown });
  let detail = '';
  if (expose) {
    try {
      detail = thrown instanceof Error ? `: ${thrown.message}` : `: ${String(thrown)}`;
    } catch {
      detail = '';
    }
  }
  return new RpcError('INTERNAL', `internal error in ${method}${detail || '; the server logged the details'}`, { mayHaveRun: true });
}

function markMayHaveRun(error: RpcError): RpcError {
  const data = error.data;
  if (data === undefined || data === null) return new RpcError(error.code, error.message, { mayHaveRun: true }, { cause: error });
  if (typeof data !== 'object' || Array.isArray(data) || (data as { mayHaveRun?: unknown }).mayHaveRun === true) return error;
  return new RpcError(error.code, error.message, { ...(data as Record<string, unknown>), mayHaveRun: true }, { cause: error });
}
