/**
 * @tunnelrpc/protocol: the pure half of tunnelrpc. Bytes in, messages out; no sockets, no timers.
 *
 * It holds the service contract helpers both sides share, the one error class and its closed code list, and the
 * wire-v1 codec (frames, messages, the CONNECT handshake) that PROTOCOL.md specifies.
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
export { defineService, methodKind, methodPath } from './contract.js';
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
export { ERROR_CODES, RpcError, codeFromHttpStatus, isErrorCode } from './errors.js';
export { findBreakingChanges } from './breaking.js';
export { CONTRACT_HEADER, CONTRACT_SKEW_HEADER, describeSkew, encodeContractHeader, encodeSkewHeader, fingerprintMethod, parseContractHeader, parseSkewHeader } from './contract-fingerprint.js';
export type { ContractSkew } from './contract-fingerprint.js';
export type { BreakingChange } from './breaking.js';
export type { DeclaredCodeOf, DeclaredErrors, DeclaredRpcError, ErrorDataOf, MethodErrorOf } from './declared-errors.js';
export { escapePeerText, lowerCaseHeaderName, quotePeerText } from './peer-text.js';
export { TCP_INFO_MIN_SIZE, parseTcpInfo } from './tcp-info.js';
export type { TcpInfo } from './tcp-info.js';
export type { ErrorCode, GoawayCode, RpcErrorOptions, WireError } from './errors.js';
export { applyInterceptors } from './interceptor.js';
export type { CallFn, CallKind, CallSide, Interceptor, RpcCall, StreamCall, StreamWatcher, UnaryCall } from './interceptor.js';
export { currentAmbientCall } from './ambient.js';
export { Health, Reflection, SERVING_STATUSES, UNREPRESENTABLE_KEY, describeMethod } from './builtin-services.js';
export type { MethodDescription, ServiceDescription, ServingStatus } from './builtin-services.js';
export type { AmbientCall } from './ambient.js';

// ---- Building blocks for the server and client packages and for other implementations' tests. ----
export { ambientCalls, ambientCallsWanted, enableAmbientCalls } from './ambient.js';
export { checkInterceptors, splitMethod } from './interceptor.js';
export { formatIssues, parseWithSchema, summarizeIssues } from './contract.js';
export { checkReceivedError, checkThrownError } from './declared-errors.js';
export { findWireProblem, fromWireValue, hasWireMapping, toWireValue } from './wire-values.js';
export type { WireProblem } from './wire-values.js';
export { fromWireError, goawayCodeOf, protocolViolation, toWireError } from './errors.js';
export { FRAME_HEADER_SIZE, FrameDecoder, encodeFrame, frameTooLarge } from './frame.js';
export {
  CONNECTED_RESPONSE,
  DEFAULT_MAX_HEAD_SIZE,
  DEFAULT_RPC_PATH,
  SERVER_MARKER_HEADER,
  SERVER_MARKER_VALUE,
  SWITCHING_RESPONSE,
  UPGRADE_TOKEN,
  encodeConnectRequest,
  encodeProxyConnectRequest,
  encodeUpgradeRequest,
  isTunnelrpcReply,
  parseResponseHead,
} from './handshake.js';
export type { ResponseHead } from './handshake.js';
export { PROXY_V1_MAX_LENGTH, parseProxyHeader } from './proxy-header.js';
export type { ParsedProxyHeader, ProxyHeader } from './proxy-header.js';
export {
  DEFAULT_DECODE_LIMITS,
  DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_MAX_ITEMS_PER_FRAME,
  MAX_UINT32,
  definedOnly,
  resolveDecodeLimits,
} from './limits.js';
export {
  MAX_TIMER_MS,
  checkBoolean,
  checkDuration,
  checkFunction,
  checkFunctionList,
  checkInteger,
  checkOneOf,
  checkString,
  describeOptionValue,
  optionError,
  orDefault,
} from './option-checks.js';
export type { DecodeLimits } from './limits.js';
export { MAX_CREDIT, MAX_PING_DATA_BYTES, MessageType, decodeFrame, decodeMessage, encodeMessage, encodePayload, encodePayloadParts, encodePongPayload, encodeResultPayload, encodeStreamMessagePayload, isPlainMap, lastPayloadIsFlat } from './message.js';
export { FLAT_MAX_ITEMS, payloadLength } from './envelope.js';
export type { PayloadParts } from './envelope.js';
export { FrameBatcher } from './batch.js';
export { Deadlines } from './deadlines.js';
export type { DeadlineGroup, DeadlineMember, TimerFunctions } from './deadlines.js';
export type { BatchSink } from './batch.js';
export { CreditLedger, DEFAULT_MAX_STREAM_BUFFER, DEFAULT_MAX_STREAM_CREDIT, DEFAULT_MAX_STREAM_MESSAGE_SIZE, resolveStreamLimits } from './credit.js';
export type { StreamLimits } from './credit.js';
export type { Grant } from './credit.js';
export { StreamState, clientSends, serverSends } from './stream-state.js';
export type { StreamKind, StreamSide, Verdict } from './stream-state.js';
export { MessageQueue } from './message-queue.js';
export type { MessageQueueHooks } from './message-queue.js';
export type {
  CancelMessage,
  CreditMessage,
  DecodeStats,
  HalfCloseMessage,
  StreamMessageMessage,
  GoawayMessage,
  Message,
  NotificationMessage,
  PingMessage,
  PongMessage,
  RequestMessage,
  RequestMeta,
  ResponseMessage,
} from './message.js';
export { scanMessagePack, scanParts } from './prescan.js';
export type { ScanStats } from './prescan.js';
