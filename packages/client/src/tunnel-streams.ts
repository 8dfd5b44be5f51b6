/**
 * TunnelStreams: the streams open on one client tunnel, the twin of the server's StreamTable. It owns the tunnel's
 * credit ledger and the streams waiting for 'drain', judges the server's stream frames (StreamState, CreditLedger)
 * and routes them; the tunnel decides which ids are calls at all and writes what the streams ask for.
 */
import { RpcError } from '@tunnelrpc/protocol';
import {
  CreditLedger,
  MessageType,
  encodePayloadParts,
  serverSends,
  type CreditMessage,
  type Grant,
  type PayloadParts,
  type RequestMeta,
  type StreamMessageMessage,
} from '@tunnelrpc/protocol/internal';
import type { Call } from './call.js';
import { encodeOutgoing } from './sender.js';
import type { StreamCore, StreamSink } from './stream.js';
import type { ResolvedClientOptions } from './options.js';

/** TunnelStreamsHost is what a tunnel lends its streams. @internal */
export interface TunnelStreamsHost {
  readonly options: ResolvedClientOptions;
  /** Whether the tunnel has ended (nothing more is written then). */
  readonly ended: boolean;
  /** Writes one frame payload (the tunnel's batched write path). */
  write(payload: PayloadParts): void;
  /** The socket's unsent bytes. */
  readonly unsentBytes: number;
}

/** TunnelStreams holds one tunnel's streams and their credit. @internal */
export class TunnelStreams implements StreamSink {
  readonly #host: TunnelStreamsHost;
  // Made with the tunnel's first stream (PROTOCOL.md 12.3, 12.4): a tunnel of unary calls never builds one.
  #ledger: CreditLedger | undefined;
  // Streams whose producers stopped at a full socket, pumped again on 'drain'.
  readonly #drainWaiters = new Set<StreamCore>();

  constructor(host: TunnelStreamsHost) {
    this.#host = host;
  }

  /** ledger is the tunnel's stream credit. */
  get ledger(): CreditLedger {
    this.#ledger ??= new CreditLedger(this.#host.options.maxStreamBuffer);
    return this.#ledger;
  }

  /**
   * announce enters a stream the server will send on into the ledger before its opening is encoded: the opening
   * carries the first grant of the server's direction and our bound on its messages (PROTOCOL.md 12.1).
   */
  announce(core: StreamCore, id: number, meta: RequestMeta): void {
    if (!serverSends(core.kind)) return;
    const { maxStreamMessageSize, maxStreamCredit } = this.#host.options;
    const ledger = this.ledger;
    ledger.open(id, maxStreamMessageSize, maxStreamCredit);
    meta.credit = ledger.topUp(id);
    meta.maxMessageSize = maxStreamMessageSize;
  }

  /** unannounce takes back announce() for an opening that could not be sent. */
  unannounce(id: number): void {
    if (this.#ledger !== undefined) this.sendGrants(this.#ledger.close(id));
  }

  /** opened binds a stream whose opening was written as `id`. */
  opened(core: StreamCore, id: number): void {
    if (!serverSends(core.kind)) this.ledger.open(id, 0, this.#host.options.maxStreamCredit);
    core.bind(this, id);
  }

  /**
   * onFrame judges and routes a `[4]` or `[9]` for `core`, open as `message.id`; returns the violation, if any.
   * `bytes` is the frame's payload length.
   */
  onFrame(core: StreamCore, message: StreamMessageMessage | CreditMessage, bytes: number): string | undefined {
    const ledger = this.ledger;
    if (message.type === MessageType.StreamMessage) {
      const verdict = core.state.onMessage();
      if (verdict !== undefined) return verdict;
      const limit = this.#host.options.maxStreamMessageSize;
      if (bytes > limit) return `a stream message of ${bytes} bytes exceeds the announced maxMessageSize ${limit}`;
      if (!ledger.receive(message.id)) return `a stream message arrived beyond the credit granted for stream ${message.id}`;
      core.receive(message.message);
      return undefined;
    }
    const verdict = core.state.onCredit(message.maxMessageSize);
    if (verdict !== undefined) return verdict;
    if (!ledger.addCredit(message.id, message.n)) return `credit for stream ${message.id} would exceed 2147483647`;
    core.granted(message.maxMessageSize);
    return undefined;
  }

  /** drop lets a call's stream leave the tunnel (answered, abandoned, refused): its reservations go to others. */
  drop(call: Call): void {
    const core = call.stream;
    if (core === undefined) return;
    core.unbind();
    this.#drainWaiters.delete(core);
    if (this.#ledger !== undefined) this.sendGrants(this.#ledger.close(call.id));
  }

  /** drained pumps the streams that stopped at a full socket. */
  drained(): void {
    if (this.#drainWaiters.size === 0 || !this.canWrite()) return;
    const waiting = [...this.#drainWaiters];
    this.#drainWaiters.clear();
    for (const core of waiting) core.pump();
  }

  /** clear forgets every stream: the tunnel ended. */
  clear(): void {
    this.#ledger = undefined;
    this.#drainWaiters.clear();
  }

  // ---- StreamSink, for the streams ----

  sendStreamMessage(core: StreamCore, message: unknown): RpcError | undefined {
    const encoded = encodeOutgoing({ type: MessageType.StreamMessage, id: core.id, message }, 'stream message', core.method, core.peerMaxMessageSize, this.#host.options);
    if (encoded instanceof RpcError) return encoded;
    this.#host.write(encoded);
    return undefined;
  }

  sendHalfClose(core: StreamCore): void {
    this.#host.write(encodePayloadParts({ type: MessageType.HalfClose, id: core.id }));
  }

  sendGrants(grants: readonly Grant[]): void {
    if (this.#host.ended) return;
    for (const { id, n } of grants) this.#host.write(encodePayloadParts({ type: MessageType.Credit, id, n }));
  }

  canWrite(): boolean {
    return this.#host.unsentBytes <= this.#host.options.maxWriteBuffer;
  }

  waitForDrain(core: StreamCore): void {
    this.#drainWaiters.add(core);
  }
}
