/**
 * What a connection writes: frames go out in capped batches (FrameBatcher), and what a peer that does not read can
 * make us queue is bounded. Over writeHighWaterMark the connection stops reading (so that peer's requests stop
 * making answers); past maxWriteBuffer already queued, frames wait for 'drain' in order, up to maxWriteBuffer of
 * them (three results near maxFrameSize at once must not cut off a peer that reads); past that the peer is cut
 * off. A peer holds at most twice maxWriteBuffer plus one frame.
 */
import type { Socket } from 'node:net';
import { RpcError } from '@tunnelrpc/protocol';
import { FrameBatcher, payloadLength, type PayloadParts } from '@tunnelrpc/protocol/internal';

/** OutboundLimits are the options the write path follows. @internal */
export interface OutboundLimits {
  readonly maxWriteBuffer: number;
  readonly writeHighWaterMark: number;
}

// Shared until a connection first has to hold a frame: most never do.
const NO_HELD: PayloadParts[] = [];

/** Outbound is one connection's write path. @internal */
export class Outbound {
  readonly #socket: Socket;
  readonly #limits: OutboundLimits;
  readonly #batcher: FrameBatcher;
  #held: PayloadParts[] = NO_HELD;
  #heldBytes = 0;
  /** When writes went over writeHighWaterMark (Date.now()), 0 while they are not: reading pauses, drainTimeout runs. */
  blockedSince = 0;

  constructor(socket: Socket, limits: OutboundLimits) {
    this.#socket = socket;
    this.#limits = limits;
    this.#batcher = new FrameBatcher(socket);
  }

  /**
   * push queues a frame. It returns the error that must end the connection when a peer that does not read would
   * hold more than the bound; blockedSince turns non-zero when the caller must stop reading.
   */
  push(payload: PayloadParts): RpcError | undefined {
    const { maxWriteBuffer, writeHighWaterMark } = this.#limits;
    // The cap applies to what is still queued from before this frame, so two large results written in one tick do
    // not cut off a peer that reads.
    const backlog = this.#socket.writableLength + this.#batcher.queuedBytes;
    if (this.#held.length > 0 || backlog > maxWriteBuffer) {
      const length = payloadLength(payload);
      if (this.#heldBytes > 0 && this.#heldBytes + length > maxWriteBuffer) {
        return new RpcError('RESOURCE_EXHAUSTED', `peer is not reading: ${backlog} bytes queued and ${this.#heldBytes} waiting exceed maxWriteBuffer ${maxWriteBuffer}`);
      }
      if (this.#held === NO_HELD) this.#held = [];
      this.#held.push(payload);
      this.#heldBytes += length;
      if (this.blockedSince === 0) this.blockedSince = Date.now();
      return undefined;
    }
    this.#batcher.push(payload);
    if (this.blockedSince === 0 && this.#socket.writableLength + this.#batcher.queuedBytes > writeHighWaterMark) {
      this.blockedSince = Date.now();
    }
    return undefined;
  }

  /** unsent is what waits to go out while the connection is blocked (0 while it is not): queued and held bytes. */
  get unsent(): number {
    return this.blockedSince === 0 ? 0 : this.#socket.writableLength + this.#batcher.queuedBytes + this.#heldBytes;
  }

  /** drained runs on the socket's 'drain': held frames go out while there is room; true once nothing waits. */
  drained(): boolean {
    if (this.blockedSince === 0) return false;
    this.#release(this.#limits.maxWriteBuffer);
    if (this.#held.length > 0) {
      // Still waiting: the drainTimeout clock restarts, since the peer did read.
      this.blockedSince = Date.now();
      return false;
    }
    this.blockedSince = 0;
    return true;
  }

  /** flushAll hands every frame held or batched to the socket, before it is ended. */
  flushAll(): void {
    this.#release(Infinity);
    this.#batcher.flush();
  }

  // Held frames go to the socket, in order, while it has room.
  #release(room: number): void {
    if (this.#held.length === 0) return;
    let taken = 0;
    while (taken < this.#held.length && this.#socket.writableLength + this.#batcher.queuedBytes <= room) {
      const payload = this.#held[taken++]!;
      this.#heldBytes -= payloadLength(payload);
      this.#batcher.push(payload);
    }
    this.#held = taken === this.#held.length ? NO_HELD : this.#held.slice(taken);
  }
}
