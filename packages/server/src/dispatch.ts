/**
 * The method table and the mapping of handler outcomes to wire errors (Go's service.call; wire-v1 "Error codes").
 */
import type { Socket } from 'node:net';
import {
  RpcError,
  formatIssues,
  fromWireValue,
  methodPath,
  parseWithSchema,
  summarizeIssues,
  type MethodSpec,
  type ParsedInputOf,
  type ReturnOf,
  type ServiceContract,
} from '@tunnelrpc/protocol';
import type { LogEntry } from './log.js';

import type { PeerCredentials } from './peer-credentials.js';

/** PeerAddress is the remote end of a tunnel as the socket reports it. */
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

/** ServiceImpl is the handler object a contract requires: one handler per method, typed from the schemas. */
export type ServiceImpl<C extends ServiceContract> = { [K in keyof C['methods']]: Handler<C['methods'][K]> };

/** RegisteredMethod is one row of the method table. @internal */
export interface RegisteredMethod {
  readonly path: string;
  readonly spec: MethodSpec;
  readonly handler: (input: unknown, ctx: CallContext) => unknown;
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
      const handler = (impl as Record<string, (input: unknown, ctx: CallContext) => unknown>)[name]!;
      this.#methods.set(methodPath(contract, name), { path: methodPath(contract, name), spec, handler: handler.bind(impl) });
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
      return { ok: false, error: new RpcError('INVALID_ARGUMENT', `invalid params for ${method.path}: value nested too deeply to map`) };
    }
  }
  const result = parseWithSchema(method.spec.input, params);
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
