/**
 * @tunnelrpc/protocol/internal: the building blocks of wire-v1 under the public surface. It is for the server and
 * client packages, for the workspace's test kit, and for the tests of a peer written in another language that
 * wants the reference codec beside PROTOCOL.md. It carries no semver promise: any release may rename, change or
 * remove what is here, so an application imports `@tunnelrpc/protocol` instead.
 *
 * Like the root, nothing here opens a socket or loads native code: readTcpInfo calls the getsockopt its caller
 * binds. Two blocks touch time: Deadlines runs on the timer functions it is handed, and FrameBatcher flushes at the
 * end of the current tick (process.nextTick). The ambient-call store is the process-wide one the root's
 * currentAmbientCall reads.
 */
// The types use Buffer and node: modules: this brings @types/node into a consumer's program whatever its `types`
// setting (TypeScript 7 defaults to none).
/// <reference types="node" preserve="true" />

// ---- Contracts: method names and kinds, schema checks and what they report. ----
export { methodKind, methodPath, formatIssues, parseWithSchema, summarizeIssues } from './contract.js';
export { describeMethod } from './builtin-services.js';
export { editDistance } from './edit-distance.js';
export { checkReceivedError, checkThrownError } from './declared-errors.js';
export { findWireProblem, fromWireValue, hasWireMapping, toWireValue } from './wire-values.js';
export type { WireProblem } from './wire-values.js';
export {
  CONTRACT_HEADER,
  CONTRACT_SKEW_HEADER,
  describeSkew,
  encodeContractHeader,
  encodeSkewHeader,
  fingerprintMethod,
  parseContractHeader,
  parseSkewHeader,
} from './contract-fingerprint.js';

// ---- Errors on the wire. ----
export { codeFromHttpStatus, fromWireError, goawayCodeOf, protocolViolation, toWireError } from './errors.js';
export type { GoawayCode, WireError } from './errors.js';
export { lowerCaseHeaderName } from './peer-text.js';

// ---- Interceptors and the ambient call. ----
export { checkInterceptors, splitMethod } from './interceptor.js';
export { ambientCalls, ambientCallsWanted, enableAmbientCalls } from './ambient.js';

// ---- Options: limits and their checks. ----
export { DEFAULT_DECODE_LIMITS, MAX_UINT32, definedOnly, resolveDecodeLimits } from './limits.js';
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

// ---- Frames, messages and their payloads. ----
export { FRAME_HEADER_SIZE, FrameDecoder, encodeFrame, frameTooLarge } from './frame.js';
export {
  MAX_CREDIT,
  MAX_PING_DATA_BYTES,
  MessageType,
  decodeFrame,
  decodeMessage,
  encodeMessage,
  encodePayload,
  encodePayloadParts,
  encodePongPayload,
  encodeRequestPayload,
  encodeResultPayload,
  encodeStreamMessagePayload,
  isPlainMap,
  lastFlatPayloadDepth,
  lastFlatPayloadItems,
} from './message.js';
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
export { payloadLength } from './envelope.js';
export type { PayloadParts } from './envelope.js';
export { scanMessagePack, scanParts } from './prescan.js';
export type { ScanStats } from './prescan.js';
export { FrameBatcher } from './batch.js';
export type { BatchSink } from './batch.js';

// ---- The CONNECT handshake and the PROXY protocol header. ----
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

// ---- Streams: credit, state and the message queue; deadlines. ----
export { CreditLedger, resolveStreamLimits } from './credit.js';
export type { Grant } from './credit.js';
export { StreamState, clientSends, serverSends } from './stream-state.js';
export type { StreamSide, Verdict } from './stream-state.js';
export { MessageQueue } from './message-queue.js';
export type { MessageQueueHooks } from './message-queue.js';
export { Deadlines } from './deadlines.js';
export type { DeadlineGroup, DeadlineMember, TimerFunctions } from './deadlines.js';

// ---- Socket facts: TCP_INFO as the kernel lays it out, read through the getsockopt a caller hands in. ----
export { TCP_INFO_MIN_SIZE, parseTcpInfo, readTcpInfo } from './tcp-info.js';
export type { GetSockOpt } from './tcp-info.js';

// ---- Call observers: the pipeline's metrics stage, run by the server and the client. ----
export { CALL_TYPES, Observers, callTypeOf, checkObservers, observedMethod } from './observer.js';
