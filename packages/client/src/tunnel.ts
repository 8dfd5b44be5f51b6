/**
 * Tunnel: one open CONNECT socket on the client side. It owns the frame decoder, the calls waiting on it by id,
 * the coalescing write path and keepalive pings; its client decides what happens to calls when it ends. What goes
 * out is encoded and checked by the sender (sender.ts); streams and their credit live in TunnelStreams.
 *
 * Over 400 lines: one socket's lifecycle (start, read, goaway, end) and its call table change together; what is sent
 * is built in sender.ts, streams and credit live in tunnel-streams.ts, keepalive in liveness.ts.
 */
import type { Socket } from 'node:net';
import { RpcError, escapePeerText, type TcpInfo } from '@tunnelrpc/protocol';
import {
  FrameDecoder,
  MAX_UINT32,
  MessageType,
  decodeFrame,
  encodePayloadParts,
  encodePongPayload,
  type PayloadParts,
  FrameBatcher,
  fromWireError,
  goawayCodeOf,
  protocolViolation,
  type CreditMessage,
  type GoawayMessage,
  type Message,
  type RequestMeta,
  type ResponseMessage,
  type StreamMessageMessage,
} from '@tunnelrpc/protocol/internal';
import { Liveness, type LivenessHost } from './liveness.js';
import { tcpInfoOf } from './tcp-info.js';
import { rejectCall, resolveCall, type Call } from './call.js';
import { CallTable } from './call-table.js';
import { encodeOutgoing, encodeRequest } from './sender.js';
import { TunnelStreams, type TunnelStreamsHost } from './tunnel-streams.js';
import type { ResolvedClientOptions } from './options.js';

/** TunnelHost is what a tunnel tells its client. @internal */
export interface TunnelHost {
  /** The server sent goaway UNAVAILABLE: `refused` calls did not run (ids above lastId) and may go elsewhere. */
  tunnelDraining(tunnel: Tunnel, refused: Call[]): void;
  /**
   * The socket is gone. `orphans` were sent and unanswered: they may have run. `refused` were above the lastId of
   * the server's closing goaway: they did not run.
   */
  tunnelEnded(tunnel: Tunnel, reason: RpcError | undefined, orphans: Call[], refused: Call[]): void;
  /** The socket drained: calls waiting on a slow server may be written. */
  tunnelWritable(tunnel: Tunnel): void;
  /** The server answered `call` (settled here), with the error code of its answer, if any. */
  callAnswered(tunnel: Tunnel, call: Call, code: string | undefined): void;
  /** `call` was given up here (its deadline passed, or its caller aborted) before an answer came. */
  callAbandoned(tunnel: Tunnel, call: Call): void;
  /** Whether any other tunnel of the client received a frame after `since` (Date.now() ms). */
  othersAnsweredSince(tunnel: Tunnel, since: number): boolean;
  /** Whether answers here are timed (Call.sentAt): only while there are endpoints to compare. */
  readonly measuresLatency: boolean;
  /** `count` abandoned ids were freed: their late answers came, or the tunnel ended. */
  idsReleased(tunnel: Tunnel, count: number): void;
}

// Hard stop for a socket we closed whose peer does not take the close.
const CLOSE_LINGER_MS = 1000;

/** Tunnel carries calls over one socket. @internal */
export class Tunnel {
  readonly #socket: Socket;
  readonly #options: ResolvedClientOptions;
  readonly #target: string;
  readonly #host: TunnelHost;
  readonly #decoder: FrameDecoder;
  readonly #calls = new CallTable<Call>();
  // Ids given up locally (deadline, abort) whose answer may still come: reserved until it does.
  readonly #abandoned = new Set<number>();
  #nextId = 1;
  #state: 'open' | 'draining' | 'closing' | 'ended' = 'open';
  readonly #batcher: FrameBatcher;
  // Keepalive pings and the frame-completion watch (liveness.ts).
  readonly #liveness: Liveness;
  // Reading stopped because pongs piled up unsent (a server that pings and does not read); resumes on 'drain'.
  #readPaused = false;
  readonly #openedAt = Date.now();
  #answered = false;
  // Set by #onFrame: the chunk being read completed at least one frame.
  #framesInChunk = false;
  // Bytes that came behind the 200 head, until start() feeds them (then dropped: a tunnel lives long).
  #rest: Buffer | undefined;
  readonly #streams: TunnelStreams;

  /** Builds a tunnel; it reads nothing until start(), so its client can store it before any frame is handled. */
  constructor(socket: Socket, rest: Buffer, options: ResolvedClientOptions, target: string, host: TunnelHost) {
    this.#socket = socket;
    this.#options = options;
    this.#target = target;
    this.#host = host;
    this.#rest = rest;
    this.#decoder = new FrameDecoder(options.maxFrameSize);
    this.#batcher = new FrameBatcher(socket);
    this.#liveness = new Liveness(this.#livenessHost(), options);
    this.#streams = new TunnelStreams(this.#streamsHost());
  }

  #streamsHost(): TunnelStreamsHost {
    const tunnel = this;
    return {
      options: this.#options,
      get ended(): boolean {
        return tunnel.#state === 'ended';
      },
      get unsentBytes(): number {
        return tunnel.#socket.writableLength;
      },
      write: (payload) => this.#write(payload),
    };
  }

  #livenessHost(): LivenessHost {
    // A getter, so the watch reads the pause as it is when its timer fires; `this` inside it is the object literal.
    const tunnel = this;
    return {
      ping: (data) => this.#write(encodePayloadParts({ type: MessageType.Ping, data })),
      unresponsive: (silentFor) => {
        this.destroy(new RpcError('UNAVAILABLE', `the server at ${this.#target} sent nothing, not even a pong, for ${silentFor} ms with calls waiting while other endpoints answered (unresponsiveTimeout); the tunnel was closed`));
      },
      othersAnsweredSince: (since) => this.#host.othersAnsweredSince(this, since),
      get waiting(): number {
        return tunnel.#calls.size;
      },
      silent: (keepaliveTimeout) => {
        this.destroy(new RpcError('UNAVAILABLE', `the server at ${this.#target} did not answer a keepalive ping within keepaliveTimeout ${keepaliveTimeout} ms`));
      },
      frameTooSlow: (frameTimeout) => {
        this.#violation(protocolViolation(`a frame from the server took longer than frameTimeout ${frameTimeout} ms to arrive`));
      },
      get readingPaused(): boolean {
        return tunnel.#readPaused;
      },
      guard: (run) => this.#guard(run),
    };
  }

  /**
   * start attaches the socket and feeds the bytes that came behind the 200 head. Those may end the tunnel at once
   * (a goaway or a violation in the same write as the 200), so the client calls it only after storing the tunnel:
   * the ended callbacks then find it and never leave an ended tunnel as the current one.
   */
  start(): void {
    const socket = this.#socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    socket.on('error', (error) => this.#guard(() => this.#lost(error)));
    socket.on('close', () => this.#guard(() => this.#lost(undefined)));
    socket.on('end', () => this.#guard(() => this.#lost(undefined)));
    socket.on('drain', () => this.#guard(() => this.#onDrain()));
    this.#liveness.start();
    // Bytes that came behind the 200 head are the first frames: feed them before any 'data' (grpc-node #2746).
    const rest = this.#rest;
    this.#rest = undefined;
    if (rest !== undefined && rest.length > 0) this.#onData(rest);
    if (this.#state === 'ended') return;
    socket.on('data', (chunk: Buffer) => {
      // Inline rather than #guard: no closure per chunk on the hot path.
      try {
        this.#onData(chunk);
      } catch (error) {
        this.#crashed(error);
      }
    });
  }

  /** ended tells whether the socket is gone and every call was handed back. */
  get ended(): boolean {
    return this.#state === 'ended';
  }

  /**
   * proved tells whether this tunnel achieved something: the server answered a call or a ping on it, or it stayed
   * up for `upFor` ms. Only such a tunnel resets the client's redial backoff; a server that accepts and then drops
   * every tunnel at once gets the growing delay.
   */
  proved(upFor: number): boolean {
    return this.#answered || Date.now() - this.#openedAt >= upFor;
  }

  /** tcpInfo reads the kernel's TCP_INFO for this tunnel's socket now; undefined where it cannot be read. */
  tcpInfo(): TcpInfo | undefined {
    return tcpInfoOf(this.#socket);
  }

  /** lastReceivedAt is when (Date.now() ms) the last complete frame came from the server. */
  get lastReceivedAt(): number {
    return this.#liveness.lastReceivedAt;
  }

  /** accepting tells whether new calls may be sent here (open, no goaway received or sent). */
  get accepting(): boolean {
    return this.#state === 'open';
  }

  /** callCount counts calls waiting for their answers here. */
  get callCount(): number {
    return this.#calls.size;
  }

  /** load counts ids in use here: calls waiting for answers plus abandoned ones. */
  get load(): number {
    return this.#calls.size + this.#abandoned.size;
  }

  /** unsentBytes is what earlier batches left queued in the socket: a server that does not read. */
  get unsentBytes(): number {
    return this.#socket.writableLength;
  }

  /**
   * send writes a call's request with `timeout` (what is left of its deadline) as meta.timeout; returns the error
   * that keeps it from being sent (the call stays unsettled).
   */
  send(call: Call, timeout = Math.max(0, call.deadline - Date.now())): RpcError | undefined {
    const id = this.#allocateId();
    const stream = call.stream;
    let encoded: PayloadParts | RpcError;
    if (stream === undefined) {
      encoded = encodeRequest(id, call.method, call.params, timeout, call.headers, this.#options.maxFrameSize, this.#options);
      if (encoded instanceof RpcError) return encoded;
    } else {
      // A stream's opening carries its credit and message bound in meta, which the stream table writes in.
      const meta: RequestMeta = call.headers === undefined ? { timeout } : { timeout, headers: call.headers };
      this.#streams.announce(stream, id, meta);
      encoded = encodeOutgoing({ type: MessageType.Request, id, method: call.method, params: call.params, meta }, 'request', call.method, this.#options.maxFrameSize, this.#options);
      if (encoded instanceof RpcError) {
        this.#streams.unannounce(id);
        return encoded;
      }
    }
    call.id = id;
    call.tunnel = this;
    call.attempts++;
    // A clock read per call only while the balancer compares endpoints; 0 marks an attempt left untimed.
    call.sentAt = this.#host.measuresLatency ? performance.now() : 0;
    this.#calls.add(call);
    this.#liveness.callSent();
    if (stream !== undefined) this.#streams.opened(stream, id);
    this.#write(encoded);
    return undefined;
  }

  /**
   * notify writes a notification and settles it as sent; returns the error that keeps it from being sent (the
   * notification stays unsettled).
   */
  notify(call: Call): RpcError | undefined {
    const message: Message = call.headers === undefined
      ? { type: MessageType.Notification, method: call.method, params: call.params }
      : { type: MessageType.Notification, method: call.method, params: call.params, meta: { headers: call.headers } };
    const encoded = encodeOutgoing(message, 'notification', call.method, this.#options.maxFrameSize, this.#options);
    if (encoded instanceof RpcError) return encoded;
    this.#write(encoded);
    resolveCall(call, undefined);
    return undefined;
  }

  /** abandon stops waiting for a call here (its caller gave up): a cancel goes out, the id stays reserved. */
  abandon(call: Call): void {
    if (this.#calls.get(call.id) !== call) return;
    this.#calls.delete(call.id);
    this.#abandoned.add(call.id);
    this.#write(encodePayloadParts({ type: MessageType.Cancel, id: call.id }));
    this.#streams.drop(call);
    this.#host.callAbandoned(this, call);
    this.#endIfDone();
  }

  /** close sends goaway and ends the socket once every call here has its answer. */
  close(): void {
    if (this.#state !== 'open' && this.#state !== 'draining') return;
    this.#state = 'closing';
    this.#write(encodePayloadParts({ type: MessageType.Goaway, lastId: 0, code: 'UNAVAILABLE', message: 'client closing' }));
    this.#endIfDone();
  }

  /** destroy ends the socket now; calls still waiting become orphans of tunnelEnded. */
  destroy(reason: RpcError): void {
    this.#end(reason);
    this.#socket.destroy();
  }

  // Ids increase and wrap at 2^32 back to 1, skipping any the server may still hold: goaway lastId compares
  // them, and 0 is never used so that lastId 0 means "took nothing" (PROTOCOL.md 7.6).
  #allocateId(): number {
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id === MAX_UINT32 ? 1 : id + 1;
      if (this.#calls.slotFree(id) && !this.#abandoned.has(id)) return id;
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#state === 'ended') return;
    this.#framesInChunk = false;
    try {
      this.#decoder.pushEach(chunk, this.#onFrame);
    } catch (error) {
      this.#violation(RpcError.from(error, 'INTERNAL'));
      return;
    }
    if (this.ended) return;
    // The frames of one chunk arrived together: one clock read for all of them, not one per frame.
    if (this.#framesInChunk) this.#liveness.frameReceived();
    this.#liveness.bytesRead(this.#decoder.inFrame);
  }

  // Returns false when the frame ended the tunnel.
  readonly #onFrame = (bytes: Buffer, start: number, end: number): boolean => {
    if (this.#state === 'ended') return false;
    this.#framesInChunk = true;
    let message: Message;
    try {
      message = decodeFrame(bytes, start, end, this.#options);
    } catch (error) {
      this.#violation(RpcError.from(error, 'INTERNAL'));
      return false;
    }
    if (message.type === MessageType.StreamMessage || message.type === MessageType.Credit) return this.#onStreamFrame(message, end - start);
    return this.#onMessage(message, bytes, start, end);
  };

  // Types 4 and 9 from the server. One for an abandoned id crossed our cancel and is dropped; one for a unary call
  // or an id with no stream is a violation (PROTOCOL.md 12.6).
  #onStreamFrame(message: StreamMessageMessage | CreditMessage, bytes: number): boolean {
    const call = this.#calls.get(message.id);
    const core = call?.stream;
    if (core === undefined) {
      if (call === undefined && this.#abandoned.has(message.id)) return true;
      this.#violation(protocolViolation(`the server sent a stream frame (type ${message.type}) for ${call === undefined ? `id ${message.id}, which has no open stream` : `unary call ${message.id}`}`));
      return false;
    }
    const verdict = this.#streams.onFrame(core, message, bytes);
    if (verdict !== undefined) return this.#streamViolation(verdict);
    if (message.type === MessageType.StreamMessage) this.#answered = true;
    return true;
  }

  #streamViolation(text: string): boolean {
    this.#violation(protocolViolation(text));
    return false;
  }

  // Returns false when the message ended the tunnel.
  #onMessage(message: Message, bytes: Buffer, start: number, end: number): boolean {
    switch (message.type) {
      case MessageType.Response:
        return this.#onResponse(message);
      case MessageType.Ping: {
        // The pong carries the ping's own bytes: re-encoding a decoded value could grow it (invalid UTF-8).
        let pong: Uint8Array;
        try {
          pong = encodePongPayload(bytes.subarray(start, end));
        } catch (error) {
          this.#violation(RpcError.from(error, 'INTERNAL'));
          return false;
        }
        this.#write(pong);
        this.#pauseIfBacklogged();
        return true;
      }
      case MessageType.Pong:
        this.#answered = true;
        return true;
      case MessageType.Goaway:
        return this.#onGoaway(message);
      default:
        this.#violation(protocolViolation(`the server sent a message of type ${message.type}, which only clients send`));
        return false;
    }
  }

  #onResponse(response: ResponseMessage): boolean {
    const call = this.#calls.get(response.id);
    if (call === undefined) {
      if (this.#abandoned.delete(response.id)) {
        this.#host.idsReleased(this, 1);
        this.#endIfDone();
        return true;
      }
      this.#violation(protocolViolation(`the server answered request id ${response.id}, which is not waiting for an answer`));
      return false;
    }
    this.#calls.delete(response.id);
    this.#streams.drop(call);
    this.#answered = true;
    this.#host.callAnswered(this, call, response.error?.code);
    if (response.error === undefined) resolveCall(call, response.result);
    else rejectCall(call, fromWireError(response.error));
    this.#endIfDone();
    return true;
  }

  #onGoaway(goaway: GoawayMessage): boolean {
    if (goaway.code !== 'UNAVAILABLE') {
      const reason = new RpcError('UNAVAILABLE', `the server closed the tunnel to ${this.#target} with goaway ${escapePeerText(goaway.code, 40)}: ${escapePeerText(goaway.message, 300)}`, { goaway: goaway.code.slice(0, 40) });
      this.#end(reason, goaway.lastId);
      this.#socket.destroy();
      return false;
    }
    if (this.#state === 'open') this.#state = 'draining';
    const refused: Call[] = [];
    for (const call of this.#calls.entries()) {
      const id = call.id;
      if (id <= goaway.lastId) continue;
      // The server drops these unanswered; keep the id reserved in case another implementation answers anyway.
      this.#calls.delete(id);
      this.#abandoned.add(id);
      call.tunnel = undefined;
      this.#streams.drop(call);
      refused.push(call);
    }
    this.#host.tunnelDraining(this, refused);
    this.#endIfDone();
    return true;
  }

  // The server broke wire-v1: tell it why, then close.
  #violation(error: RpcError): void {
    if (this.#state === 'ended') return;
    this.#write(encodePayloadParts({ type: MessageType.Goaway, lastId: 0, code: goawayCodeOf(error), message: error.message }));
    this.#end(new RpcError('UNAVAILABLE', `tunnel to ${this.#target} closed: the server sent invalid data (${error.message})`, { goaway: goawayCodeOf(error) }));
    this.#endSocket();
  }

  #endIfDone(): void {
    if (this.#state !== 'closing' && this.#state !== 'draining') return;
    if (this.#calls.size > 0) return;
    this.#end(undefined);
    this.#endSocket();
  }

  #lost(error: Error | undefined): void {
    if (this.#state === 'ended') return;
    const graceful = (this.#state === 'closing' || this.#state === 'draining') && this.#calls.size === 0;
    const errno = error === undefined ? '' : `: ${(error as NodeJS.ErrnoException).code ?? error.message}`;
    this.#end(graceful ? undefined : new RpcError('UNAVAILABLE', `lost the tunnel to ${this.#target}${errno}`, undefined, { cause: error }));
    this.#socket.destroy();
  }

  // Ends the tunnel once: every call still waiting goes back to the client, as refused when a closing goaway's
  // lastId is below its id, else as an orphan that may have run.
  #end(reason: RpcError | undefined, lastId = Infinity): void {
    if (this.#state === 'ended') return;
    this.#state = 'ended';
    this.#liveness.stop();
    const orphans: Call[] = [];
    const refused: Call[] = [];
    for (const call of this.#calls.takeAll()) {
      call.tunnel = undefined;
      call.stream?.unbind();
      (call.id > lastId ? refused : orphans).push(call);
    }
    this.#streams.clear();
    if (this.#abandoned.size > 0) this.#host.idsReleased(this, this.#abandoned.size);
    this.#abandoned.clear();
    this.#host.tunnelEnded(this, reason, orphans, refused);
  }

  // A server that pings and never reads our pongs would grow our write buffer without bound (PROTOCOL.md 5.5 says
  // "answer as soon as it can"). Past maxWriteBuffer unsent bytes, stop reading until the socket drains, as
  // HTTP/2 stacks cap outstanding ping acks: the pongs still go out, later, and the kernel holds the rest.
  #pauseIfBacklogged(): void {
    // writableNeedDrain: a 'drain' is sure to come and resume reading.
    if (this.#readPaused || !this.#socket.writableNeedDrain || this.#socket.writableLength <= this.#options.maxWriteBuffer) return;
    this.#readPaused = true;
    this.#socket.pause();
  }

  #onDrain(): void {
    if (this.#readPaused && this.#state !== 'ended') {
      this.#readPaused = false;
      this.#socket.resume();
    }
    this.#streams.drained();
    this.#host.tunnelWritable(this);
  }

  // Runs a socket event or timer callback: an unexpected throw (a bug) costs this tunnel, never the process
  // (no throw may escape a timer or a socket event).
  #guard(run: () => void): void {
    try {
      run();
    } catch (error) {
      this.#crashed(error);
    }
  }

  #crashed(error: unknown): void {
    this.#socket.destroy();
    if (this.#state === 'ended') return;
    try {
      this.#end(new RpcError('INTERNAL', `the tunnel to ${this.#target} failed inside the client (${error instanceof Error ? error.message : String(error)}); it was closed`, undefined, { cause: error }));
    } catch {
      // The client's own handler failed too: the socket is gone, nothing more to do here.
    }
  }

  // Frames go out in capped batches (FrameBatcher).
  #write(payload: PayloadParts): void {
    if (this.#socket.destroyed || this.#socket.writableEnded) return;
    this.#batcher.push(payload);
  }

  // Ends our side after what is queued, with a hard stop for a server that does not take the close.
  #endSocket(): void {
    this.#batcher.flush();
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), CLOSE_LINGER_MS).unref();
  }
}
