/**
 * One stream's phases and the stream frames legal in each (PROTOCOL.md 12.2 and 12.6), the same machine on both
 * ends. Pure: it takes what arrived or what we sent and returns a verdict; it writes nothing. Credit counting is
 * CreditLedger's; this decides what a frame may mean at all.
 */

/** StreamKind names the three stream method kinds of a contract. */
export type StreamKind = 'serverStream' | 'clientStream' | 'bidiStream';

/** StreamSide says which end of the tunnel holds a StreamState. */
export type StreamSide = 'client' | 'server';

/** Verdict is undefined when a frame is legal, else the violation, worded for a goaway PROTOCOL_ERROR. */
export type Verdict = string | undefined;

/** clientSends tells whether the client sends stream messages in a method of this kind. */
export function clientSends(kind: StreamKind): boolean {
  return kind !== 'serverStream';
}

/** serverSends tells whether the server sends stream messages in a method of this kind. */
export function serverSends(kind: StreamKind): boolean {
  return kind !== 'clientStream';
}

/** StreamState tracks one open stream: the direction in, the direction out, and the first client-to-server grant. */
export class StreamState {
  readonly kind: StreamKind;
  readonly side: StreamSide;
  // Whether the peer may still send stream messages (the client: until it half-closes; the server: until it ends).
  #inboundOpen: boolean;
  // Whether we may still send stream messages.
  #outboundOpen: boolean;
  // The client-to-server direction's first grant (it carries maxMessageSize) has been sent or received.
  #clientGranted = false;

  constructor(kind: StreamKind, side: StreamSide) {
    this.kind = kind;
    this.side = side;
    this.#inboundOpen = side === 'server' ? clientSends(kind) : serverSends(kind);
    this.#outboundOpen = side === 'server' ? serverSends(kind) : clientSends(kind);
  }

  /** inboundOpen tells whether the peer may still send stream messages on this stream. */
  get inboundOpen(): boolean {
    return this.#inboundOpen;
  }

  /** outboundOpen tells whether we may still send stream messages on this stream. */
  get outboundOpen(): boolean {
    return this.#outboundOpen;
  }

  /** clientGranted tells whether the client-to-server direction has had its first grant. */
  get clientGranted(): boolean {
    return this.#clientGranted;
  }

  /** onMessage judges a `[4, id, message]` from the peer (credit is checked by the ledger). */
  onMessage(): Verdict {
    if (this.#inboundOpen) return undefined;
    if (this.side === 'server') {
      return clientSends(this.kind) ? 'a stream message arrived after the client half-closed the stream' : `a stream message arrived for a ${this.kind} method, whose client sends none`;
    }
    return `a stream message arrived for a ${this.kind} method, whose server sends none`;
  }

  /** onHalfClose judges a `[5, id]` from the peer; when legal, the peer's direction is closed. */
  onHalfClose(): Verdict {
    if (this.side === 'client') return 'the server sent a half-close; only a client half-closes';
    if (!clientSends(this.kind)) return `a half-close arrived for a ${this.kind} method, whose client sends no messages`;
    if (!this.#clientGranted) return 'a half-close arrived before the server granted credit; the client sends no stream message before the first grant';
    if (!this.#inboundOpen) return 'a second half-close arrived for the same stream';
    this.#inboundOpen = false;
    return undefined;
  }

  /** onCredit judges a `[9, id, n, maxMessageSize?]` from the peer. */
  onCredit(maxMessageSize: number | undefined): Verdict {
    if (this.side === 'server') {
      if (!serverSends(this.kind)) return `credit arrived for a ${this.kind} method, whose server sends no messages`;
      if (maxMessageSize !== undefined) return 'a client grant carries maxMessageSize; the client announces it in the opening meta';
      return undefined;
    }
    if (!clientSends(this.kind)) return `credit arrived for a ${this.kind} method, whose client sends no messages`;
    if (!this.#clientGranted) {
      if (maxMessageSize === undefined) return "the server's first grant lacks maxMessageSize";
      this.#clientGranted = true;
      return undefined;
    }
    if (maxMessageSize !== undefined) return 'maxMessageSize may come only with the first grant';
    return undefined;
  }

  /** granted records that the server sent its first grant for the client-to-server direction. */
  granted(): void {
    this.#clientGranted = true;
  }

  /** halfClosed records that the client sent its half-close: it sends no more stream messages. */
  halfClosed(): void {
    if (this.side === 'client') this.#outboundOpen = false;
  }

  /** ended records the final response (sent or received): neither direction carries anything more. */
  ended(): void {
    this.#inboundOpen = false;
    this.#outboundOpen = false;
  }
}
