/**
 * What a connection reads (the mirror of outbound.ts): chunks into the frame decoder, frames to the connection
 * while it has room, and reading paused when it has none. Frames beyond maxInFlight wait in a backlog, in order,
 * with the socket paused until calls finish; while unfinished frames across the server hold maxPartialFrameBytes, a
 * chunk that would leave part of a frame is held back (one per connection) and reading stops, while chunks of whole
 * frames still go through. The frame clock (frameTimeout) measures the peer only while we are reading.
 */
import type { Socket } from 'node:net';
import { RpcError } from '@tunnelrpc/protocol';
import { FrameDecoder } from '@tunnelrpc/protocol/internal';

/** InboundHost is what the read path needs from its connection. @internal */
export interface InboundHost {
  /** The connection is closed: nothing more is read or handled. */
  isClosed(): boolean;
  /** No new call may start now (maxInFlight calls running on an open connection). */
  atCapacity(): boolean;
  /** The write path is over its high-water mark: reading stays paused until it drains. */
  writeBlocked(): boolean;
  /** Handles one frame payload `bytes[start, end)`; false when it ended the connection. */
  handleFrame(bytes: Buffer, start: number, end: number): boolean;
  /** A violation found while reading (a frame over maxFrameSize): goaway and close. */
  readFailed(error: RpcError): void;
  /** Bytes of unfinished frames this connection holds changed by `delta` (the server-wide cap). */
  partialBytesChanged(delta: number): void;
  /** True while unfinished frames across the server hold maxPartialFrameBytes. */
  partialOverCap(): boolean;
  /** Asks to be fed its held chunk (resumeHeld) once there is room again. */
  waitForPartialRoom(): void;
}

// Shared until a connection first has to hold a frame back: most never do.
const NO_BACKLOG: Buffer[] = [];

/** Inbound is one connection's read path. @internal */
export class Inbound {
  readonly #socket: Socket;
  readonly #host: InboundHost;
  readonly #decoder: FrameDecoder;
  // Payloads read but not yet handled because maxInFlight calls were running.
  #backlog: Buffer[] = NO_BACKLOG;
  #backlogHead = 0;
  #pumping = false;
  // When the frame being read began (Date.now()), 0 between frames.
  #frameStartedAt = 0;
  // Bytes of the partial frame last reported to the server's cap; a chunk held back while the server is over it.
  #partialReported = 0;
  #heldChunk: Buffer | undefined;

  constructor(socket: Socket, host: InboundHost, maxFrameSize: number) {
    this.#socket = socket;
    this.#host = host;
    this.#decoder = new FrameDecoder(maxFrameSize);
  }

  /** push takes one chunk read at `now` (or Node's `head`): frames go to the connection or the backlog. */
  push(chunk: Buffer, now: number): void {
    if (this.#heldChunk !== undefined || (this.#host.partialOverCap() && this.#decoder.leavesPartial(chunk))) {
      if (this.#heldChunk === undefined) {
        this.#heldChunk = chunk;
        this.#host.waitForPartialRoom();
      } else {
        this.#heldChunk = Buffer.concat([this.#heldChunk, chunk]);
      }
      // The frame clock keeps running, so stalled peers time out and free the room.
      this.#frameStartedAt ||= now;
      this.#socket.pause();
      return;
    }
    try {
      this.#decoder.pushEach(chunk, this.#onFrame);
    } catch (error) {
      this.#host.readFailed(RpcError.from(error, 'INTERNAL'));
      return;
    }
    this.reportPartial();
    this.#frameStartedAt = this.#decoder.inFrame ? this.#frameStartedAt || now : 0;
    if (this.hasBacklog) this.pump();
  }

  /** resumeHeld feeds the chunk held back while the server was over maxPartialFrameBytes. */
  resumeHeld(): void {
    const chunk = this.#heldChunk;
    if (chunk === undefined || this.#host.isClosed()) return;
    this.#heldChunk = undefined;
    this.push(chunk, Date.now());
    this.resume();
  }

  /** hasBacklog tells whether frames wait to be handled. */
  get hasBacklog(): boolean {
    return this.#backlogHead < this.#backlog.length;
  }

  /** paused tells whether reading is paused by us (a backlog, or answers the peer does not read). */
  get paused(): boolean {
    return this.hasBacklog || this.#host.writeBlocked();
  }

  /** frameStalled tells whether the frame being read has taken frameTimeout ms while we were reading. */
  frameStalled(now: number, frameTimeout: number): boolean {
    return frameTimeout > 0 && this.#frameStartedAt > 0 && !this.paused && now - this.#frameStartedAt >= frameTimeout;
  }

  /** resume reads the socket again unless something still holds it paused. */
  resume(): void {
    if (this.#host.isClosed() || this.paused || this.#heldChunk !== undefined) return;
    // The frame was stalled by us, not by the peer: its clock restarts.
    if (this.#frameStartedAt > 0) this.#frameStartedAt = Date.now();
    this.#socket.resume();
  }

  /**
   * pump handles backlogged frames while there is room, and resumes reading once the backlog is empty. A
   * synchronous handler finishes inside handleFrame and calls back here, hence the re-entrancy guard.
   */
  pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.hasBacklog && !this.#host.atCapacity() && !this.#host.isClosed()) {
        const payload = this.#backlog[this.#backlogHead++]!;
        if (!this.#host.handleFrame(payload, 0, payload.length)) break;
      }
    } finally {
      this.#pumping = false;
    }
    if (this.hasBacklog) return;
    this.#backlog = NO_BACKLOG;
    this.#backlogHead = 0;
    this.resume();
  }

  /** dropBacklog forgets the frames not handled yet (the connection is closing without them). */
  dropBacklog(): void {
    this.#backlog = NO_BACKLOG;
    this.#backlogHead = 0;
  }

  /** reportPartial tells the server how much of an unfinished frame this connection holds (0 once closed). */
  reportPartial(): void {
    const held = this.#host.isClosed() ? 0 : this.#decoder.partialCapacity;
    if (held === this.#partialReported) return;
    const delta = held - this.#partialReported;
    this.#partialReported = held;
    this.#host.partialBytesChanged(delta);
  }

  /** closed lets go of the held chunk and gives back the partial frame's share. */
  closed(): void {
    this.#heldChunk = undefined;
    this.reportPartial();
  }

  // Frames beyond maxInFlight wait in the backlog, in order, and reading stops until calls finish.
  readonly #onFrame = (bytes: Buffer, start: number, end: number): boolean => {
    if (this.#host.isClosed()) return false;
    if (this.hasBacklog || this.#host.atCapacity()) {
      if (this.#backlog === NO_BACKLOG) this.#backlog = [];
      this.#backlog.push(bytes.subarray(start, end));
      this.#socket.pause();
      return true;
    }
    return this.#host.handleFrame(bytes, start, end);
  };
}
