/**
 * Framing (PROTOCOL.md "Frames"). Every message travels as one frame:
 *
 *   offset 0   uint32 big-endian L   payload length, 1 <= L <= maxFrameSize
 *   offset 4   L bytes               exactly one MessagePack value
 *
 * The decoder is pure (bytes in, payloads out) and takes any split of the stream: one byte at a time, many frames
 * in one chunk, a frame spanning chunks.
 */
import { RpcError, protocolViolation } from './errors.js';
import { DEFAULT_MAX_FRAME_SIZE } from './limits.js';

/** FRAME_HEADER_SIZE is the length of the frame prefix in bytes. */
export const FRAME_HEADER_SIZE = 4;

// A partial frame starts with a buffer this small and doubles as bytes arrive, so a header that declares 8 MiB
// and then stalls pins 128 KiB, not 8 MiB (SECURITY.md, case T2). 128 KiB, not 64: a 64 KiB value
// plus its envelope then fits the first buffer instead of being copied into a second.
const INITIAL_PARTIAL_CAPACITY = 128 * 1024;

/** encodeFrame prefixes a payload with its length. It does not check maxFrameSize; the sender does. */
export function encodeFrame(payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.set(payload, FRAME_HEADER_SIZE);
  return frame;
}

/** frameTooLarge builds the RESOURCE_EXHAUSTED error for a frame over the limit, naming size, limit and fix. */
export function frameTooLarge(size: number, maxFrameSize: number, side: 'received' | 'sent'): RpcError {
  return new RpcError(
    'RESOURCE_EXHAUSTED',
    `frame of ${size} bytes ${side === 'received' ? 'received' : 'to send'} exceeds maxFrameSize ${maxFrameSize}; ` +
      'raise maxFrameSize on both peers or send smaller values',
    { size, maxFrameSize },
  );
}

/**
 * FrameDecoder splits a byte stream into frame payloads. It keeps at most one partial frame in one contiguous
 * buffer (never a list of chunks), and checks each length prefix before allocating anything for it.
 */
export class FrameDecoder {
  readonly #maxFrameSize: number;
  // A length prefix split across chunks is gathered here as a number: no buffer per decoder (idle tunnels).
  #header = 0;
  #headerFill = 0;
  // Declared length of the frame being assembled, or -1 while reading a header.
  #expected = -1;
  #partial: Buffer | undefined;
  #partialFill = 0;

  constructor(maxFrameSize: number = DEFAULT_MAX_FRAME_SIZE) {
    this.#maxFrameSize = maxFrameSize;
  }

  /** bufferedBytes is how many bytes of an unfinished frame (header included) the decoder holds. */
  get bufferedBytes(): number {
    return this.#expected === -1 ? this.#headerFill : FRAME_HEADER_SIZE + this.#partialFill;
  }

  /** partialCapacity is the size of the buffer an unfinished frame holds (what a stalled peer pins), 0 if none. */
  get partialCapacity(): number {
    return this.#partial?.length ?? 0;
  }

  /**
   * leavesPartial tells whether pushing `chunk` would leave part of a frame held, without pushing it: a caller over
   * a memory budget can defer such a chunk and still take one that only completes frames. A bad length prefix
   * answers false, so that push() reports it.
   */
  leavesPartial(chunk: Uint8Array): boolean {
    let offset = 0;
    if (this.#expected !== -1) {
      const missing = this.#expected - this.#partialFill;
      if (chunk.length < missing) return true;
      offset = missing;
    } else if (this.#headerFill > 0) {
      return true;
    }
    while (offset < chunk.length) {
      if (chunk.length - offset < FRAME_HEADER_SIZE) return true;
      const length = ((chunk[offset]! << 24) >>> 0) + ((chunk[offset + 1]! << 16) | (chunk[offset + 2]! << 8) | chunk[offset + 3]!);
      if (length === 0 || length > this.#maxFrameSize) return false;
      offset += FRAME_HEADER_SIZE;
      if (chunk.length - offset < length) return true;
      offset += length;
    }
    return false;
  }

  /** inFrame tells whether the decoder holds part of a frame, so the caller can time its completion. */
  get inFrame(): boolean {
    return this.bufferedBytes > 0;
  }

  /**
   * push feeds a chunk and returns the payloads it completed, in order. A returned payload may be a view into
   * `chunk`; the decoder never writes to it again. Throws an RpcError (RESOURCE_EXHAUSTED for a length over
   * maxFrameSize, INTERNAL for a zero length) after which the stream is unusable.
   */
  push(chunk: Uint8Array): Buffer[] {
    const out: Buffer[] = [];
    this.pushEach(chunk, (bytes, start, end) => {
      out.push(bytes.subarray(start, end));
      return true;
    });
    return out;
  }

  /**
   * pushEach feeds a chunk and calls `onFrame` for each payload it completes, in order, as `bytes[start, end)`:
   * where it lies in the chunk, or in a buffer of its own for a frame split across chunks (no view is made per
   * frame). `onFrame` returns false to stop (the connection ended). A bad length prefix throws only after the frames
   * before it in the chunk were delivered, so what a peer sent before a violation does not depend on how TCP split
   * the bytes.
   */
  pushEach(chunk: Uint8Array, onFrame: (bytes: Buffer, start: number, end: number) => boolean): void {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let offset = 0;
    const end = bytes.length;
    while (offset < end) {
      if (this.#expected === -1) {
        if (this.#headerFill === 0 && end - offset >= FRAME_HEADER_SIZE) {
          const length = bytes.readUInt32BE(offset);
          this.#checkLength(length);
          offset += FRAME_HEADER_SIZE;
          if (end - offset >= length) {
            // Whole frame inside this chunk: handed out where it lies, no copy.
            const frameStart = offset;
            offset += length;
            if (!onFrame(bytes, frameStart, offset)) return;
            continue;
          }
          this.#startPartial(length);
          continue;
        }
        while (this.#headerFill < FRAME_HEADER_SIZE && offset < end) {
          this.#header = this.#header * 256 + bytes[offset++]!;
          this.#headerFill++;
        }
        if (this.#headerFill < FRAME_HEADER_SIZE) break;
        const length = this.#header;
        this.#header = 0;
        this.#headerFill = 0;
        this.#checkLength(length);
        this.#startPartial(length);
        continue;
      }
      const payload = this.#fillPartial(bytes, offset);
      offset = payload.offset;
      if (payload.frame !== undefined && !onFrame(payload.frame, 0, payload.length)) return;
    }
  }

  #checkLength(length: number): void {
    if (length === 0) throw protocolViolation('zero-length frame; every frame carries one MessagePack value');
    if (length > this.#maxFrameSize) throw frameTooLarge(length, this.#maxFrameSize, 'received');
  }

  #startPartial(length: number): void {
    this.#expected = length;
    this.#partialFill = 0;
    this.#partial = Buffer.allocUnsafe(Math.min(length, INITIAL_PARTIAL_CAPACITY));
  }

  // The split frame's buffer may be larger than the frame: `length` is the frame's.
  #fillPartial(bytes: Buffer, offset: number): { offset: number; frame: Buffer | undefined; length: number } {
    const expected = this.#expected;
    let partial = this.#partial as Buffer;
    const take = Math.min(expected - this.#partialFill, bytes.length - offset);
    const needed = this.#partialFill + take;
    if (needed > partial.length) {
      // Geometric growth capped at the declared length keeps copying linear in the frame size.
      const grown = Buffer.allocUnsafe(Math.min(expected, Math.max(needed, partial.length * 2)));
      partial.copy(grown, 0, 0, this.#partialFill);
      partial = grown;
      this.#partial = grown;
    }
    bytes.copy(partial, this.#partialFill, offset, offset + take);
    this.#partialFill = needed;
    if (needed !== expected) return { offset: offset + take, frame: undefined, length: 0 };
    this.#partial = undefined;
    this.#partialFill = 0;
    this.#expected = -1;
    return { offset: offset + take, frame: partial, length: expected };
  }
}
