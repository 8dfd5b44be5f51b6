/**
 * The per-call checks between a decoded request and its handler: header limits (names folded to lower case, as
 * HTTP compares them), the largest map in the frame, and the params schema. Each refusal is INVALID_ARGUMENT for
 * that call alone, the handler unrun: a well-formed frame is never a reason to close the tunnel.
 */
import { RpcError, quotePeerText } from '@tunnelrpc/protocol';
import { lowerCaseHeaderName, type DecodeStats } from '@tunnelrpc/protocol/internal';
import { parseParams, type RegisteredMethod } from './dispatch.js';

/** RequestLimits are the options the checks follow. @internal */
export interface RequestLimits {
  readonly maxHeaderCount: number;
  readonly maxHeaderBytes: number;
  readonly maxKeysPerMap: number;
  readonly validateParams: boolean;
}

/** EMPTY_HEADERS is the headers of a request that sent none: one frozen map for all of them. @internal */
export const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze(Object.create(null) as Record<string, string>);

/**
 * Admission is where checkRequest leaves what passed: the params as the handler gets them and the headers. One per
 * connection, read and emptied by the caller right away, so that a call makes no object of its own for it.
 * @internal
 */
export interface Admission {
  input: unknown;
  headers: Readonly<Record<string, string>>;
}

/** newAdmission makes an empty Admission. @internal */
export function newAdmission(): Admission {
  return { input: undefined, headers: EMPTY_HEADERS };
}

/**
 * checkRequest runs the checks for one request or notification; `stats` is what decoding its frame measured. It
 * writes the params as the handler gets them and the headers into `into`, or returns the refusal. @internal
 */
export function checkRequest(
  method: RegisteredMethod,
  params: unknown,
  rawHeaders: Record<string, string> | undefined,
  stats: DecodeStats,
  limits: RequestLimits,
  into: Admission,
): RpcError | undefined {
  const headers = rawHeaders === undefined ? EMPTY_HEADERS : checkHeaders(method.path, rawHeaders, limits);
  if (headers instanceof RpcError) return headers;
  const largestMap = stats.largestMap ?? 0;
  if (largestMap > limits.maxKeysPerMap) {
    return new RpcError('INVALID_ARGUMENT', `a map in the request for ${method.path} holds ${largestMap} keys, more than maxKeysPerMap ${limits.maxKeysPerMap}; send large collections as arrays`, { mayHaveRun: false, maxKeysPerMap: limits.maxKeysPerMap });
  }
  const parsed = parseParams(method, params, limits.validateParams);
  if (!parsed.ok) return parsed.error;
  into.input = parsed.input;
  into.headers = headers;
  return undefined;
}

// Counts and bytes are bounded because a running call keeps its headers until it ends.
function checkHeaders(path: string, raw: Record<string, string>, limits: RequestLimits): Readonly<Record<string, string>> | RpcError {
  const { maxHeaderCount, maxHeaderBytes } = limits;
  const headers = Object.create(null) as Record<string, string>;
  let count = 0;
  let size = 0;
  for (const name in raw) {
    const value = raw[name]!;
    if (++count > maxHeaderCount) {
      return new RpcError('INVALID_ARGUMENT', `the request for ${path} carries more than maxHeaderCount ${maxHeaderCount} headers`, { mayHaveRun: false, maxHeaderCount });
    }
    size += name.length + value.length;
    if (size > maxHeaderBytes) return headersTooLarge(path, maxHeaderBytes);
    const lower = lowerCaseHeaderName(name);
    if (lower in headers) {
      return new RpcError('INVALID_ARGUMENT', `the request for ${path} carries header ${quotePeerText(lower, 64)} twice (names are case-insensitive)`, { mayHaveRun: false });
    }
    headers[lower] = value;
  }
  // A string's length counts UTF-16 units; recount in UTF-8 bytes only when the quick sum is near the limit
  // (lower-casing A-Z keeps every name's length).
  if (size * 3 > maxHeaderBytes) {
    let bytes = 0;
    for (const name in headers) bytes += Buffer.byteLength(name) + Buffer.byteLength(headers[name]!);
    if (bytes > maxHeaderBytes) return headersTooLarge(path, maxHeaderBytes);
  }
  return headers;
}

function headersTooLarge(path: string, maxHeaderBytes: number): RpcError {
  return new RpcError('INVALID_ARGUMENT', `the headers of the request for ${path} exceed maxHeaderBytes ${maxHeaderBytes}`, { mayHaveRun: false, maxHeaderBytes });
}
