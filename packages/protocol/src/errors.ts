/**
 * The error model of tunnelrpc: one class, one closed list of codes (wire-v1, PROTOCOL.md "Error codes").
 * Every local failure (dial, handshake, deadline, cancel, bad options) maps onto the same list here.
 */
import type { MethodSpec } from './contract.js';
import type { DeclaredCodeOf, DeclaredRpcError } from './declared-errors.js';

/** ERROR_CODES lists every code an RpcError may carry, in wire-v1 order. */
export const ERROR_CODES = [
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

/** ErrorCode is one of ERROR_CODES. Match on it, never on the message. */
export type ErrorCode = (typeof ERROR_CODES)[number];

const CODE_SET: ReadonlySet<string> = new Set(ERROR_CODES);

/** isErrorCode tells whether a value is one of ERROR_CODES. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && CODE_SET.has(value);
}

/** RpcError is the only error tunnelrpc throws, rejects with, or sends. */
export class RpcError extends Error {
  override name = 'RpcError';
  /** One of ERROR_CODES: what callers branch on. */
  readonly code: ErrorCode;
  /** Structured detail: zod issues, `{ status, body }`, `{ size, maxFrameSize }`. Crosses the wire. */
  readonly data: unknown;

  constructor(code: ErrorCode, message: string, data?: unknown, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.data = data;
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

/** WireError is the error object of a response: `{code, message, data?}` (PROTOCOL.md "Response"). */
export interface WireError {
  code: string;
  message: string;
  data?: unknown;
}

/** toWireError serialises an RpcError for a response. @internal */
export function toWireError(error: RpcError): WireError {
  return error.data === undefined
    ? { code: error.code, message: error.message }
    : { code: error.code, message: error.message, data: error.data };
}

/**
 * fromWireError rebuilds an RpcError from a response's error object. An unknown code from a newer peer becomes
 * UNKNOWN with the original kept in `data.code`, so a caller never meets a code outside ERROR_CODES.
 * @internal
 */
export function fromWireError(wire: WireError): RpcError {
  if (isErrorCode(wire.code)) return new RpcError(wire.code, wire.message, wire.data);
  return new RpcError('UNKNOWN', `${wire.code}: ${wire.message}`, { code: wire.code, data: wire.data });
}
