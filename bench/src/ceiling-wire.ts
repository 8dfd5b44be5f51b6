/**
 * The ceiling peer's wire: what a bare length-prefixed msgpackr socket costs, with none of tunnelrpc's envelope,
 * validation, deadlines or limits. It marks how fast tunnelrpc could be on this machine, not a peer to ship.
 *
 *   frame = uint32 BE length L, then L bytes of msgpack [id, payload]   (payload: bin; the server echoes it)
 *
 * Writes coalesce: frames queue on a corked socket and go out in one writev at the end of the tick, or as soon as
 * 32 frames or 64 KiB are queued. A single writev per tick holding every queued frame made client and server
 * take turns instead of overlapping (the measurement); capping it keeps both busy.
 */
import type { Socket } from 'node:net';
import { Packr, Unpackr } from 'msgpackr';

const HEADER = 4;
const MAX_BATCH_FRAMES = 32;
const MAX_BATCH_BYTES = 64 * 1024;

const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false, moreTypes: false });

/** encodeCeilingFrame packs [id, payload] behind its 4-byte length. */
export function encodeCeilingFrame(id: number, payload: Uint8Array): Buffer {
  const body = packr.pack([id, payload]);
  const frame = Buffer.allocUnsafe(HEADER + body.length);
  frame.writeUInt32BE(body.length, 0);
  frame.set(body, HEADER);
  return frame;
}

/** decodeCeilingFrame unpacks one frame body into [id, payload]. */
export function decodeCeilingFrame(body: Uint8Array): [number, Uint8Array] {
  return unpackr.unpack(body) as [number, Uint8Array];
}

/** CeilingReader splits a byte stream into frame bodies, concatenating only when a frame spans chunks. */
export class CeilingReader {
  #chunks: Buffer[] = [];
  #length = 0;
  #need = HEADER;

  /** push takes one chunk and calls `onFrame` for every complete frame body in order. */
  push(chunk: Buffer, onFrame: (body: Buffer) => void): void {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    if (this.#length < this.#need) return;
    const buffer = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks, this.#length);
    let offset = 0;
    this.#need = HEADER;
    while (buffer.length - offset >= HEADER) {
      const length = buffer.readUInt32BE(offset);
      if (buffer.length - offset - HEADER < length) {
        this.#need = HEADER + length;
        break;
      }
      onFrame(buffer.subarray(offset + HEADER, offset + HEADER + length));
      offset += HEADER + length;
    }
    const rest = buffer.length - offset;
    this.#chunks = rest === 0 ? [] : [buffer.subarray(offset)];
    this.#length = rest;
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
  write(frame: Buffer): void {
    if (this.#frames === 0) this.#socket.cork();
    this.#socket.write(frame);
    this.#frames++;
    this.#bytes += frame.length;
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
