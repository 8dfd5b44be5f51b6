/**
 * The method table and the mapping of handler outcomes to wire errors (Go's service.call; wire-v1 "Error codes").
 */
import type { Socket } from 'node:net';
import { z } from 'zod';
import {
  RpcError,
  formatIssues,
  fromWireValue,
  methodPath,
  parseWithSchema,
  quotePeerText,
  toWireValue,
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
import { wrapHandler, type HandlerWrapping } from './intercept.js';
import type { LogEntry } from './log.js';

import type { PeerCredentials } from './peer-credentials.js';
import type { TcpInfo } from '@tunnelrpc/protocol';

/**
 * PeerAddress is the remote end of a tunnel: as the socket reports it, or, on a listener with the proxyProtocol
 * option, the client's address from the balancer's PROXY header.
 */
export interface PeerAddress {
  address: string | undefined;
  port: number | undefined;
  family: string | undefined;
  /** The client certificate the TLS layer verified (https with `requestCert`); absent otherwise. */
  certificate?: PeerCertificate;
  /**
   * The connecting process's uid, gid and pid, on a unix socket on Linux with the optional `koffi` package
   * installed (SO_PEERCRED); absent otherwise.
   */
  credentials?: PeerCredentials;
  /**
   * tcpInfo reads the kernel's view of the tunnel's TCP connection now (getsockopt TCP_INFO): round-trip time and
   * its variance, retransmits, congestion window, unacknowledged and lost segments, bytes acked and received.
   * undefined where it cannot be read: not Linux, the optional `koffi` package missing, a unix socket, or the
   * socket closed. Each call reads afresh; nothing is read unless asked.
   */
  tcpInfo(): TcpInfo | undefined;
}

/** PeerCertificate is a verified client certificate, as `ctx.peer.certificate` and `authorize` see it. */
export interface PeerCertificate {
  /** Subject names, such as `{ CN: 'billing', O: 'Example' }`. */
  readonly subject: Readonly<Record<string, string>>;
  /** Issuer names. */
  readonly issuer: Readonly<Record<string, string>>;
  /** Subject alternative names as OpenSSL prints them: `DNS:billing.internal`, `URI:spiffe://…`, `IP Address:10.0.0.5`. */
  readonly subjectAltNames: readonly string[];
  /** SHA-256 fingerprint, colon-separated hex: pin it to allow one certificate exactly. */
  readonly fingerprint256: string;
  readonly serialNumber: string;
  readonly validFrom: string;
  readonly validTo: string;
}

/** CallContext is handed to every handler next to its parsed params. */
export interface CallContext<Auth = unknown> {
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
  readonly auth: Auth;
}

/** Handler runs one method: parsed params in, result (or a promise of it) out. Throw RpcError to fail the call. */
export type Handler<M extends MethodSpec, Auth = unknown> = (input: ParsedInputOf<M>, ctx: CallContext<Auth>) => ReturnOf<M> | Promise<ReturnOf<M>>;

/**
 * ServerStreamHandler runs a serverStream method: an async generator whose every `yield` sends one message (pulled
 * only when the client has granted credit) and whose return value is the result. `finally` blocks run when the
 * stream ends early (cancel, deadline, goaway cut-off, a lost tunnel); ctx.signal is aborted then.
 */
export type ServerStreamHandler<M extends MethodSpec, Auth = unknown> = (input: ParsedInputOf<M>, ctx: CallContext<Auth>) => AsyncIterator<ServerMessageOf<M>, ReturnOf<M>, undefined>;

/**
 * ClientStreamHandler runs a clientStream method: it reads the client's messages (validated, ending when the client
 * half-closes, throwing the RpcError that ended the stream otherwise) and returns the result.
 */
export type ClientStreamHandler<M extends MethodSpec, Auth = unknown> = (input: ParsedInputOf<M>, messages: AsyncIterable<ParsedClientMessageOf<M>>, ctx: CallContext<Auth>) => ReturnOf<M> | Promise<ReturnOf<M>>;

/** BidiStreamHandler runs a bidiStream method: the client's messages in, an async generator of messages out. */
export type BidiStreamHandler<M extends MethodSpec, Auth = unknown> = (input: ParsedInputOf<M>, messages: AsyncIterable<ParsedClientMessageOf<M>>, ctx: CallContext<Auth>) => AsyncIterator<ServerMessageOf<M>, ReturnOf<M>, undefined>;

/** HandlerOf is the handler type a method spec requires, by its kind. */
export type HandlerOf<M extends MethodSpec, Auth = unknown> = M extends { readonly kind: 'serverStream' }
  ? ServerStreamHandler<M, Auth>
  : M extends { readonly kind: 'clientStream' }
    ? ClientStreamHandler<M, Auth>
    : M extends { readonly kind: 'bidiStream' }
      ? BidiStreamHandler<M, Auth>
      : Handler<M, Auth>;

/** ServiceImpl is the handler object a contract requires: one handler per method, typed from the schemas. */
export type ServiceImpl<C extends ServiceContract, Auth = unknown> = { [K in keyof C['methods']]: HandlerOf<C['methods'][K], Auth> };

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
  readonly #wrapping: HandlerWrapping;

  /** `wrapping` says what each handler is wrapped in at add() time (interceptors, the ambient call). */
  constructor(wrapping: HandlerWrapping = { interceptors: [], propagateContext: false }) {
    this.#wrapping = wrapping;
  }

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
      const handler = (impl as Record<string, (input: unknown, ...rest: unknown[]) => unknown>)[name]!.bind(impl);
      const path = methodPath(contract, name);
      const kind = methodKind(spec);
      // Interceptors wrap unary handlers; stream handlers run as registered until stream calls join the
      // interceptor shape (CallKind 'stream' is reserved for them).
      const run = kind === 'unary' ? (wrapHandler(path, handler as (input: unknown, ctx: CallContext) => unknown, this.#wrapping) as RegisteredMethod['handler']) : handler;
      this.#methods.set(path, { path, spec, kind, handler: run });
    }
  }

  get(method: string): RegisteredMethod | undefined {
    return this.#methods.get(method);
  }

  /**
   * unknown returns a method for a request to an unregistered name when interceptors are configured, so that they
   * see (and metrics count) it too; its handler answers UNIMPLEMENTED. Undefined without interceptors: the
   * connection then answers UNIMPLEMENTED itself, at no cost.
   */
  unknown(method: string): RegisteredMethod | undefined {
    if (this.#wrapping.interceptors.length === 0) return undefined;
    const fail = (): never => {
      throw unknownMethod(method);
    };
    return { path: method, spec: UNKNOWN_SPEC, kind: 'unary', handler: wrapHandler(method, fail, this.#wrapping, false) as RegisteredMethod['handler'] };
  }

  /** size counts the registered methods. */
  get size(): number {
    return this.#methods.size;
  }

  /** entries lists every registered method, in registration order. */
  entries(): IterableIterator<RegisteredMethod> {
    return this.#methods.values();
  }
}

// Params of a request to an unknown method are taken as they come: the handler only answers UNIMPLEMENTED.
const UNKNOWN_SPEC: MethodSpec = { input: z.unknown(), output: z.unknown() };

/** unknownMethod is the UNIMPLEMENTED answer for a method nobody registered. @internal */
export function unknownMethod(method: string): RpcError {
  const error = new RpcError('UNIMPLEMENTED', `method ${quotePeerText(method, 200)} is not implemented by this server; check the service and method name`, { mayHaveRun: false });
  NOTHING_RAN.add(error);
  return error;
}

// Errors the server made where no handler exists (an unknown method passed through the interceptors): they keep
// mayHaveRun: false when they come back out of the interceptor chain.
const NOTHING_RAN = new WeakSet<RpcError>();

/**
 * parseParams validates params with the method's input schema, after mapping wire forms to the schema's types
 * (parseWithSchema); on failure INVALID_ARGUMENT with capped issues. With `validate` false
 * (ServerOptions.validateParams, trusted peers) they pass unchecked but still mapped, so that a handler typed for
 * a bigint, Set or Map gets one (PROTOCOL.md 4.8).
 */
export function parseParams(method: RegisteredMethod, params: unknown, validate = true): { ok: true; input: unknown } | { ok: false; error: RpcError } {
  if (!validate) {
    try {
      return { ok: true, input: fromWireValue(method.spec.input, params) };
    } catch {
      // A stack overflow on params nested deeper than the schema's walk can go.
      return { ok: false, error: new RpcError('INVALID_ARGUMENT', `invalid params for ${method.path}: value nested too deeply to map`, { mayHaveRun: false }) };
    }
  }
  let result = parseWithSchema(method.spec.input, params);
  // PROTOCOL.md 5.0 rule 6: an empty map is accepted wherever nil is (a caller in another language sends {}, gRPC's
  // Empty, for a method that takes no params).
  if (!result.success && isPlainMap(params) && Object.keys(params).length === 0) {
    const retry = parseWithSchema(method.spec.input, null);
    if (retry.success) result = retry;
  }
  if (result.success) return { ok: true, input: result.data };
  const summary = summarizeIssues(result.issues);
  return {
    ok: false,
    error: new RpcError('INVALID_ARGUMENT', `invalid params for ${method.path}: ${formatIssues(summary.issues)}`, { ...summary, mayHaveRun: false }),
  };
}

/**
 * prepareResult checks a handler's result against the method's output schema (unless `validate` is off) and lays
 * it out in wire form (Maps as pairs, PROTOCOL.md 4.8). A result that does not match is the server's bug, not the
 * caller's: it is logged with the method and the issues, and the caller gets INTERNAL without the values. The
 * result goes out as the handler returned it, not as parsed, so that transforms run once, on the client.
 */
export function prepareResult(method: RegisteredMethod, result: unknown, validate: boolean, log: (entry: LogEntry) => void): { ok: true; value: unknown } | { ok: false; error: RpcError } {
  if (validate) {
    const checked = parseWithSchema(method.spec.output, result);
    if (!checked.success) {
      const summary = summarizeIssues(checked.issues);
      log({ level: 'error', message: `handler returned a result that does not match the contract: ${formatIssues(summary.issues)}`, method: method.path, code: 'INTERNAL' });
      return { ok: false, error: new RpcError('INTERNAL', `the result of ${method.path} does not match its contract; the server logged the details`, { mayHaveRun: true }) };
    }
  }
  try {
    return { ok: true, value: toWireValue(method.spec.output, result) };
  } catch (error) {
    log({ level: 'error', message: 'handler returned a result that cannot be laid out for the wire', method: method.path, code: 'INTERNAL', error });
    return { ok: false, error: new RpcError('INTERNAL', `the result of ${method.path} cannot be sent; the server logged the details`, { mayHaveRun: true }) };
  }
}

/**
 * prepareStreamMessage is prepareResult for one message a stream handler yields: checked against serverMessage
 * (unless `validate` is off) and laid out in wire form. A message that does not match ends the stream INTERNAL.
 */
export function prepareStreamMessage(method: RegisteredMethod, message: unknown, validate: boolean, log: (entry: LogEntry) => void): { ok: true; value: unknown } | { ok: false; error: RpcError } {
  const schema = method.spec.serverMessage!;
  if (validate) {
    const checked = parseWithSchema(schema, message);
    if (!checked.success) {
      const summary = summarizeIssues(checked.issues);
      log({ level: 'error', message: `stream handler yielded a message that does not match the contract: ${formatIssues(summary.issues)}`, method: method.path, code: 'INTERNAL' });
      return { ok: false, error: new RpcError('INTERNAL', `a stream message of ${method.path} does not match its contract; the server logged the details`, { mayHaveRun: true }) };
    }
  }
  try {
    return { ok: true, value: toWireValue(schema, message) };
  } catch (error) {
    log({ level: 'error', message: 'stream handler yielded a message that cannot be laid out for the wire', method: method.path, code: 'INTERNAL', error });
    return { ok: false, error: new RpcError('INTERNAL', `a stream message of ${method.path} cannot be sent; the server logged the details`, { mayHaveRun: true }) };
  }
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
  if (NOTHING_RAN.has(error)) return error;
  const data = error.data;
  if (data === undefined || data === null) return new RpcError(error.code, error.message, { mayHaveRun: true }, { cause: error });
  if (typeof data !== 'object' || Array.isArray(data) || (data as { mayHaveRun?: unknown }).mayHaveRun === true) return error;
  return new RpcError(error.code, error.message, { ...(data as Record<string, unknown>), mayHaveRun: true }, { cause: error });
}
