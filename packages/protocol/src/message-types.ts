/**
 * The shapes of wire-v1 messages (PROTOCOL.md "Messages"), apart from their codec (message.ts): a leaf module that
 * the codec and the hand-written envelope decoder both import.
 */
import type { GoawayCode, WireError } from './errors.js';

/** MessageType names the first element of every message array. */
export const MessageType = {
  Request: 0,
  Response: 1,
  Notification: 2,
  Cancel: 3,
  StreamMessage: 4,
  HalfClose: 5,
  Ping: 6,
  Pong: 7,
  Goaway: 8,
  Credit: 9,
} as const;

/** MAX_CREDIT is the most credit a stream may hold in one direction: 2^31-1 messages (PROTOCOL.md 12.3). */
export const MAX_CREDIT = 0x7fff_ffff;

/** RequestMeta is the optional fourth element of a request: a relative deadline and string headers. */
export interface RequestMeta {
  /** Relative deadline in whole milliseconds from the moment the server reads the request. */
  timeout?: number;
  /** Application headers, string to string (auth tokens, trace ids). */
  headers?: Record<string, string>;
  /** Stream opening only: the caller's first grant of server-to-client messages, 0 … 2^31-1 (PROTOCOL.md 12.3). */
  credit?: number;
  /** Stream opening only: the largest server-to-client stream message payload the caller accepts, in bytes. */
  maxMessageSize?: number;
}

/** RequestMessage asks the peer to run `method` and answer with a ResponseMessage of the same id. */
export interface RequestMessage { type: 0; id: number; method: string; params: unknown; meta?: RequestMeta }
/** ResponseMessage answers the request with the same id: `error` is undefined on success. */
export interface ResponseMessage { type: 1; id: number; error?: WireError; result: unknown }
/** NotificationMessage runs `method` without an answer. */
export interface NotificationMessage { type: 2; method: string; params: unknown; meta?: RequestMeta }
/** CancelMessage asks the server to abort the call with this id. */
export interface CancelMessage { type: 3; id: number }
/** StreamMessageMessage carries one stream message, either direction, spending one credit. */
export interface StreamMessageMessage { type: 4; id: number; message: unknown }
/** HalfCloseMessage says the client has sent its last stream message on stream `id`. */
export interface HalfCloseMessage { type: 5; id: number }
/** CreditMessage grants the peer `n` more stream messages; a server's first grant carries maxMessageSize. */
export interface CreditMessage { type: 9; id: number; n: number; maxMessageSize?: number }
/** PingMessage asks for a PongMessage carrying the same data. */
export interface PingMessage { type: 6; data: unknown }
/** PongMessage answers a ping. */
export interface PongMessage { type: 7; data: unknown }
/** GoawayMessage announces that the sender takes no request above lastId (see PROTOCOL.md "Goaway"). */
export interface GoawayMessage { type: 8; lastId: number; code: GoawayCode | string; message: string }

/** Message is any wire-v1 message. */
export type Message =
  | RequestMessage
  | ResponseMessage
  | NotificationMessage
  | CancelMessage
  | StreamMessageMessage
  | HalfCloseMessage
  | PingMessage
  | PongMessage
  | GoawayMessage
  | CreditMessage;
