/**
 * The payloads every peer echoes: opaque bytes of a fixed size, the same bytes in every process of a run.
 */

/** PAYLOAD_BYTES maps each payload name of the CLI to its size in bytes. */
export const PAYLOAD_BYTES = { small: 32, '1k': 1024, '64k': 65_536 } as const;

/** PayloadName is a payload the CLI accepts: small, 1k or 64k. */
export type PayloadName = keyof typeof PAYLOAD_BYTES;

/** isPayloadName tells whether `name` is one of PAYLOAD_BYTES. */
export function isPayloadName(name: string): name is PayloadName {
  return Object.hasOwn(PAYLOAD_BYTES, name);
}

/**
 * createPayload returns `bytes` bytes of a fixed pseudo-random pattern (xorshift32), so no compression or
 * run-length trick in any stack can make one peer's payload cheaper than another's.
 */
export function createPayload(bytes: number): Buffer {
  const payload = Buffer.allocUnsafe(bytes);
  let state = 0x9e3779b9;
  for (let i = 0; i < bytes; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    payload[i] = state & 0xff;
  }
  return payload;
}
