/**
 * @tunnelrpc/protocol: what an application author needs from the pure half of tunnelrpc, whichever side they write.
 *
 * It holds the service contract helpers both sides share, the one error class and its closed code list, the call
 * shapes interceptors wrap, the built-in Health and Reflection contracts, and the defaults of the wire limits the
 * server and client options set. Nothing here opens a socket or starts a timer. The one process-wide state a caller
 * can observe is the ambient call that currentAmbientCall reads, kept on globalThis so that every copy of this
 * package shares it.
 *
 * The wire-v1 codec itself (frames, messages, the CONNECT handshake, credit, deadlines) is the subpath
 * `@tunnelrpc/protocol/internal`, for the server and client packages and for tests of peers in other languages.
 *
 * @example
 * import { z } from 'zod';
 * import { defineService } from '@tunnelrpc/protocol';
 *
 * export const Echo = defineService('Echo', {
 *   add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
 * });
 * // Server: rpc.register(Echo, { add: ({ a, b }) => a + b });
 * // Client: await createClient(Echo, client).add({ a: 1, b: 2 }); // 3
 */
// The public types use Buffer, AbortSignal and node: modules: this brings @types/node into a consumer's program
// whatever its `types` setting (TypeScript 7 defaults to none), so a strict project needs no setting for it.
/// <reference types="node" preserve="true" />
export { defineService } from './contract.js';
export type {
  ClientMessageOf,
  InputOf,
  MethodKind,
  ParsedClientMessageOf,
  ParsedServerMessageOf,
  ServerMessageOf,
  MethodSpec,
  OutputOf,
  ParsedInputOf,
  ReturnOf,
  ServiceContract,
  ExactMethods,
  ServiceMethods,
  WireIssue,
} from './contract.js';
export { ERROR_CODES, RpcError, isErrorCode } from './errors.js';
export type { ErrorCode, RpcErrorOptions } from './errors.js';
export { findBreakingChanges } from './breaking.js';
export type { BreakingChange } from './breaking.js';
export type { ContractSkew } from './contract-fingerprint.js';
export type { DeclaredCodeOf, DeclaredErrors, DeclaredRpcError, ErrorDataOf, MethodErrorOf } from './declared-errors.js';
export { escapePeerText, quotePeerText } from './peer-text.js';
export type { TcpInfo } from './tcp-info.js';
export { applyInterceptors } from './interceptor.js';
export type { CallFn, CallKind, CallSide, Interceptor, RpcCall, StreamCall, StreamWatcher, UnaryCall } from './interceptor.js';
export type { StreamKind } from './stream-state.js';
export type { CallObserver, CallType, ObservedMethod } from './observer.js';
export { currentAmbientCall } from './ambient.js';
export type { AmbientCall } from './ambient.js';
export { Health, Reflection, SERVING_STATUSES, UNREPRESENTABLE_KEY } from './builtin-services.js';
export type { MethodDescription, ServiceDescription, ServingStatus } from './builtin-services.js';
export { DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_ITEMS_PER_FRAME } from './limits.js';
export type { DecodeLimits } from './limits.js';
export { DEFAULT_MAX_STREAM_BUFFER, DEFAULT_MAX_STREAM_CREDIT, DEFAULT_MAX_STREAM_MESSAGE_SIZE } from './credit.js';
export type { StreamLimits } from './credit.js';
