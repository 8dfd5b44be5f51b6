/**
 * Byte builders: literal MessagePack and frame bytes are written as spaced hex, with a comment per field, as in ws
 * receiver.test.js.
 */
import { MessageType, encodeFrame, encodeMessage } from '@tunnelrpc/protocol/internal';

/**
 * hex turns spaced hex such as `'dd ff ff ff ff'` into bytes. Whitespace is ignored and `//` starts a comment that
 * runs to the end of the line, so a field per line can say what it is; anything else must be hex.
 */
export function hex(text: string): Buffer {
  const digits = text.replace(/\/\/[^\n]*/g, '').replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`hex(): not an even run of hex digits: ${text}`);
  return Buffer.from(digits, 'hex');
}

/** toHex renders bytes as spaced lower-case hex, which makes failed comparisons readable. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex').replace(/(..)(?=.)/g, '$1 ');
}

/** frame prefixes a payload with its 4-byte big-endian length. */
export function frame(payload: Uint8Array): Buffer {
  return encodeFrame(payload);
}

/** repeat returns `count` copies of `bytes` back to back. */
export function repeat(bytes: Uint8Array, count: number): Buffer {
  const out = Buffer.allocUnsafe(bytes.length * count);
  for (let i = 0; i < count; i++) out.set(bytes, i * bytes.length);
  return out;
}

/** fixstr encodes a string of at most 31 bytes as a MessagePack fixstr (a0-bf), header byte included. */
export function fixstr(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > 31) throw new Error(`fixstr(): ${bytes.length} bytes do not fit`);
  return Buffer.concat([Buffer.from([0xa0 | bytes.length]), bytes]);
}

/** packValue returns the MessagePack bytes of one value, as the protocol package writes it. */
export function packValue(value: unknown): Buffer {
  // A pong frame is: 4 length bytes, 92 (array of 2), 07 (type), then the value.
  return encodeMessage({ type: MessageType.Pong, data: value }).subarray(6);
}

/**
 * rawRequest returns the frame of `[0, id, method, params, ...meta]` where each field is raw MessagePack bytes when
 * a Buffer is passed, and packed as the protocol package packs it otherwise. It puts hostile bytes in one field of
 * an otherwise valid request; extra trailing fields make a request of the wrong length.
 */
export function rawRequest(id: unknown, method: unknown, params: unknown, ...meta: unknown[]): Buffer {
  const field = (value: unknown): Buffer => (Buffer.isBuffer(value) ? value : packValue(value));
  const fields = [0, id, method, params, ...meta].map(field);
  return frame(Buffer.concat([Buffer.from([0x90 | fields.length]), ...fields]));
}
