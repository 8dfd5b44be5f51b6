/**
 * The error model of tunnelrpc: one class, one closed list of codes (wire-v1, PROTOCOL.md "Error codes").
 * Every local failure (dial, handshake, deadline, cancel, bad options) maps onto the same list here.
 */
import type { z } from 'zod';
import type { MethodSpec } from './method-spec.js';

import { isErrorCode, type ErrorCode } from './error-codes.js';

export { ERROR_CODES, isErrorCode, type ErrorCode } from './error-codes.js';

/** RpcErrorOptions are the optional parts of an RpcError beside its data. */
export interface RpcErrorOptions {
  /** The local error this one wraps (a socket error, a msgpack error); never sent. */
  cause?: unknown;
  /**
   * Whether the call may have started running on the server that answered (this hop only): false means it did
   * not, so a retry is safe. Left out, it is taken from a `mayHaveRun` boolean in a map `data` (the older place).
   */
  mayHaveRun?: boolean;
}

/** RpcError is the only error tunnelrpc throws, rejects with, or sends. */
export class RpcError extends Error {
  override name = 'RpcError';
  /** One of ERROR_CODES: what callers branch on. */
  readonly code: ErrorCode;
  /** Structured detail: zod issues, `{ status, body }`, `{ size, maxFrameSize }`. Crosses the wire as given. */
  readonly data: unknown;
  /**
   * Whether the call may have run on the server that answered: false means it surely did not (safe to retry),
   * true that it may have, undefined that nobody said (treat as true). Crosses the wire in its own key (PROTOCOL.md
   * 5.2); `data.mayHaveRun` is the deprecated older place, still written to map data and read from older peers.
   * Declared only: an error that says nothing has no such own property (it would show in logs and deep-equals).
   */
  declare readonly mayHaveRun?: boolean;

  constructor(code: ErrorCode, message: string, data?: unknown, options?: RpcErrorOptions) {
    super(message, options !== undefined && 'cause' in options ? { cause: options.cause } : undefined);
    this.code = code;
    this.data = data;
    const mayHaveRun = options?.mayHaveRun ?? legacyMayHaveRun(data);
    if (mayHaveRun !== undefined) this.mayHaveRun = mayHaveRun;
  }

  /**
   * is tells whether this error is `code`, declared by `method` in its contract's `errors` and checked against that
   * code's schema (the typed client checks every declared error it receives); it narrows `data` to the declared
   * type: `if (error.is(Stock.methods.reserve, 'FAILED_PRECONDITION')) error.data.available`. False for a code the
   * method does not declare and for an error from another method.
   */
  is<M extends MethodSpec, const C extends DeclaredCodeOf<M>>(method: M, code: C): this is DeclaredRpcError<M, C> {
    return this.code === code && declaredBy.get(this) === method;
  }

  /**
   * RpcError.from turns any thrown value into an RpcError: an RpcError is kept as it is, an AbortError becomes
   * CANCELLED (or DEADLINE_EXCEEDED for a TimeoutError), anything else becomes `code` with the original as `cause`.
   */
  static from(reason: unknown, code: ErrorCode = 'UNKNOWN'): RpcError {
    if (reason instanceof RpcError) return reason;
    if (reason instanceof Error && reason.name === 'TimeoutError') {
      return new RpcError('DEADLINE_EXCEEDED', 'the call was aborted by a timeout signal', undefined, { cause: reason });
    }
    if (reason instanceof Error && reason.name === 'AbortError') {
      return new RpcError('CANCELLED', 'the call was cancelled by its AbortSignal', undefined, { cause: reason });
    }
    return new RpcError(code, describe(reason), undefined, { cause: reason });
  }
}

// Which method's contract declared (and checked) an error: set by the typed client only.
const declaredBy = new WeakMap<RpcError, MethodSpec>();

/** markDeclared records that `error` was checked against `method`'s declared errors. @internal */
export function markDeclared(error: RpcError, method: MethodSpec): void {
  declaredBy.set(error, method);
}

// String() throws for objects without a usable string form (Object.create(null), a throwing toString).
function describe(reason: unknown): string {
  try {
    return reason instanceof Error ? reason.message : String(reason);
  } catch {
    return 'a value that has no string form was thrown';
  }
}

/**
 * GoawayCode is the reason carried by a goaway message. PROTOCOL_ERROR and RESOURCE_EXHAUSTED close the connection
 * at once; UNAVAILABLE is a graceful drain.
 */
export type GoawayCode = 'PROTOCOL_ERROR' | 'RESOURCE_EXHAUSTED' | 'UNAVAILABLE';

/**
 * protocolViolation builds the error for a peer that broke wire-v1. Its code is INTERNAL (gRPC maps an HTTP/2
 * PROTOCOL_ERROR the same way); goawayCodeOf turns it back into the goaway code PROTOCOL_ERROR.
 * @internal
 */
export function protocolViolation(message: string, data?: unknown): RpcError {
  return new RpcError('INTERNAL', `protocol violation: ${message}`, data);
}

/**
 * goawayCodeOf picks the goaway code for an error that ends a connection: RESOURCE_EXHAUSTED for a limit,
 * PROTOCOL_ERROR for everything else.
 * @internal
 */
export function goawayCodeOf(error: RpcError): GoawayCode {
  return error.code === 'RESOURCE_EXHAUSTED' ? 'RESOURCE_EXHAUSTED' : 'PROTOCOL_ERROR';
}

/**
 * codeFromHttpStatus maps the status of a refused CONNECT to an error code, as gRPC maps HTTP statuses:
 * 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 and 405 UNIMPLEMENTED (no RPC endpoint there),
 * 408 DEADLINE_EXCEEDED, 429 RESOURCE_EXHAUSTED, 502/503/504 UNAVAILABLE, anything else UNKNOWN.
 */
export function codeFromHttpStatus(status: number): ErrorCode {
  switch (status) {
    case 401:
      return 'UNAUTHENTICATED';
    case 403:
      return 'PERMISSION_DENIED';
    case 404:
    case 405:
      return 'UNIMPLEMENTED';
    case 408:
      return 'DEADLINE_EXCEEDED';
    case 429:
      return 'RESOURCE_EXHAUSTED';
    case 502:
    case 503:
    case 504:
      return 'UNAVAILABLE';
    default:
      return 'UNKNOWN';
  }
}

/** WireError is the error object of a response: `{code, message, data?, mayHaveRun?}` (PROTOCOL.md "Response"). */
export interface WireError {
  code: string;
  message: string;
  data?: unknown;
  mayHaveRun?: boolean;
}

/**
 * toWireError serialises an RpcError for a response. mayHaveRun goes in its own key; for peers that read only the
 * older place it is also set in `data` when the data is a map or absent (never in an array, string or number: the
 * user's data crosses as given). @internal
 */
export function toWireError(error: RpcError): WireError {
  const wire: WireError = { code: error.code, message: error.message };
  const { data, mayHaveRun } = error;
  if (mayHaveRun === undefined) {
    if (data !== undefined) wire.data = data;
    return wire;
  }
  if (data === undefined || data === null) wire.data = { mayHaveRun };
  else if (isPlainObject(data) && data['mayHaveRun'] !== mayHaveRun) wire.data = { ...data, mayHaveRun };
  else wire.data = data;
  wire.mayHaveRun = mayHaveRun;
  return wire;
}

/**
 * fromWireError rebuilds an RpcError from a response's error object. An unknown code from a newer peer becomes
 * UNKNOWN with the original kept in `data.code`, so a caller never meets a code outside ERROR_CODES.
 * @internal
 */
export function fromWireError(wire: WireError): RpcError {
  // The own key wins; a wire-v1 peer of an earlier revision said it only in data (the constructor reads that).
  const options = typeof wire.mayHaveRun === 'boolean' ? { mayHaveRun: wire.mayHaveRun } : { mayHaveRun: legacyMayHaveRun(wire.data) };
  if (isErrorCode(wire.code)) return new RpcError(wire.code, wire.message, wire.data, definedOptions(options));
  return new RpcError('UNKNOWN', `${wire.code}: ${wire.message}`, { code: wire.code, data: wire.data }, definedOptions(options));
}

// `data.mayHaveRun`, the older place of the flag, when data is a map holding a boolean there.
function legacyMayHaveRun(data: unknown): boolean | undefined {
  if (!isPlainObject(data)) return undefined;
  const value = data['mayHaveRun'];
  return typeof value === 'boolean' ? value : undefined;
}

function definedOptions(options: { mayHaveRun: boolean | undefined }): RpcErrorOptions | undefined {
  return options.mayHaveRun === undefined ? undefined : { mayHaveRun: options.mayHaveRun };
}

// A map as the wire carries it: an object literal (or null-prototype map), not an array, Date, bytes or class.
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** DeclaredCodeOf is the union of the codes a method declares (never when it declares none). */
export type DeclaredCodeOf<M extends MethodSpec> = M extends { readonly errors: infer E } ? keyof E & ErrorCode : never;

/** ErrorDataOf is the data type of a declared code, as the caller receives it (after zod parsing). */
export type ErrorDataOf<M extends MethodSpec, C extends ErrorCode> = M extends { readonly errors: infer E }
  ? C extends keyof E
    ? E[C] extends z.ZodType
      ? z.output<E[C]>
      : never
    : never
  : never;

/** DeclaredRpcError is an RpcError of a declared code whose data was checked against its schema. */
export type DeclaredRpcError<M extends MethodSpec, C extends ErrorCode> = RpcError & { readonly code: C; readonly data: ErrorDataOf<M, C> };

/**
 * MethodErrorOf is what a typed call of method M may reject with, as a union discriminated by `code`: one member
 * per declared code with its data typed, and plain RpcError for everything else.
 */
export type MethodErrorOf<M extends MethodSpec> = { [C in DeclaredCodeOf<M>]: DeclaredRpcError<M, C> }[DeclaredCodeOf<M>] | RpcError;
