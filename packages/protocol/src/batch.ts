/**
 * FrameBatcher coalesces outgoing frames into few socket writes. It has no socket of its own: it writes to any
 * sink with `write(buffer)`, so the pure package stays free of node:net.
 *
 * Small frames are copied, length prefix included, into one buffer per batch; a batch goes out at the end of the
 * tick, or as soon as it holds MAX_BATCH_FRAMES frames or MAX_BATCH_BYTES bytes. The cap matters: one write per
 * tick holding every frame made client and server take turns instead of overlapping (219k calls/s at C=256 on
 * the bare ceiling, 440k/s with the cap; issue "Performance"). Large payloads skip the copy: their 4-byte prefix
 * and the payload itself are written as they are.
 */
import type { PayloadParts } from './envelope.js';
import { FRAME_HEADER_SIZE } from './frame.js';

/** BatchSink is where batches go: a socket, or anything with write(). */
export interface BatchSink {
  write(buffer: Uint8Array): unknown;
  /** Optional, as on a net.Socket: writes between cork() and uncork() leave as one writev. */
  cork?(): void;
  uncork?(): void;
}

const MAX_BATCH_FRAMES = 32;
const MAX_BATCH_BYTES = 64 * 1024;
// Payloads at least this large are written without being copied into a batch.
const DIRECT_WRITE_BYTES = 16 * 1024;

/** FrameBatcher frames payloads and writes them to its sink in batches. */
export class FrameBatcher {
  readonly #sink: BatchSink;
  // The shared empty list until the first frame: an idle tunnel holds no array of its own.
  #payloads: Uint8Array[] = NO_PAYLOADS;
  #bytes = 0;
  #scheduled = false;

  constructor(sink: BatchSink) {
    this.#sink = sink;
  }

  /** queuedBytes is what waits for the end of the tick, prefixes included. */
  get queuedBytes(): number {
    return this.#bytes;
  }

  /** push queues one frame payload (without its length prefix), whole or in parts. */
  push(payload: PayloadParts): void {
    if (!(payload instanceof Uint8Array)) {
      this.#pushParts(payload);
      return;
    }
    if (payload.length >= DIRECT_WRITE_BYTES) {
      this.#pushParts([payload]);
      return;
    }
    if (this.#payloads === NO_PAYLOADS) this.#payloads = [];
    this.#payloads.push(payload);
    this.#bytes += FRAME_HEADER_SIZE + payload.length;
    if (this.#payloads.length >= MAX_BATCH_FRAMES || this.#bytes >= MAX_BATCH_BYTES) {
      this.flush();
    } else if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(flushAtEndOfTick, this);
    }
  }

  // A large payload goes out as it is: what is queued first, then its prefix together with the small parts that
  // lead it (the envelope), then its large parts, uncopied.
  #pushParts(parts: readonly Uint8Array[]): void {
    this.flush();
    let length = 0;
    for (const part of parts) length += part.length;
    let lead = 0;
    let leadBytes = 0;
    while (lead < parts.length && parts[lead]!.length < DIRECT_WRITE_BYTES) leadBytes += parts[lead++]!.length;
    const head = Buffer.allocUnsafe(FRAME_HEADER_SIZE + leadBytes);
    head.writeUInt32BE(length, 0);
    let offset = FRAME_HEADER_SIZE;
    for (let i = 0; i < lead; i++) {
      head.set(parts[i]!, offset);
      offset += parts[i]!.length;
    }
    // One writev (one syscall, one write request) for the head and the large parts, instead of one write each.
    const sink = this.#sink;
    sink.cork?.();
    sink.write(head);
    for (let i = lead; i < parts.length; i++) sink.write(parts[i]!);
    sink.uncork?.();
  }

  /** flush writes what is queued now, as one buffer. */
  flush(): void {
    const payloads = this.#payloads;
    if (payloads.length === 0) return;
    const batch = Buffer.allocUnsafe(this.#bytes);
    let offset = 0;
    for (const payload of payloads) {
      batch.writeUInt32BE(payload.length, offset);
      batch.set(payload, offset + FRAME_HEADER_SIZE);
      offset += FRAME_HEADER_SIZE + payload.length;
    }
    this.#payloads = NO_PAYLOADS;
    this.#bytes = 0;
    this.#sink.write(batch);
  }

  /** endTick is the end-of-tick flush. @internal */
  endTick(): void {
    this.#scheduled = false;
    this.flush();
  }
}

const NO_PAYLOADS: Uint8Array[] = [];

function flushAtEndOfTick(batcher: FrameBatcher): void {
  batcher.endTick();
}
