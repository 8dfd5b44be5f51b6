/**
 * Over 400 lines: the encoders and the checking decoder of all ten message types belong together, as one reading
 * of the wire table below; the hand-written hot paths already live in envelope.ts and envelope-decoder.ts.
 *
 * Messages (PROTOCOL.md "Messages"). Each frame payload is one MessagePack array whose first element is its type:
 *
 *   [0, id, method, params, meta?]   request       id: uint32, method: "Service.method", meta: {timeout?, headers?}
 *   [1, id, error, result]           response      error: nil on success, else {code, message, data?, mayHaveRun?}
 *   [2, method, params, meta?]       notification  never answered
 *   [3, id]                          cancel
 *   [4, id, message]                 stream message  either direction, within the receiver's credit
 *   [5, id]                          half-close      the client has sent its last stream message
 *   [6, data]                        ping          answered by a pong with the same data
 *   [7, data]                        pong
 *   [8, lastId, code, message]       goaway        code: PROTOCOL_ERROR | RESOURCE_EXHAUSTED | UNAVAILABLE
 *   [9, id, n, maxMessageSize?]      credit        n: 1 … 2^31-1 more stream messages; maxMessageSize on a first grant
 *
 * Streams (types 4, 5, 9 and the request meta keys credit / maxMessageSize) are PROTOCOL.md section 12. Only standard
 * MessagePack is written: no msgpackr records, bundled strings or class extensions. An object property holding
 * `undefined` is left out; any other `undefined` is written as nil.
 */
import { Packr, Unpackr, type Options } from 'msgpackr';
import { EnvelopeEncoder, type PayloadParts } from './envelope.js';
import { RpcError, protocolViolation, type GoawayCode, type WireError } from './errors.js';
import { FRAME_HEADER_SIZE } from './frame.js';
import { DEFAULT_DECODE_LIMITS, MAX_UINT32, type DecodeLimits } from './limits.js';
import { readHotMessage } from './envelope-decoder.js';
import { scanFrame } from './prescan.js';

import { MAX_CREDIT, MessageType, type CreditMessage, type Message, type NotificationMessage, type RequestMessage, type RequestMeta } from './message-types.js';
export { MAX_CREDIT, MessageType } from './message-types.js';
export type { RequestMeta, RequestMessage, ResponseMessage, NotificationMessage, CancelMessage, StreamMessageMessage, HalfCloseMessage, CreditMessage, PingMessage, PongMessage, GoawayMessage, Message } from './message-types.js';

// Packing never holds state across messages (no records, no shared structures), so one instance serves all.
// skipValues is missing from msgpackr's Options type, hence the wider type.
const packrOptions: Options & { skipValues: unknown[] } = {
  useRecords: false,
  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
  encodeUndefinedAsNil: true,
  // JSON semantics: an object property holding undefined is left out, so `{ cursor: undefined }` arrives
  // as `{}` and an optional field parses. Array elements and top-level values have no "absent": they stay nil.
  skipValues: [undefined],
  // Whatever the decoder produced must encode again: a decoded map may hold a key "toJSON" that is not a
  // function, which msgpackr would call, and more than 65,535 keys, which its fast path cannot size.
  useToJSON: false,
  variableMapSize: true,
  // msgpackr writes an Invalid Date as the 1-byte timestamp d4 ff ff, which no peer may accept (wire-v1 allows 4,
  // 8 or 12 bytes; our pre-scan refuses it). Sent, it would take the whole tunnel down with goaway PROTOCOL_ERROR;
  // refused here, only the one call fails (INVALID_ARGUMENT unsent, or INTERNAL for a handler's result).
  onInvalidDate: () => {
    throw new TypeError('an Invalid Date has no MessagePack timestamp form');
  },
};
const packr = new Packr(packrOptions);

const envelope = new EnvelopeEncoder(packr);

// The decoder configuration SECURITY.md relies on. It holds no state across frames; the pre-scan refuses
// what msgpackr cannot be told to refuse. 'auto' (a Number up to 2^53, a BigInt above) is missing from the
// .d.ts union, hence the cast.
const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  structuredClone: false,
  moreTypes: false,
  copyBuffers: true,
  int64AsType: 'auto' as 'bigint',
});

// In frames this large, byte arrays are views of the frame rather than copies: the frame buffer belongs to this
// message alone (the decoder never reuses it), and copying 64 KiB values again costs more than it saves. A kept
// byte array then keeps at most its own frame alive; in smaller frames it is copied so that it does not pin a
// whole socket chunk.
const VIEW_FRAME_BYTES = 64 * 1024;
const viewUnpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  structuredClone: false,
  moreTypes: false,
  copyBuffers: false,
  int64AsType: 'auto' as 'bigint',
});

/** toTuple lays a message out as its wire array. */
function toTuple(message: Message): unknown[] {
  switch (message.type) {
    case MessageType.Request:
      return message.meta === undefined
        ? [0, message.id, message.method, message.params]
        : [0, message.id, message.method, message.params, message.meta];
    case MessageType.Response:
      return [1, message.id, message.error ?? null, message.error === undefined ? message.result : null];
    case MessageType.Notification:
      return message.meta === undefined
        ? [2, message.method, message.params]
        : [2, message.method, message.params, message.meta];
    case MessageType.Cancel:
      return [3, message.id];
    case MessageType.StreamMessage:
      return [4, message.id, message.message];
    case MessageType.HalfClose:
      return [5, message.id];
    case MessageType.Ping:
      return [6, message.data];
    case MessageType.Pong:
      return [7, message.data];
    case MessageType.Goaway:
      return [8, message.lastId, message.code, message.message];
    case MessageType.Credit:
      return message.maxMessageSize === undefined ? [9, message.id, message.n] : [9, message.id, message.n, message.maxMessageSize];
  }
}

/**
 * encodeMessage returns the whole frame for a message: the 4-byte length, then the MessagePack array. The caller
 * compares `frame.length - 4` with the peer's maxFrameSize before writing. Throws RpcError INVALID_ARGUMENT when
 * a value cannot be encoded, such as a symbol or a BigInt beyond 64 bits.
 */
export function encodeMessage(message: Message): Buffer {
  const payload = encodePayload(message);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.set(payload, FRAME_HEADER_SIZE);
  return frame;
}

/**
 * encodePayload returns a message's MessagePack bytes without the length prefix, for a FrameBatcher. The bytes may
 * share an ArrayBuffer with other payloads; they are never written to again. Throws RpcError INVALID_ARGUMENT when a
 * value cannot be encoded.
 */
export function encodePayload(message: Message): Uint8Array {
  const parts = encodePayloadParts(message);
  return parts instanceof Uint8Array ? parts : Buffer.concat(parts);
}

/**
 * encodePayloadParts is encodePayload for a FrameBatcher: a large byte array in params or a result is not copied
 * but becomes a part of its own (PayloadParts), so it must not change until the call ends.
 */
export function encodePayloadParts(message: Message): PayloadParts {
  lastFlatItems = -1;
  try {
    let payload: PayloadParts;
    // A stream opening's meta holds more than the envelope writes; it goes through msgpackr like the rest.
    if (message.type === MessageType.Request && message.meta?.credit === undefined && message.meta?.maxMessageSize === undefined) {
      payload = envelope.request(message.id, message.method, message.params, message.meta?.timeout, message.meta?.headers);
    } else if (message.type === MessageType.Response && message.error === undefined) {
      payload = envelope.result(message.id, message.result);
    } else if (message.type === MessageType.StreamMessage) {
      payload = envelope.streamMessage(message.id, message.message);
    } else {
      return packr.pack(toTuple(message));
    }
    noteFlat();
    return payload;
  } catch (error) {
    throw encodeError(error);
  }
}

let lastFlatItems = -1;
let lastFlatDepth = 0;

function noteFlat(): void {
  lastFlatItems = envelope.flat ? envelope.items : -1;
  lastFlatDepth = envelope.depth;
}

/**
 * encodeRequestPayload is encodePayloadParts for a unary request `[0, id, method, params, meta]` whose meta holds
 * only a timeout and headers, written straight from its parts: the hot path of every call, with no message or
 * meta object made for it.
 */
export function encodeRequestPayload(id: number, method: string, params: unknown, timeout: number | undefined, headers: Record<string, string> | undefined): PayloadParts {
  try {
    const payload = envelope.request(id, method, params, timeout, headers);
    noteFlat();
    return payload;
  } catch (error) {
    lastFlatItems = -1;
    throw encodeError(error);
  }
}

/**
 * encodeResultPayload is encodePayloadParts for a successful response `[1, id, nil, result]`, written straight
 * from its parts: the hot path of every answered call, with no message object made for it.
 */
export function encodeResultPayload(id: number, result: unknown): PayloadParts {
  try {
    const payload = envelope.result(id, result);
    noteFlat();
    return payload;
  } catch (error) {
    lastFlatItems = -1;
    throw encodeError(error);
  }
}

/** encodeStreamMessagePayload is encodePayloadParts for a stream message `[4, id, message]`, from its parts. */
export function encodeStreamMessagePayload(id: number, message: unknown): PayloadParts {
  try {
    const payload = envelope.streamMessage(id, message);
    noteFlat();
    return payload;
  } catch (error) {
    lastFlatItems = -1;
    throw encodeError(error);
  }
}

/**
 * lastFlatPayloadItems counts the MessagePack values of the last payload encoded here when the envelope wrote it
 * alone (envelope, scalars, strings, byte arrays and plain objects of those), so that a sender can check it against
 * a peer's limits without scanning it; -1 for any other payload. @internal
 */
export function lastFlatPayloadItems(): number {
  return lastFlatItems;
}

/** lastFlatPayloadDepth is how deep that payload nests (2, or 3 with request headers). @internal */
export function lastFlatPayloadDepth(): number {
  return lastFlatDepth;
}

// msgpackr's RangeError for a bigint outside 64 bits advises options we do not use; say what the caller can do.
const BIGINT_RANGE = /too large to fit in MessagePack 64-bit integer/;

function encodeError(error: unknown): RpcError {
  if (error instanceof RangeError && BIGINT_RANGE.test(error.message)) {
    return new RpcError(
      'INVALID_ARGUMENT',
      'value cannot be encoded as MessagePack: a bigint outside -2^63 … 2^64-1 has no integer form and was not sent; send it as a string (z.string()) or bytes',
      undefined,
      { cause: error },
    );
  }
  return new RpcError('INVALID_ARGUMENT', `value cannot be encoded as MessagePack: ${error instanceof Error ? error.message : 'unsupported value'}`, undefined, { cause: error });
}

/** DecodeStats receives what decodeMessage measured: the MessagePack values in the frame (its decoded size). */
export interface DecodeStats {
  items: number;
  /** Entries of the largest map in the frame (a map's key count drives the cost of validating it). */
  largestMap?: number;
}

/**
 * decodeMessage turns one frame payload into a Message, after the pre-scan and shape checks of wire-v1. Throws an
 * RpcError for a violation: RESOURCE_EXHAUSTED over maxItemsPerFrame, INTERNAL (protocol error) for anything else.
 * Messages never quote the peer's bytes.
 */
export function decodeMessage(payload: Uint8Array, limits: DecodeLimits = DEFAULT_DECODE_LIMITS, stats?: DecodeStats): Message {
  return decodeFrame(payload, 0, payload.length, limits, stats);
}

/**
 * decodeFrame is decodeMessage for the payload at `bytes[start, end)`, read where it lies in a received chunk:
 * no view per frame. Byte arrays in the message are copies, or views of `bytes` for frames of 64 KiB or more.
 */
export function decodeFrame(bytes: Uint8Array, start: number, end: number, limits: DecodeLimits = DEFAULT_DECODE_LIMITS, stats?: DecodeStats): Message {
  const items = scanFrame(bytes, start, end, limits, stats as { largestMap: number } | undefined);
  if (stats !== undefined) stats.items = items;
  const decoder = end - start >= VIEW_FRAME_BYTES ? viewUnpackr : unpackr;
  let value: unknown;
  try {
    const hot = readHotMessage(bytes, start, end, decoder, parseMeta);
    if (hot !== undefined) return hot;
    value = decoder.unpack(bytes, { start, end });
  } catch (error) {
    if (error instanceof RpcError) throw error;
    // msgpackr messages can embed up to 100 characters of peer data: never pass them on.
    throw protocolViolation('the frame is not a valid MessagePack value');
  }
  return toMessage(value);
}

function toMessage(value: unknown): Message {
  if (!Array.isArray(value) || value.length === 0) throw protocolViolation('a message must be a non-empty array');
  const type: unknown = value[0];
  switch (type) {
    case MessageType.Request: {
      arity(value, 4, 5, 'request [0, id, method, params, meta?]');
      const meta = parseMeta(value[4]);
      const request: RequestMessage = { type: 0, id: uint32(value[1], 'request id'), method: methodName(value[2]), params: value[3] };
      if (meta !== undefined) request.meta = meta;
      return request;
    }
    case MessageType.Response: {
      arity(value, 4, 4, 'response [1, id, error, result]');
      const id = uint32(value[1], 'response id');
      const error = value[2];
      if (error === null || error === undefined) return { type: 1, id, result: value[3] };
      return { type: 1, id, error: wireError(error), result: undefined };
    }
    case MessageType.Notification: {
      arity(value, 3, 4, 'notification [2, method, params, meta?]');
      const meta = parseMeta(value[3]);
      const notification: NotificationMessage = { type: 2, method: methodName(value[1]), params: value[2] };
      if (meta !== undefined) notification.meta = meta;
      return notification;
    }
    case MessageType.Cancel:
      arity(value, 2, 2, 'cancel [3, id]');
      return { type: 3, id: uint32(value[1], 'cancel id') };
    case MessageType.Ping:
      arity(value, 2, 2, 'ping [6, data]');
      return { type: 6, data: value[1] };
    case MessageType.Pong:
      arity(value, 2, 2, 'pong [7, data]');
      return { type: 7, data: value[1] };
    case MessageType.Goaway: {
      arity(value, 4, 4, 'goaway [8, lastId, code, message]');
      const code = value[2];
      const message = value[3];
      if (typeof code !== 'string') throw protocolViolation('goaway code must be a string');
      if (typeof message !== 'string') throw protocolViolation('goaway message must be a string');
      return { type: 8, lastId: uint32(value[1], 'goaway lastId'), code, message };
    }
    case MessageType.StreamMessage:
      arity(value, 3, 3, 'stream message [4, id, message]');
      return { type: 4, id: uint32(value[1], 'stream message id'), message: value[2] };
    case MessageType.HalfClose:
      arity(value, 2, 2, 'half-close [5, id]');
      return { type: 5, id: uint32(value[1], 'half-close id') };
    case MessageType.Credit: {
      arity(value, 3, 4, 'credit [9, id, n, maxMessageSize?]');
      const credit: CreditMessage = { type: 9, id: uint32(value[1], 'credit id'), n: grant(value[2]) };
      if (value[3] !== undefined && value[3] !== null) credit.maxMessageSize = messageSize(value[3], 'credit maxMessageSize');
      return credit;
    }
    default:
      throw protocolViolation('unknown message type; wire-v1 defines 0 to 9');
  }
}

/** MAX_PING_DATA_BYTES bounds the encoded `data` of a ping (PROTOCOL.md 5.5): a pong is never a large frame. */
export const MAX_PING_DATA_BYTES = 1024;

/**
 * encodePongPayload answers a ping payload (already decoded as a valid ping) with the pong payload `[7, data]`,
 * carrying the ping's data as the very bytes that came in. Re-encoding a decoded value can fail (a map with a key
 * "toJSON") or grow it (invalid UTF-8 decodes to U+FFFD, 3 bytes for each 1); echoing the bytes can do neither, so
 * a pong is never larger than its ping. Throws a protocol violation when the data exceeds MAX_PING_DATA_BYTES.
 */
export function encodePongPayload(ping: Uint8Array): Uint8Array {
  // The ping is an array of 2 (fixarray, array16 or array32 header), then the type 6 as any integer or float form.
  let at = ping[0] === 0x92 ? 1 : ping[0] === 0xdc ? 3 : 5;
  at += scalarLength(ping[at]!);
  const dataLength = ping.length - at;
  if (dataLength > MAX_PING_DATA_BYTES) {
    throw protocolViolation(`ping data of ${dataLength} bytes exceeds ${MAX_PING_DATA_BYTES}; ping with a small value such as an integer`);
  }
  const pong = new Uint8Array(2 + dataLength);
  pong[0] = 0x92;
  pong[1] = MessageType.Pong;
  pong.set(ping.subarray(at), 2);
  return pong;
}

// Encoded length of a MessagePack number that starts with `first` (the pre-scan has checked the frame already).
function scalarLength(first: number): number {
  switch (first) {
    case 0xcc: case 0xd0: return 2;
    case 0xcd: case 0xd1: return 3;
    case 0xca: case 0xce: case 0xd2: return 5;
    case 0xcb: case 0xcf: case 0xd3: return 9;
    default: return 1;
  }
}

function arity(value: unknown[], min: number, max: number, shape: string): void {
  if (value.length < min || value.length > max) {
    throw protocolViolation(`a ${shape} has ${value.length} elements`);
  }
}

function uint32(value: unknown, what: string): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_UINT32) return value;
  throw protocolViolation(`${what} must be an unsigned 32-bit integer`);
}

// PROTOCOL.md 12.3: a grant adds 1 … 2^31-1 messages; a grant of 0 is a violation (it would be a no-op that costs
// a frame, and a peer that sends one has miscounted).
function grant(value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_CREDIT) return value;
  throw protocolViolation('credit n must be an integer from 1 to 2147483647');
}

function messageSize(value: unknown, what: string): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_UINT32) return value;
  throw protocolViolation(`${what} must be an integer from 1 to 4294967295`);
}

function methodName(value: unknown): string {
  if (typeof value !== 'string') throw protocolViolation('method must be a string');
  return value;
}

/** isMap tells whether a decoded value came from a MessagePack map (msgpackr gives plain objects). */
export function isPlainMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date) && !(value instanceof Uint8Array);
}

function parseMeta(value: unknown): RequestMeta | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isPlainMap(value)) throw protocolViolation('meta must be a map');
  const meta: RequestMeta = {};
  const timeout = value['timeout'];
  if (timeout !== undefined && timeout !== null) {
    if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0) {
      throw protocolViolation('meta.timeout must be a non-negative integer of milliseconds');
    }
    meta.timeout = timeout;
  }
  const headers = value['headers'];
  if (headers !== undefined && headers !== null) {
    if (!isPlainMap(headers)) throw protocolViolation('meta.headers must be a map of strings to strings');
    const copy: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [name, text] of Object.entries(headers)) {
      if (typeof text !== 'string') throw protocolViolation('meta.headers must be a map of strings to strings');
      copy[name] = text;
    }
    meta.headers = copy;
  }
  const credit = value['credit'];
  if (credit !== undefined && credit !== null) {
    if (typeof credit !== 'number' || !Number.isInteger(credit) || credit < 0 || credit > MAX_CREDIT) {
      throw protocolViolation('meta.credit must be an integer from 0 to 2147483647');
    }
    meta.credit = credit;
  }
  const size = value['maxMessageSize'];
  if (size !== undefined && size !== null) meta.maxMessageSize = messageSize(size, 'meta.maxMessageSize');
  return meta;
}

function wireError(value: unknown): WireError {
  if (!isPlainMap(value) || typeof value['code'] !== 'string' || typeof value['message'] !== 'string') {
    throw protocolViolation('a response error must be a map with string code and message');
  }
  const error: WireError = { code: value['code'], message: value['message'] };
  if (value['data'] !== undefined && value['data'] !== null) error.data = value['data'];
  // Any other value under mayHaveRun is ignored, as unknown keys are (PROTOCOL.md 5.2).
  if (typeof value['mayHaveRun'] === 'boolean') error.mayHaveRun = value['mayHaveRun'];
  return error;
}
