/**
 * The client's sender: a message becomes a frame payload here, or the error that keeps it off the wire. Every
 * outgoing request, notification and stream message passes the same three checks (it encodes, it fits, the
 * server's decoder would take its shape), so the tunnel writes a payload only after this said yes.
 */
import { RpcError } from '@tunnelrpc/protocol';
import {
  encodePayloadParts,
  encodeRequestPayload,
  frameTooLarge,
  lastFlatPayloadDepth,
  lastFlatPayloadItems,
  payloadLength,
  scanMessagePack,
  scanParts,
  type Message,
  type PayloadParts,
} from '@tunnelrpc/protocol/internal';
import type { ResolvedClientOptions } from './options.js';

/** Outgoing names what is being sent: it picks the words of a refusal and whether the call may have run. @internal */
export type Outgoing = 'request' | 'notification' | 'stream message';

type SenderLimits = Pick<ResolvedClientOptions, 'maxFrameSize' | 'maxDepth' | 'maxItemsPerFrame'>;

/**
 * encodeOutgoing encodes `message` for `method` and checks it against `maxSize` (maxFrameSize, or the server's
 * maxMessageSize for a stream message) and the wire's shape limits. Returns the payload, or the error that keeps
 * it from being sent. A request or notification refused here did not run; a stream message refused here ends a
 * stream that did. Words are built only on refusal: the unary hot path allocates nothing here beyond the payload.
 * @internal
 */
export function encodeOutgoing(message: Message, what: Outgoing, method: string, maxSize: number, limits: SenderLimits): PayloadParts | RpcError {
  let payload: PayloadParts;
  try {
    payload = encodePayloadParts(message);
  } catch (error) {
    return unencodable(what, method, error);
  }
  return checkOutgoing(payload, what, method, maxSize, limits);
}

/**
 * encodeRequest is encodeOutgoing for a unary request whose meta is a timeout and headers: encoded from its parts,
 * with no message or meta object made per call. @internal
 */
export function encodeRequest(id: number, method: string, params: unknown, timeout: number, headers: Record<string, string> | undefined, maxSize: number, limits: SenderLimits): PayloadParts | RpcError {
  let payload: PayloadParts;
  try {
    payload = encodeRequestPayload(id, method, params, timeout, headers);
  } catch (error) {
    return unencodable('request', method, error);
  }
  return checkOutgoing(payload, 'request', method, maxSize, limits);
}

function unencodable(what: Outgoing, method: string, error: unknown): RpcError {
  const mayHaveRun = what === 'stream message';
  const text = mayHaveRun
    ? `a message for ${method} cannot be encoded (${(error as Error).message}); the stream was cancelled`
    : `${subject(what, method)} not sent: its params cannot be encoded (${(error as Error).message})`;
  return new RpcError('INVALID_ARGUMENT', text, { mayHaveRun }, { cause: error });
}

// It fits the size bound and the server's decoder would take its shape; else the refusal.
function checkOutgoing(payload: PayloadParts, what: Outgoing, method: string, maxSize: number, limits: SenderLimits): PayloadParts | RpcError {
  const mayHaveRun = what === 'stream message';
  const length = payloadLength(payload);
  if (length > maxSize) {
    if (mayHaveRun) {
      return new RpcError('RESOURCE_EXHAUSTED', `a message of ${length} bytes for ${method} exceeds the server's maxMessageSize ${maxSize}; send smaller messages or raise maxStreamMessageSize on the server. The stream was cancelled`, { mayHaveRun, size: length, maxMessageSize: maxSize });
    }
    const tooLarge = frameTooLarge(length, maxSize, 'sent');
    return new RpcError('RESOURCE_EXHAUSTED', `${subject(what, method)} not sent: ${tooLarge.message}`, { ...(tooLarge.data as object), mayHaveRun });
  }
  return refusedShape(what, method, payload, limits) ?? payload;
}

function subject(what: Outgoing, method: string): string {
  if (what === 'request') return method;
  return what === 'notification' ? `notification ${method}` : `a message for ${method}`;
}

// A payload the server's decoder would refuse (nesting deeper than maxDepth, more than maxItemsPerFrame values) is
// a violation there: it would close the tunnel under every other call. The same pre-scan the server runs, with our
// limits (the defaults match the server's), refuses it here for this message alone. Payloads that carry large
// values uncopied are scanned part by part: joining them cost a 64 KiB copy per call.
function refusedShape(what: Outgoing, method: string, payload: PayloadParts, limits: SenderLimits): RpcError | undefined {
  // A message the envelope wrote alone had its values and depth counted as it was written.
  const flatItems = lastFlatPayloadItems();
  if (flatItems >= 0 && flatItems <= limits.maxItemsPerFrame && lastFlatPayloadDepth() <= limits.maxDepth) return undefined;
  try {
    if (payload instanceof Uint8Array) scanMessagePack(payload, limits);
    else scanParts(payload, limits);
    return undefined;
  } catch (error) {
    const scan = RpcError.from(error, 'INTERNAL');
    const code = scan.code === 'RESOURCE_EXHAUSTED' ? 'RESOURCE_EXHAUSTED' : 'INVALID_ARGUMENT';
    const why = scan.message.replace(/^protocol violation: /, '');
    return new RpcError(code, `${subject(what, method)} not sent: its params break the wire limits (${why}); the server would close the tunnel for it. Send a flatter or smaller value, or raise maxDepth / maxItemsPerFrame on both peers`, { mayHaveRun: what === 'stream message' }, { cause: error });
  }
}
