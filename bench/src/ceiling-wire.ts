/**
 * The ceiling peer's wire: what a bare length-prefixed msgpackr socket costs, with none of tunnelrpc's envelope,
 * validation, deadlines or limits, built with care so that it marks how fast tunnelrpc could be on this machine.
 * It is not a peer to ship.
 *
 *   frame = uint32 BE length L, then L bytes of msgpack [id, value]   (the server decodes value and echoes it)
 *
 * Encode: one pack per frame into msgpackr's own buffer, with the 4 length bytes reserved in front of the body
 * (RESERVE_START_SPACE | 4): the frame is a view of that buffer, written without another copy. A byte array of
 * 16 KiB or more is not copied at all: its frame is a small head (length, array header, id, bin header) and the
 * caller's bytes, written together (tunnelrpc does the same, so the ceiling must too).
 * Decode: in place, `unpack(chunk, { start, end })` on the received chunk, with no subarray per frame; only a frame
 * split across reads is joined (its bytes copied into a buffer of its exact size).
 * Writes coalesce: frames queue on a corked socket and go out in one writev at the end of the tick, or as soon as
 * 32 frames or 64 KiB are queued. A single writev per tick holding every queued frame made client and server
 * take turns instead of overlapping; capping it keeps both busy. Both ends set TCP_NODELAY.
 */
import type { Socket } from 'node:net';
import { Packr, RESERVE_START_SPACE, Unpackr } from 'msgpackr';

const HEADER = 4;
const MAX_BATCH_FRAMES = 32;
const MAX_BATCH_BYTES = 64 * 1024;
const PACK_OPTIONS = RESERVE_START_SPACE | HEADER;

const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false, moreTypes: false });

/** CeilingMessage is one decoded frame: the call id and the value it carries. */
export type CeilingMessage = [id: number, value: unknown];

// Byte arrays this large go out from the caller's memory.
const ZERO_COPY_BYTES = 16 * 1024;
// length, fixarray of 2, uint32 id, bin32 header
const LARGE_HEAD = HEADER + 1 + 5 + 5;

/** CeilingFrame is one encoded frame: one buffer, or a head and the large byte array that follows it. */
export type CeilingFrame = Buffer | readonly [head: Buffer, bytes: Uint8Array];

/** encodeCeilingFrame packs [id, value] behind its 4-byte length: one encode, no copy. */
export function encodeCeilingFrame(id: number, value: unknown): CeilingFrame {
  if (value instanceof Uint8Array && value.length >= ZERO_COPY_BYTES) {
    const head = Buffer.allocUnsafe(LARGE_HEAD);
    head.writeUInt32BE(LARGE_HEAD - HEADER + value.length, 0);
    head[4] = 0x92;
    head[5] = 0xce;
    head.writeUInt32BE(id, 6);
    head[10] = 0xc6;
    head.writeUInt32BE(value.length, 11);
    return [head, value];
  }
  const frame = packr.pack([id, value], PACK_OPTIONS);
  frame.writeUInt32BE(frame.length - HEADER, 0);
  return frame;
}

/** CeilingReader splits a byte stream into decoded frames, decoding in place and joining only split frames. */
export class CeilingReader {
  readonly #header = Buffer.alloc(HEADER);
  // Bytes of a split frame's header held so far (0: no frame is split).
  #headerHave = 0;
  // The split frame's body being filled, once its header is complete.
  #body: Buffer | undefined;
  #bodyHave = 0;
  // One options object, reused: unpack reads start and end from it and keeps nothing.
  readonly #range = { start: 0, end: 0 };

  /** push takes one chunk and calls `onFrame` for every complete frame in order. */
  push(chunk: Buffer, onFrame: (message: CeilingMessage) => void): void {
    const end = chunk.length;
    let offset = 0;
    if (this.#headerHave > 0) {
      if (this.#body === undefined) {
        const take = Math.min(HEADER - this.#headerHave, end);
        chunk.copy(this.#header, this.#headerHave, 0, take);
        this.#headerHave += take;
        offset = take;
        if (this.#headerHave < HEADER) return;
        const length = this.#header.readUInt32BE(0);
        if (end - offset >= length) {
          this.#headerHave = 0;
          onFrame(this.#decode(chunk, offset, offset + length));
          offset += length;
        } else {
          this.#body = Buffer.allocUnsafe(length);
          this.#bodyHave = 0;
        }
      }
      const body = this.#body;
      if (body !== undefined) {
        const take = Math.min(body.length - this.#bodyHave, end - offset);
        chunk.copy(body, this.#bodyHave, offset, offset + take);
        this.#bodyHave += take;
        offset += take;
        if (this.#bodyHave < body.length) return;
        this.#body = undefined;
        this.#headerHave = 0;
        onFrame(unpackr.unpack(body) as CeilingMessage);
      }
    }
    while (end - offset >= HEADER) {
      const length = chunk.readUInt32BE(offset);
      if (end - offset - HEADER < length) break;
      onFrame(this.#decode(chunk, offset + HEADER, offset + HEADER + length));
      offset += HEADER + length;
    }
    const rest = end - offset;
    if (rest === 0) return;
    if (rest < HEADER) {
      chunk.copy(this.#header, 0, offset, end);
      this.#headerHave = rest;
      return;
    }
    this.#headerHave = HEADER;
    this.#body = Buffer.allocUnsafe(chunk.readUInt32BE(offset));
    this.#bodyHave = chunk.copy(this.#body, 0, offset + HEADER, end);
  }

  #decode(chunk: Buffer, start: number, end: number): CeilingMessage {
    this.#range.start = start;
    this.#range.end = end;
    return unpackr.unpack(chunk, this.#range) as CeilingMessage;
  }
}

/** CeilingWriter coalesces frames into capped writev batches (see the file comment). */
export class CeilingWriter {
  readonly #socket: Socket;
  #frames = 0;
  #bytes = 0;
  #scheduled = false;

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  /** write queues one frame. */
  write(frame: CeilingFrame): void {
    if (this.#frames === 0) this.#socket.cork();
    if (frame instanceof Uint8Array) {
      this.#socket.write(frame);
      this.#bytes += frame.length;
    } else {
      this.#socket.write(frame[0]);
      this.#socket.write(frame[1]);
      this.#bytes += frame[0].length + frame[1].length;
    }
    this.#frames++;
    if (this.#frames >= MAX_BATCH_FRAMES || this.#bytes >= MAX_BATCH_BYTES) {
      this.#flush();
    } else if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(this.#onTick);
    }
  }

  readonly #onTick = (): void => {
    this.#scheduled = false;
    this.#flush();
  };

  #flush(): void {
    if (this.#frames === 0) return;
    this.#frames = 0;
    this.#bytes = 0;
    this.#socket.uncork();
  }
}
