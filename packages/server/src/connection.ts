/**
 * One tunnel on the server side: the socket's listeners, the dispatch of each decoded frame, goaway and close, and
 * the glue between the read path (inbound.ts), the write path (outbound.ts), keepalive (keepalive.ts), the running
 * calls (calls.ts) and the streams (stream.ts). Everything that can go wrong here costs this one connection only.
 * Over 400 lines: it is where every frame type meets the connection's state (open, draining, closed) and the
 * admission of calls and streams; each of those steps already lives in its own module, and what stays is their order.
 */
import type { Socket } from 'node:net';
import { RpcError, quotePeerText, escapePeerText, type ErrorCode, type StreamKind } from '@tunnelrpc/protocol';
import {
  CONNECTED_RESPONSE,
  serverSends,
  MessageType,
  decodeFrame,
  encodePayloadParts,
  encodeResultPayload,
  encodePongPayload,
  payloadLength,
  type PayloadParts,
  frameTooLarge,
  goawayCodeOf,
  protocolViolation,
  toWireError,
  type DecodeStats,
  type GoawayCode,
  type Message,
  type NotificationMessage,
  type RequestMessage,
  type CreditMessage,
  type HalfCloseMessage,
  type StreamMessageMessage,
  type Observers,
} from '@tunnelrpc/protocol/internal';
import { Account, type Cost } from './budget.js';
import { EMPTY_HEADERS, checkRequest, newAdmission, type Admission } from './admission.js';
import { peerOf } from './peer.js';
import { HandlerContext } from './context.js';
import { Keepalive } from './keepalive.js';
import { CallTable, type CallTableHost } from './calls.js';
import { Inbound, type InboundHost } from './inbound.js';
import { Outbound } from './outbound.js';
import { errorFromHandler, prepareResult, unknownMethod, UNKNOWN_OBSERVED, UNKNOWN_OBSERVED_NOTIFICATION, type MethodTable, type RegisteredMethod } from './dispatch.js';
import type { PeerAddress } from './handler-types.js';
import type { ServerEvent } from './events.js';
import type { LogEntry } from './log.js';
import type { ResolvedServerOptions } from './options.js';
import type { TcpInfo } from '@tunnelrpc/protocol';
import { StreamTable, type StreamTableHost } from './stream.js';

/** ConnectionHost is what a connection needs from its server. @internal */
export interface ConnectionHost {
  readonly options: ResolvedServerOptions;
  readonly methods: MethodTable;
  /**
   * Takes a share of the server-wide budget for a call, notification or stream (`calls` 1, the default), or for a
   * stream message held for its handler (`calls` 0); the refusal when there is none.
   */
  acquireCall(connection: ServerConnection, cost: Cost, calls?: number): RpcError | undefined;
  releaseCall(connection: ServerConnection, cost: Cost, calls?: number): void;
  /**
   * What this connection holds of answers its peer does not read is now `bytes` (0 once it reads again or closes);
   * the error that must cut it off when the server-wide maxUnsentBytes is passed and it holds more than its share.
   */
  unsentChanged(connection: ServerConnection, bytes: number): RpcError | undefined;
  /** Bytes of unfinished frames held by this connection changed by `delta`. */
  partialBytesChanged(delta: number): void;
  /** True while unfinished frames across the server hold maxPartialFrameBytes. */
  partialOverCap(): boolean;
  /** Feeds `connection` its held chunk (resumeHeld) once unfinished frames drop under maxPartialFrameBytes. */
  waitForPartialRoom(connection: ServerConnection): void;
  connectionClosed(connection: ServerConnection): void;
  /** Reports to ServerOptions.logger, rate-limited; a logger that throws is ignored. */
  readonly log: (entry: LogEntry) => void;
  /** Aborted when the server begins to shut down: every handler's ctx.draining. */
  readonly draining: AbortSignal;
  /** Hands an event to ServerOptions.listeners, each guarded; undefined when there are none. */
  readonly emit: ((event: ServerEvent) => void) | undefined;
  /** ServerOptions.observers, each guarded; undefined when there are none (the stage then costs nothing). */
  readonly observers: Observers | undefined;
}

/** What a call's answer told its caller: 'OK' for a result, else the error's code (for observers). */
type AnswerCode = ErrorCode | 'OK';

// Hard stop for a socket that was told goaway but does not take the close (a peer that never reads).
const CLOSE_LINGER_MS = 1000;
// What the last decodeMessage measured; read right after it (decoding is synchronous, one frame at a time).
const DECODE_STATS: DecodeStats = { items: 0, largestMap: 0 };
// The connection of each tunneled socket, for the shared socket listeners.
const CONNECTIONS = new WeakMap<Socket, ServerConnection>();

/** ServerConnection serves wire-v1 on one taken-over socket. @internal */
export class ServerConnection implements InboundHost, CallTableHost {
  readonly #socket: Socket;
  readonly #host: ConnectionHost;
  readonly #options: ResolvedServerOptions;
  // Idle tunnels are most tunnels: the collections below start as shared empty ones and get their own on first use.
  // Running unary calls and notifications, made with the first that outlives its frame: idle tunnels are most tunnels.
  #table: CallTable | undefined;
  // Open streams (PROTOCOL.md 12), made with the first; they do not count towards maxInFlight, so a stalled stream
  // never pauses reading.
  #streams: StreamTable | undefined;
  // Highest request id taken, -1 before the first: a stream frame for an id above it names a stream never opened.
  #highestId = -1;
  // Frames waiting for 'drain' because maxWriteBuffer was queued already, and their bytes.
  readonly #address: string;
  // Taken once at the start: the socket forgets its address once closed (peer-address.ts: PROXY header first).
  readonly #peer: PeerAddress;
  readonly #auth: unknown;
  // Signals of running notification handlers, aborted at their deadline or when the connection closes.
  #state: 'open' | 'draining' | 'closed' = 'open';
  #lastId = 0;
  #lastActivity = Date.now();
  readonly #in: Inbound;
  readonly #out: Outbound;
  readonly #keepalive: Keepalive;
  // Where #admit leaves the params and headers of the request it passed (checkRequest), taken at once.
  readonly #admission: Admission = newAdmission();
  // When the chunk being read arrived (performance.now()), kept only while there are observers.
  #arrivedAt = 0;
  /** What this connection's running calls hold of the server-wide budget. */
  readonly account = new Account();
  /** The account of this connection's source address, when the budget is shared by address. */
  addressAccount: Account | undefined;
  /** Server-wide number of this tunnel, for its events; the server sets it. */
  tunnelId = 0;
  /** When the tunnel opened (Date.now()). */
  readonly openedAt = Date.now();
  /** Requests and notifications received. */
  callsReceived = 0;
  // Why the tunnel ends, for its close event: the first of goaway, violation, destroy, the peer's end.
  #closeReason: string | undefined;
  // When the client half-closed (TCP FIN), 0 before: its calls may run halfCloseTimeout more.
  #peerEndedAt = 0;
  // Calls running, as the last active/idle event told.
  #busy = false;

  constructor(host: ConnectionHost, socket: Socket, auth: unknown) {
    this.#host = host;
    this.#options = host.options;
    this.#socket = socket;
    this.#auth = auth;
    this.#in = new Inbound(socket, this, this.#options.maxFrameSize);
    this.#out = new Outbound(socket, this.#options);
    this.#keepalive = new Keepalive(this.#options, this.#lastActivity);
    // Kept as a string: the socket forgets its address once closed, and the per-IP count needs it then.
    this.#peer = peerOf(socket);
    this.#address = this.#peer.address ?? 'unknown';
    CONNECTIONS.set(socket, this);
    socket.on('data', ServerConnection.#socketData);
    socket.on('drain', ServerConnection.#socketDrain);
    socket.on('close', ServerConnection.#socketClose);
    socket.on('end', ServerConnection.#socketEnd);
  }

  // One listener function per event for all tunnels, instead of four closures per tunnel. Each is a way into the
  // connection from outside our own stack, so each is guarded: a throw costs this connection, never the process.
  static #socketData(this: Socket, chunk: Buffer): void {
    const connection = CONNECTIONS.get(this);
    if (connection === undefined) return;
    try {
      connection.#onData(chunk);
    } catch (error) {
      connection.#crash(error);
    }
  }

  static #socketDrain(this: Socket): void {
    const connection = CONNECTIONS.get(this);
    if (connection === undefined) return;
    try {
      connection.#onDrain();
    } catch (error) {
      connection.#crash(error);
    }
  }

  static #socketClose(this: Socket): void {
    const connection = CONNECTIONS.get(this);
    if (connection === undefined) return;
    try {
      connection.#onClose();
    } catch (error) {
      connection.#crash(error);
    }
  }

  static #socketEnd(this: Socket): void {
    const connection = CONNECTIONS.get(this);
    if (connection === undefined) return;
    try {
      connection.#onPeerEnd();
    } catch (error) {
      connection.#crash(error);
    }
  }

  /** guarded runs `step` from a timer or promise callback; a throw costs this connection, logged. */
  guarded(step: () => void): void {
    try {
      step();
    } catch (error) {
      this.#crash(error);
    }
  }

  // An error nobody expected (a bug, a value that cannot be encoded): logged, and this connection destroyed with its
  // calls aborted. No goaway: the peer did nothing wrong that a code could name; its calls fail "may have run".
  #crash(error: unknown): void {
    this.#host.log({ level: 'error', message: 'unexpected error; this tunnel is closed, others are not affected', peer: this.#peerText(), error });
    try {
      this.destroy(new RpcError('UNAVAILABLE', 'the server closed the tunnel after an internal error'));
    } catch {
      this.#socket.destroy();
    }
  }

  /** open answers the handshake (200, or 101 for an Upgrade) and feeds the bytes that came with the head (Node's `head`) to the decoder. */
  open(head: Buffer, reply: string = CONNECTED_RESPONSE): void {
    this.#socket.write(reply);
    if (head.length > 0) this.guarded(() => this.#onData(head));
  }

  /** resumeHeld feeds a chunk held back while the server was over maxPartialFrameBytes; the server calls it. */
  resumeHeld(): void {
    this.guarded(() => this.#in.resumeHeld());
  }

  /** peerAddress is the remote IP address, for the per-IP connection count. */
  get peerAddress(): string {
    return this.#address;
  }

  /** drain sends goaway UNAVAILABLE: calls in flight finish, then the socket closes. */
  drain(reason: string): void {
    if (this.#state !== 'open') return;
    this.#send({ type: MessageType.Goaway, lastId: this.#lastId, code: 'UNAVAILABLE', message: reason });
    this.#closeReason ??= reason;
    this.#host.emit?.({ type: 'goaway', tunnel: this.tunnelId, direction: 'sent', code: 'UNAVAILABLE', message: reason });
    this.#state = 'draining';
    // Frames read but not dispatched yet are still handled (PROTOCOL.md 7.2): requests are dropped, but a cancel
    // for a call taken before the goaway is honoured and a ping answered. Pumping also resumes a socket paused at
    // maxInFlight, without which those frames, and the peer's FIN, would never be read.
    if (this.#in.hasBacklog) this.#in.pump();
    this.#closeIfIdle();
  }

  /** destroy ends the connection now; calls still running are aborted. */
  destroy(reason: RpcError): void {
    if (this.#state === 'closed') return;
    this.#closeReason ??= reason.message;
    this.#abortAll(reason);
    this.#socket.destroy();
  }

  /** checkTimers runs from the server's sweep: idle, frame completion, drain and keepalive deadlines. */
  checkTimers(now: number): void {
    if (this.#state === 'closed') return;
    const { idleTimeout, frameTimeout, drainTimeout, halfCloseTimeout } = this.#options;
    if (halfCloseTimeout > 0 && this.#peerEndedAt > 0 && now - this.#peerEndedAt >= halfCloseTimeout) {
      this.destroy(new RpcError('UNAVAILABLE', `the client half-closed the connection ${halfCloseTimeout} ms ago (halfCloseTimeout) and could no longer cancel; calls still running were cut off`));
      return;
    }
    // A client with calls running that has gone silent: ping it, and give up on it when the ping gets nothing back.
    if (this.#callCount() + this.#streamCount() > 0) {
      const verdict = this.#keepalive.check(now);
      if (verdict === 'ping') {
        this.#send({ type: MessageType.Ping, data: now % 0x1_0000_0000 });
      } else if (verdict !== undefined) {
        this.destroy(verdict);
        return;
      }
    }
    // While we do not read the socket (maxInFlight reached, or the peer not reading our writes), a partial frame is
    // stalled by us, not by the peer: its clock restarts when reading resumes.
    if (this.#in.frameStalled(now, frameTimeout)) {
      this.#fail(protocolViolation(`a frame took longer than frameTimeout ${frameTimeout} ms to arrive`));
    } else if (drainTimeout > 0 && this.#out.blockedSince > 0 && now - this.#out.blockedSince >= drainTimeout) {
      this.destroy(new RpcError('UNAVAILABLE', `peer did not read its responses within drainTimeout ${drainTimeout} ms`));
    } else if (
      idleTimeout > 0 &&
      this.#state === 'open' &&
      this.#callCount() === 0 &&
      this.#streamCount() === 0 &&
      this.#notificationCount() === 0 &&
      now - this.#lastActivity >= idleTimeout
    ) {
      this.drain(`tunnel idle for ${idleTimeout} ms; reconnect when there is work`);
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#state === 'closed') return;
    this.#lastActivity = Date.now();
    // One clock read per chunk for every call it brings: when its bytes arrived is when observers see it start.
    if (this.#host.observers !== undefined) this.#arrivedAt = performance.now();
    this.#keepalive.received(this.#lastActivity);
    this.#in.push(chunk, this.#lastActivity);
  }

  // ---- InboundHost, for the read path ----

  /** isClosed tells the read path that nothing more is to be read. */
  isClosed(): boolean {
    return this.#state === 'closed';
  }

  /** atCapacity: only an open connection takes new calls; while draining, every frame left can be handled at once. */
  atCapacity(): boolean {
    return this.#state === 'open' && this.#callCount() + this.#notificationCount() >= this.#options.maxInFlight;
  }

  /** writeBlocked tells whether the peer is behind on reading our answers. */
  writeBlocked(): boolean {
    return this.#out.blockedSince > 0;
  }

  /** readFailed: a violation found while reading frames. */
  readFailed(error: RpcError): void {
    this.#fail(error);
  }

  /** partialBytesChanged, partialOverCap, waitForPartialRoom: the server-wide cap on unfinished frames. */
  partialBytesChanged(delta: number): void {
    this.#host.partialBytesChanged(delta);
  }

  partialOverCap(): boolean {
    return this.#host.partialOverCap();
  }

  waitForPartialRoom(): void {
    this.#host.waitForPartialRoom(this);
  }

  /** handleFrame decodes and handles one frame payload; false when it ended the connection. */
  handleFrame(bytes: Buffer, start: number, end: number): boolean {
    return this.#handleFrame(bytes, start, end);
  }

  // Returns false when the frame ended the connection.
  #handleFrame(bytes: Buffer, start: number, end: number): boolean {
    let message: Message;
    try {
      message = decodeFrame(bytes, start, end, this.#options, DECODE_STATS);
    } catch (error) {
      this.#fail(RpcError.from(error, 'INTERNAL'));
      return false;
    }
    switch (message.type) {
      case MessageType.Request:
        this.callsReceived++;
        return this.#onRequest(message, end - start);
      case MessageType.Notification:
        this.callsReceived++;
        this.#onNotification(message, end - start);
        return true;
      case MessageType.Cancel: {
        this.#table?.cancel(message.id);
        this.#streams?.cancel(message.id, (path) => new RpcError('CANCELLED', `stream ${path} was cancelled by the client`, { mayHaveRun: true }));
        return true;
      }
      case MessageType.StreamMessage:
      case MessageType.HalfClose:
      case MessageType.Credit:
        return this.#onStreamFrame(message, end - start);
      case MessageType.Ping:
        return this.#onPing(bytes.subarray(start, end));
      case MessageType.Pong:
        return true;
      case MessageType.Goaway:
        return this.#onPeerGoaway(message.code, message.message);
      case MessageType.Response:
        this.#fail(protocolViolation('a response was sent to the server; only the server answers requests'));
        return false;
    }
  }

  #onRequest(request: RequestMessage, bytes: number): boolean {
    // After our goaway the client has failed ids above lastId itself; answering them would confuse it.
    if (this.#state !== 'open') return true;
    if (this.#table?.has(request.id) === true || this.#streams?.has(request.id) === true) {
      this.#fail(protocolViolation(`request id ${request.id} is already in flight on this connection`));
      return false;
    }
    // PROTOCOL.md 7.6: the highest id taken. After a client's ids wrap this errs towards "may have run", never
    // towards re-sending a call the server took.
    if (request.id > this.#lastId) this.#lastId = request.id;
    if (request.id > this.#highestId) this.#highestId = request.id;
    this.#keepalive.callArrived();
    const method = this.#host.methods.get(request.method) ?? this.#host.methods.unknown(request.method);
    const observers = this.#host.observers;
    // When the chunk arrived: every call in it starts then (0, and never read, without observers).
    const startedAt = this.#arrivedAt;
    if (method === undefined) {
      observers?.started(UNKNOWN_OBSERVED);
      const code = this.#respond(request.id, unknownMethod(request.method), undefined);
      observers?.ended(UNKNOWN_OBSERVED, code, startedAt);
      return true;
    }
    observers?.started(method.observed);
    if (method.kind !== 'unary') {
      const refused = this.#openStream(request, method, method.kind, bytes, startedAt);
      if (refused !== undefined) observers?.ended(method.observed, refused, startedAt);
      return true;
    }
    const code = this.#runCall(request, method, bytes, startedAt);
    // Answered here: its answer leaves with the tick's batch, and its end is told then.
    if (code !== undefined) observers?.endedSoon(method.observed, code, startedAt);
    return true;
  }

  // Admits and runs one unary call. Returns the code of its answer when it was answered here (refused, or a
  // synchronous handler), undefined when the call table waits for its handler.
  #runCall(request: RequestMessage, method: RegisteredMethod, bytes: number, startedAt: number): AnswerCode | undefined {
    const timeout = Math.min(request.meta?.timeout ?? this.#options.defaultTimeout, method.spec.maxTimeout ?? this.#options.maxTimeout);
    if (timeout === 0) {
      return this.#respond(request.id, new RpcError('DEADLINE_EXCEEDED', `deadline of ${method.path} had passed before it arrived`, { mayHaveRun: false }), undefined);
    }
    const cost = this.#admit(method, request.params, request.meta?.headers, bytes);
    if (cost instanceof RpcError) return this.#respond(request.id, cost, undefined);
    const headers = this.#admission.headers;
    const input = this.#takeInput();
    const deadline = Date.now() + timeout;
    const ctx = this.#context(method.path, deadline, headers, false);
    let outcome: unknown;
    try {
      outcome = method.handler(input, ctx);
      // A handler that answers synchronously needs no timer and no entry in the in-flight map.
      if (!(outcome instanceof Promise) && !isThenable(outcome)) {
        this.#host.releaseCall(this, cost);
        return this.#respondResult(request.id, method, outcome);
      }
    } catch (error) {
      this.#host.releaseCall(this, cost);
      return this.#respond(request.id, this.#handlerError(error, method.path, ctx), undefined);
    }
    (this.#table ??= new CallTable(this)).run(request.id, method, ctx, timeout, cost, outcome, startedAt);
    if (this.#host.emit !== undefined) this.#checkBusy();
    return undefined;
  }

  // PROTOCOL.md 12.1: a request for a stream method opens the stream; the id names it from then on. The checks are
  // a call's, plus the stream count and the client's bound on our messages.
  // The code of its refusal, or undefined once the stream is open.
  #openStream(request: RequestMessage, method: RegisteredMethod, kind: StreamKind, bytes: number, startedAt: number): AnswerCode | undefined {
    const { maxStreams } = this.#options;
    const refuse = (error: RpcError): AnswerCode => this.#respond(request.id, error, undefined);
    if (this.#streamCount() >= maxStreams) {
      return refuse(new RpcError('RESOURCE_EXHAUSTED', `this connection has maxStreams ${maxStreams} streams open; end some, or open another connection`, { mayHaveRun: false, maxStreams }));
    }
    const meta = request.meta ?? {};
    if (serverSends(kind) && meta.maxMessageSize === undefined) {
      return refuse(new RpcError('INVALID_ARGUMENT', `opening ${method.path} (a ${kind}) needs meta.maxMessageSize: the largest stream message the client accepts`, { mayHaveRun: false }));
    }
    const timeout = Math.min(meta.timeout ?? this.#options.defaultTimeout, method.spec.maxTimeout ?? this.#options.maxTimeout);
    if (timeout === 0) {
      return refuse(new RpcError('DEADLINE_EXCEEDED', `deadline of ${method.path} had passed before it arrived`, { mayHaveRun: false }));
    }
    const cost = this.#admit(method, request.params, meta.headers, bytes);
    if (cost instanceof RpcError) return refuse(cost);
    const headers = this.#admission.headers;
    const input = this.#takeInput();
    const ctx = this.#context(method.path, Date.now() + timeout, headers, false);
    this.#streams ??= new StreamTable(this.#streamHost());
    this.#streams.open(request.id, method, kind, ctx, cost, meta, timeout, input, startedAt);
    if (this.#host.emit !== undefined) this.#checkBusy();
    return undefined;
  }

  // Types 4, 5 and 9 from the client. A frame for a unary call, or for an id never opened, is a violation; one for
  // a stream that has ended is not (it crossed our response) and is dropped.
  #onStreamFrame(message: StreamMessageMessage | HalfCloseMessage | CreditMessage, bytes: number): boolean {
    if (this.#streams?.has(message.id) !== true) {
      if (this.#table?.has(message.id) === true) {
        this.#fail(protocolViolation(`a stream frame (type ${message.type}) arrived for unary call ${message.id}`));
        return false;
      }
      if (message.id > this.#highestId) {
        this.#fail(protocolViolation(`a stream frame (type ${message.type}) arrived for id ${message.id}, which no request opened`));
        return false;
      }
      return true;
    }
    const violation = this.#streams.onFrame(message, bytes, DECODE_STATS.items);
    if (violation === undefined) return true;
    this.#fail(protocolViolation(violation));
    return false;
  }

  #streamCount(): number {
    return this.#streams?.size ?? 0;
  }

  // What the stream table may do to this connection; made once, with the first stream.
  #streamHost(): StreamTableHost {
    return {
      options: this.#options,
      log: this.#host.log,
      observers: this.#host.observers,
      canWrite: () => this.#out.blockedSince === 0 && this.#state !== 'closed',
      write: (payload) => this.#write(payload),
      respond: (stream, error, result) => this.answer(stream.id, stream.method, error, result),
      release: (cost) => this.#host.releaseCall(this, cost),
      hold: (cost) => this.#host.acquireCall(this, cost, 0),
      unhold: (cost) => this.#host.releaseCall(this, cost, 0),
      handlerError: (thrown, path, ctx) => this.#handlerError(thrown, path, ctx),
      guarded: (step) => this.guarded(step),
      streamEnded: () => {
        if (this.#host.emit !== undefined) this.#checkBusy();
        if (this.#in.hasBacklog) this.#in.pump();
        this.#closeIfIdle();
      },
    };
  }

  // The checks between a decoded request and its handler (admission.ts), then a share of the server-wide budget.
  // Each refusal means the handler did not run.
  // Checks a request and takes its share of the budget: its cost, or the refusal. What passed is left in
  // #admission for the caller to take (#takeInput) before anything else can run.
  #admit(method: RegisteredMethod, params: unknown, rawHeaders: Record<string, string> | undefined, bytes: number): Cost | RpcError {
    const admission = this.#admission;
    const refusedCheck = checkRequest(method, params, rawHeaders, DECODE_STATS, this.#options, admission);
    if (refusedCheck !== undefined) return refusedCheck;
    const cost: Cost = { items: DECODE_STATS.items, bytes };
    const refused = this.#host.acquireCall(this, cost);
    if (refused !== undefined) {
      this.#takeInput();
      return refused;
    }
    return cost;
  }

  // The params admitted last (read the headers first); the slot lets go of both, so it keeps nothing of a call alive.
  #takeInput(): unknown {
    const input = this.#admission.input;
    this.#admission.input = undefined;
    this.#admission.headers = EMPTY_HEADERS;
    return input;
  }

  #onNotification(notification: NotificationMessage, bytes: number): void {
    if (this.#state !== 'open') return;
    const method = this.#host.methods.get(notification.method);
    const observers = this.#host.observers;
    const startedAt = this.#arrivedAt;
    if (method === undefined) {
      this.#host.log({ level: 'warn', message: `notification for unknown method ${quotePeerText(notification.method)} dropped`, peer: this.#peerText() });
      observers?.started(UNKNOWN_OBSERVED_NOTIFICATION);
      observers?.ended(UNKNOWN_OBSERVED_NOTIFICATION, 'UNIMPLEMENTED', startedAt);
      return;
    }
    observers?.started(method.observedNotification);
    const timeout = Math.min(notification.meta?.timeout ?? this.#options.defaultTimeout, method.spec.maxTimeout ?? this.#options.maxTimeout);
    if (timeout === 0) {
      this.#host.log({ level: 'warn', message: 'notification dropped: its deadline had passed before it arrived', method: method.path, code: 'DEADLINE_EXCEEDED', peer: this.#peerText() });
      observers?.ended(method.observedNotification, 'DEADLINE_EXCEEDED', startedAt);
      return;
    }
    const cost = this.#admit(method, notification.params, notification.meta?.headers, bytes);
    if (cost instanceof RpcError) {
      this.#host.log({ level: 'warn', message: `notification dropped: ${cost.message}`, method: method.path, code: cost.code, peer: this.#peerText() });
      observers?.ended(method.observedNotification, cost.code, startedAt);
      return;
    }
    const headers = this.#admission.headers;
    const input = this.#takeInput();
    const ctx = this.#context(method.path, Date.now() + timeout, headers, true);
    (this.#table ??= new CallTable(this)).runNotification(method, ctx, timeout, cost, () => method.handler(input, ctx), startedAt);
    if (this.#host.emit !== undefined) this.#checkBusy();
  }

  // A handler's failure, logged at its level: an abort after the call ended (cancel, deadline, disconnect) is the
  // handler doing what ctx.signal asked, not a crash.
  #handlerError(thrown: unknown, path: string, ctx: HandlerContext): RpcError {
    return errorFromHandler(thrown, path, this.#options.exposeInternalErrors, (entry) => this.#host.log({ ...entry, peer: this.#peerText() }), ctx.endedWith);
  }

  // Emits active on 0 -> 1 running calls (streams included) and idle on 1 -> 0 (asynchronous handlers only: a
  // synchronous one is answered before anything else can run).
  #checkBusy(): void {
    const busy = this.#callCount() + this.#notificationCount() + this.#streamCount() > 0;
    if (busy === this.#busy) return;
    this.#busy = busy;
    this.#host.emit?.(busy ? { type: 'active', tunnel: this.tunnelId } : { type: 'idle', tunnel: this.tunnelId });
  }

  /** closeReason says why the tunnel ended (or is ending), for its close event. */
  get closeReason(): string {
    return this.#closeReason ?? 'open';
  }

  /** bytesIn and bytesOut count the socket's bytes, the CONNECT head and the 200 line included. */
  get bytesIn(): number {
    return this.#socket.bytesRead;
  }

  get bytesOut(): number {
    return this.#socket.bytesWritten;
  }

  /** inFlight counts calls and notifications running now. */
  get inFlight(): number {
    return this.#callCount() + this.#notificationCount();
  }

  /** peerPort is the remote port (undefined once the socket forgot it). */
  get peerPort(): number | undefined {
    return this.#socket.remotePort;
  }

  /** tcpInfo reads the kernel's TCP_INFO for this tunnel's socket now; undefined where it cannot be read. */
  tcpInfo(): TcpInfo | undefined {
    return this.#peer.tcpInfo();
  }

  #peerText(): string {
    const port = this.#peer.port;
    return port === undefined ? this.#address : `${this.#address}:${port}`;
  }

  // The client's ping: judged by keepalive (strikes), answered with a pong carrying the ping's own bytes.
  #onPing(payload: Uint8Array): boolean {
    const refused = this.#keepalive.peerPinged(Date.now(), this.#callCount() > 0);
    if (refused !== undefined) {
      this.#fail(refused);
      return false;
    }
    let pong: Uint8Array;
    try {
      pong = encodePongPayload(payload);
    } catch (error) {
      this.#fail(RpcError.from(error, 'INTERNAL'));
      return false;
    }
    this.#write(pong);
    return true;
  }

  #onPeerGoaway(code: string, text: string): boolean {
    this.#closeReason ??= `client sent goaway ${code.slice(0, 40)}`;
    this.#host.emit?.({ type: 'goaway', tunnel: this.tunnelId, direction: 'received', code: escapePeerText(code, 40), message: escapePeerText(text) });
    if (code === 'UNAVAILABLE') {
      // The client sends no more requests: answer what is in flight, then close.
      this.#state = 'draining';
      this.#closeIfIdle();
      return true;
    }
    this.destroy(new RpcError('UNAVAILABLE', `client sent goaway ${code.slice(0, 40)}`));
    return false;
  }

  #context(method: string, deadline: number, headers: Record<string, string> | undefined, notification: boolean): HandlerContext {
    const socket = this.#socket;
    return new HandlerContext(method, deadline, headers ?? EMPTY_HEADERS, notification, this.#peer, socket, this.#auth, this.#host.draining);
  }

  // ---- CallTableHost, for the running calls ----

  /** releaseCall gives back a call's share of the server-wide budget. */
  releaseCall(cost: Cost): void {
    this.#host.releaseCall(this, cost);
  }

  /** answer sends a call's outcome, unless the tunnel has closed (nobody to answer). */
  answer(id: number, method: RegisteredMethod, error: RpcError | undefined, result: unknown): AnswerCode {
    // A result that can no longer be sent reaches its caller as the tunnel's loss.
    if (this.#state === 'closed') return error?.code ?? 'UNAVAILABLE';
    if (error === undefined) return this.#respondResult(id, method, result);
    return this.#respond(id, error, undefined);
  }

  /** observers: ServerOptions.observers, for the call table's and the streams' ends. */
  get observers(): Observers | undefined {
    return this.#host.observers;
  }

  /** handlerError maps and logs a handler's failure (see #handlerError). */
  handlerError(thrown: unknown, path: string, ctx: HandlerContext): RpcError {
    return this.#handlerError(thrown, path, ctx);
  }

  /** callEnded: a call or notification ended; emit idle, take backlogged frames, or close a draining tunnel. */
  callEnded(): void {
    if (this.#host.emit !== undefined) this.#checkBusy();
    if (this.#in.hasBacklog) this.#in.pump();
    this.#closeIfIdle();
  }

  #callCount(): number {
    return this.#table?.calls ?? 0;
  }

  #notificationCount(): number {
    return this.#table?.notifications ?? 0;
  }

  #respondResult(id: number, method: RegisteredMethod, result: unknown): AnswerCode {
    const prepared = prepareResult(method, result, this.#options.validateResults, this.#host.log);
    if (prepared.ok) return this.#respond(id, undefined, prepared.value);
    return this.#respond(id, prepared.error, undefined);
  }

  // Writes the answer; returns what it told the caller (an unencodable or oversized result becomes an error).
  #respond(id: number, error: RpcError | undefined, result: unknown): AnswerCode {
    let payload: PayloadParts;
    let code: AnswerCode = error === undefined ? 'OK' : error.code;
    try {
      payload = error === undefined ? encodeResultPayload(id, result) : encodePayloadParts({ type: MessageType.Response, id, error: toWireError(error), result: undefined });
    } catch {
      code = 'INTERNAL';
      payload = encodePayloadParts({ type: MessageType.Response, id, error: toWireError(new RpcError('INTERNAL', 'the result could not be encoded as MessagePack', { mayHaveRun: true })), result: undefined });
    }
    const length = payloadLength(payload);
    if (length > this.#options.maxFrameSize) {
      const tooLarge = frameTooLarge(length, this.#options.maxFrameSize, 'sent');
      // Only answers grow this large, and an answer means the handler ran.
      const data = { ...(tooLarge.data as object), mayHaveRun: true };
      code = tooLarge.code;
      payload = encodePayloadParts({ type: MessageType.Response, id, error: toWireError(new RpcError(tooLarge.code, tooLarge.message, data)), result: undefined });
    }
    this.#write(payload);
    return code;
  }

  #send(message: Message): void {
    this.#write(encodePayloadParts(message));
  }

  // Frames go out through the bounded write path (outbound.ts); over its high-water mark reading stops.
  #write(payload: PayloadParts): void {
    if (this.#state === 'closed' || this.#socket.destroyed) return;
    this.#lastActivity = Date.now();
    const wasBlocked = this.#out.blockedSince > 0;
    const refused = this.#out.push(payload);
    if (refused !== undefined) {
      this.destroy(refused);
      return;
    }
    if (this.#out.blockedSince === 0) return;
    if (!wasBlocked) this.#socket.pause();
    const overShare = this.#host.unsentChanged(this, this.#out.unsent);
    if (overShare !== undefined) this.destroy(overShare);
  }

  // Ends our side after what is queued (a goaway, the last answers), with a hard stop for a peer that never reads.
  #endSocket(): void {
    this.#out.flushAll();
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), CLOSE_LINGER_MS).unref();
  }

  #onDrain(): void {
    const drained = this.#out.drained();
    this.#host.unsentChanged(this, this.#out.unsent);
    if (!drained) return;
    this.#in.resume();
    this.#streams?.drained();
  }

  // A violation: goaway with a code the peer can act on, then close. The message never quotes peer bytes.
  #fail(error: RpcError): void {
    if (this.#state === 'closed') return;
    const code: GoawayCode = goawayCodeOf(error);
    this.#send({ type: MessageType.Goaway, lastId: this.#lastId, code, message: error.message });
    this.#closeReason ??= error.message;
    this.#host.emit?.({ type: 'goaway', tunnel: this.tunnelId, direction: 'sent', code, message: error.message });
    this.#abortAll(new RpcError('CANCELLED', `connection closed after ${code}: ${error.message}`));
    this.#endSocket();
  }

  #closeIfIdle(): void {
    if (this.#state === 'draining' && this.#callCount() === 0 && this.#streamCount() === 0 && this.#notificationCount() === 0) {
      this.#state = 'closed';
      this.#endSocket();
    }
  }

  #abortAll(reason: RpcError): void {
    this.#state = 'closed';
    this.#in.dropBacklog();
    this.#socket.pause();
    this.#table?.abortAll(reason);
    // Every stream ends with the reason: signal aborted, input failed, generator returned so its finally runs.
    this.#streams?.endAll(() => reason);
    if (this.#busy && this.#host.emit !== undefined) {
      this.#busy = false;
      this.#host.emit({ type: 'idle', tunnel: this.tunnelId });
    }
  }

  #onPeerEnd(): void {
    // A half-closed client sends nothing more; answer what runs, then close our side. A TCP FIN is not a stream
    // half-close (PROTOCOL.md 12.5): a stream could get neither its input's end, nor grants, nor a cancel any more,
    // and a handler must never take a cut-off input for a complete one, so each open stream ends CANCELLED.
    this.#closeReason ??= 'the client ended the connection';
    this.#peerEndedAt = Date.now();
    if (this.#state === 'open') this.#state = 'draining';
    this.#streams?.endAll((path) => new RpcError('CANCELLED', `the client closed its side of the connection (TCP FIN) while ${path} was open; a FIN is not a stream half-close`, { mayHaveRun: true }));
    this.#closeIfIdle();
  }

  #onClose(): void {
    this.#abortAll(new RpcError('CANCELLED', 'the connection to the client closed'));
    this.#in.closed();
    this.#host.unsentChanged(this, 0);
    this.#closeReason ??= 'the connection to the client closed';
    this.#host.connectionClosed(this);
  }

}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
