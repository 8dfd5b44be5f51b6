/**
 * Byte helpers for the protocol unit tests: literal MessagePack and frame bytes are written as spaced hex, with a
 * comment per field, as in ws receiver.test.js.
 */

/** hex turns spaced hex such as `'dd ff ff ff ff'` into bytes. Whitespace is ignored; anything else must be hex. */
export function hex(text: string): Buffer {
  const digits = text.replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`hex(): not an even run of hex digits: ${text}`);
  return Buffer.from(digits, 'hex');
}

/** toHex renders bytes as spaced lower-case hex, which makes failed comparisons readable. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex').replace(/(..)(?=.)/g, '$1 ');
}

/** repeat returns `count` copies of `bytes` back to back. */
export function repeat(bytes: Uint8Array, count: number): Buffer {
  const out = Buffer.allocUnsafe(bytes.length * count);
  for (let i = 0; i < count; i++) out.set(bytes, i * bytes.length);
  return out;
}

/** str encodes a short string (under 32 bytes) as a MessagePack fixstr, header byte included. */
export function str(text: string): Buffer {
  const utf8 = Buffer.from(text, 'utf8');
  if (utf8.length > 31) throw new Error('str(): fixstr holds at most 31 bytes');
  return Buffer.concat([Buffer.from([0xa0 | utf8.length]), utf8]);
}
