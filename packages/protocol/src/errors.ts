/**
 * The error model of tunnelrpc: one class, one closed list of codes (wire-v1, PROTOCOL.md "Error codes").
 * Every local failure (dial, handshake, deadline, cancel, bad options) maps onto the same list here.
 */

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
