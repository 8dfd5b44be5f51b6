/**
 * One tunnel on the server side: a frame decoder fed from the socket, the calls in flight, a coalescing write
 * path with bounds, goaway and close. Everything that can go wrong here costs this one connection only.
 */
import type { Socket } from 'node:net';
import {
  CONNECTED_RESPONSE,
  FrameDecoder,
  MessageType,
  RpcError,
  decodeMessage,
  encodePayloadParts,
  payloadLength,
  type PayloadParts,
  FrameBatcher,
  frameTooLarge,
  goawayCodeOf,
  protocolViolation,
  toWireError,
  type DecodeStats,
  type GoawayCode,
  type Message,
  type NotificationMessage,
  type RequestMessage,
} from '@tunnelrpc/protocol';
import { HandlerContext } from './context.js';
import { errorFromHandler, parseParams, unknownMethod, type MethodTable, type PeerAddress } from './dispatch.js';
import type { ResolvedServerOptions } from './options.js';

/** ConnectionHost is what a connection needs from its server. @internal */
export interface ConnectionHost {
  readonly options: ResolvedServerOptions;
  readonly methods: MethodTable;
  /** Takes a global call slot for a call holding `items` decoded values; the refusal when the server is full. */
  acquireCall(items: number): RpcError | undefined;
  releaseCall(items: number): void;
  connectionClosed(connection: ServerConnection): void;
  /** Reports to ServerOptions.logger; a logger that throws is ignored. */
  readonly log: (message: string, detail?: unknown) => void;
}

interface ActiveCall {
  readonly id: number;
  readonly method: string;
  readonly ctx: HandlerContext;
  timer: NodeJS.Timeout | undefined;
  /** Decoded values its params hold, counted against maxItemsInFlight. */
  readonly items: number;
}

// Hard stop for a socket that was told goaway but does not take the close (a peer that never reads).
const CLOSE_LINGER_MS = 1000;
const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze(Object.create(null) as Record<string, string>);
// Shared empty collections; a connection replaces one with its own before the first write to it.
const NO_CALLS: Map<number, ActiveCall> = new Map();
const NO_NOTIFICATIONS: Set<HandlerContext> = new Set();
const NO_BACKLOG: Buffer[] = [];
// What the last decodeMessage measured; read right after it (decoding is synchronous, one frame at a time).
const DECODE_STATS: DecodeStats = { items: 0 };
// The connection of each tunneled socket, for the shared socket listeners.
const CONNECTIONS = new WeakMap<Socket, ServerConnection>();

/** ServerConnection serves wire-v1 on one taken-over socket. @internal */
export class ServerConnection {
  readonly #socket: Socket;
  readonly #host: ConnectionHost;
  readonly #options: ResolvedServerOptions;
  readonly #decoder: FrameDecoder;
  // Idle tunnels are most tunnels: the collections below start as shared empty ones and get their own on first use.
  #calls: Map<number, ActiveCall> = NO_CALLS;
  readonly #address: string;
  #peer: PeerAddress | undefined;
  readonly #auth: unknown;
  #notificationsRunning = 0;
  // Signals of running notification handlers, aborted at their deadline or when the connection closes.
  #notifications: Set<HandlerContext> = NO_NOTIFICATIONS;
  // Payloads read but not yet dispatched because maxInFlight calls were running.
  #backlog: Buffer[] = NO_BACKLOG;
  #backlogHead = 0;
  #pumping = false;
  #state: 'open' | 'draining' | 'closed' = 'open';
  #lastId = 0;
  #lastActivity = Date.now();
  #lastReceived = Date.now();
  #pingSentAt = 0;
  #frameStartedAt = 0;
  #writeBlockedSince = 0;
  readonly #batcher: FrameBatcher;
  #lastPingAt = 0;
  #pingStrikes = 0;

  constructor(host: ConnectionHost, socket: Socket, auth: unknown) {
    this.#host = host;
    this.#options = host.options;
    this.#socket = socket;
    this.#auth = auth;
    this.#decoder = new FrameDecoder(this.#options.maxFrameSize);
    this.#batcher = new FrameBatcher(socket);
    // Kept as a string: the socket forgets its address once closed, and the per-IP count needs it then.
    this.#address = socket.remoteAddress ?? 'unknown';
    CONNECTIONS.set(socket, this);
    socket.on('data', ServerConnection.#socketData);
    socket.on('drain', ServerConnection.#socketDrain);
    socket.on('close', ServerConnection.#socketClose);
    socket.on('end', ServerConnection.#socketEnd);
  }

  // One listener function per event for all tunnels, instead of four closures per tunnel.
  static #socketData(this: Socket, chunk: Buffer): void {
    const connection = CONNECTIONS.get(this);
    if (connection !== undefined) connection.#onData(chunk);
  }

  static #socketDrain(this: Socket): void {
    const connection = CONNECTIONS.get(this);
    if (connection !== undefined) connection.#onDrain();
  }

  static #socketClose(this: Socket): void {
    const connection = CONNECTIONS.get(this);
    if (connection !== undefined) connection.#onClose();
  }

  static #socketEnd(this: Socket): void {
    const connection = CONNECTIONS.get(this);
    if (connection !== undefined) connection.#onPeerEnd();
  }

  /** open answers the CONNECT and feeds the bytes that arrived with the head (Node's `head`) to the decoder. */
  open(head: Buffer): void {
    this.#socket.write(CONNECTED_RESPONSE);
    if (head.length > 0) this.#onData(head);
  }

  /** peerAddress is the remote IP address, for the per-IP connection count. */
  get peerAddress(): string {
    return this.#address;
  }

  /** drain sends goaway UNAVAILABLE: calls in flight finish, then the socket closes. */
  drain(reason: string): void {
    if (this.#state !== 'open') return;
    this.#send({ type: MessageType.Goaway, lastId: this.#lastId, code: 'UNAVAILABLE', message: reason });
    this.#state = 'draining';
    // Frames read but not dispatched yet are still handled (PROTOCOL.md 7.2): requests are dropped, but a cancel
    // for a call taken before the goaway is honoured and a ping answered. Pumping also resumes a socket paused at
    // maxInFlight, without which those frames, and the peer's FIN, would never be read.
    if (this.#backlogHead < this.#backlog.length) this.#pump();
    this.#closeIfIdle();
  }

  /** destroy ends the connection now; calls still running are aborted. */
  destroy(reason: RpcError): void {
    if (this.#state === 'closed') return;
    this.#abortAll(reason);
    this.#socket.destroy();
  }

  /** checkTimers runs from the server's sweep: idle, frame completion, drain and keepalive deadlines. */
  checkTimers(now: number): void {
    if (this.#state === 'closed') return;
    const { idleTimeout, frameTimeout, drainTimeout, keepaliveInterval, keepaliveTimeout } = this.#options;
    // A client with calls running that has gone silent: ping it, and give up on it when the ping gets nothing back.
    if (keepaliveInterval > 0 && this.#calls.size > 0) {
      if (this.#pingSentAt > 0 && this.#lastReceived < this.#pingSentAt) {
        if (now - this.#pingSentAt >= keepaliveTimeout) {
          this.destroy(new RpcError('UNAVAILABLE', `client did not answer a keepalive ping within keepaliveTimeout ${keepaliveTimeout} ms`));
          return;
        }
      } else if (now - this.#lastReceived >= keepaliveInterval) {
        this.#pingSentAt = now;
        this.#send({ type: MessageType.Ping, data: now % 0x1_0000_0000 });
      }
    }
    // While we do not read the socket (maxInFlight reached, or the peer not reading our writes), a partial frame is
    // stalled by us, not by the peer: its clock restarts when reading resumes.
    if (frameTimeout > 0 && this.#frameStartedAt > 0 && !this.#readingPaused() && now - this.#frameStartedAt >= frameTimeout) {
      this.#fail(protocolViolation(`a frame took longer than frameTimeout ${frameTimeout} ms to arrive`));
    } else if (drainTimeout > 0 && this.#writeBlockedSince > 0 && now - this.#writeBlockedSince >= drainTimeout) {
      this.destroy(new RpcError('UNAVAILABLE', `peer did not read its responses within drainTimeout ${drainTimeout} ms`));
    } else if (
      idleTimeout > 0 &&
      this.#state === 'open' &&
      this.#calls.size === 0 &&
      this.#notificationsRunning === 0 &&
      now - this.#lastActivity >= idleTimeout
    ) {
      this.drain(`tunnel idle for ${idleTimeout} ms; reconnect when there is work`);
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#state === 'closed') return;
    this.#lastActivity = Date.now();
    this.#lastReceived = this.#lastActivity;
    try {
      this.#decoder.pushEach(chunk, this.#onFrame);
    } catch (error) {
      this.#fail(RpcError.from(error, 'INTERNAL'));
      return;
    }
    this.#frameStartedAt = this.#decoder.inFrame ? this.#frameStartedAt || this.#lastActivity : 0;
    if (this.#backlogHead < this.#backlog.length) this.#pump();
  }

  // Frames beyond maxInFlight wait in the backlog, in order, and reading stops until calls finish.
  readonly #onFrame = (payload: Buffer): boolean => {
    if (this.#state === 'closed') return false;
    if (this.#backlogHead < this.#backlog.length || this.#atCapacity()) {
      if (this.#backlog === NO_BACKLOG) this.#backlog = [];
      this.#backlog.push(payload);
      this.#socket.pause();
      return true;
    }
    return this.#handleFrame(payload);
  };

  // Only an open connection takes new calls; while draining, every frame left can be handled at once.
  #atCapacity(): boolean {
    return this.#state === 'open' && this.#calls.size + this.#notificationsRunning >= this.#options.maxInFlight;
  }

  #readingPaused(): boolean {
    return this.#backlogHead < this.#backlog.length || this.#writeBlockedSince > 0;
  }

  #resumeReading(): void {
    if (this.#state === 'closed' || this.#readingPaused()) return;
    if (this.#frameStartedAt > 0) this.#frameStartedAt = Date.now();
    this.#socket.resume();
  }

  // Dispatches backlogged frames while there is room; resumes reading once the backlog is empty. A synchronous
  // handler finishes inside #handleFrame and calls back here, hence the re-entrancy guard.
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#backlogHead < this.#backlog.length && !this.#atCapacity() && this.#state !== 'closed') {
        if (!this.#handleFrame(this.#backlog[this.#backlogHead++]!)) break;
      }
    } finally {
      this.#pumping = false;
    }
    if (this.#backlogHead < this.#backlog.length) return;
    this.#backlog = NO_BACKLOG;
    this.#backlogHead = 0;
    this.#resumeReading();
  }

  // Returns false when the frame ended the connection.
  #handleFrame(payload: Buffer): boolean {
    let message: Message;
    try {
      message = decodeMessage(payload, this.#options, DECODE_STATS);
    } catch (error) {
      this.#fail(RpcError.from(error, 'INTERNAL'));
      return false;
    }
    switch (message.type) {
      case MessageType.Request:
        return this.#onRequest(message);
      case MessageType.Notification:
        this.#onNotification(message);
        return true;
      case MessageType.Cancel: {
        const call = this.#calls.get(message.id);
        if (call !== undefined) this.#finish(call, new RpcError('CANCELLED', `call ${call.method} was cancelled by the client`));
        return true;
      }
      case MessageType.Ping:
        return this.#onPing(message.data);
      case MessageType.Pong:
        return true;
      case MessageType.Goaway:
        return this.#onPeerGoaway(message.code);
      case MessageType.Response:
        this.#fail(protocolViolation('a response was sent to the server; only the server answers requests'));
        return false;
    }
  }

  #onRequest(request: RequestMessage): boolean {
    // After our goaway the client has failed ids above lastId itself; answering them would confuse it.
    if (this.#state !== 'open') return true;
    if (this.#calls.has(request.id)) {
      this.#fail(protocolViolation(`request id ${request.id} is already in flight on this connection`));
      return false;
    }
    // PROTOCOL.md 7.6: the highest id taken. After a client's ids wrap this errs towards "may have run", never
    // towards re-sending a call the server took.
    if (request.id > this.#lastId) this.#lastId = request.id;
    this.#pingStrikes = 0;
    const method = this.#host.methods.get(request.method);
    if (method === undefined) {
      this.#respond(request.id, unknownMethod(request.method), undefined);
      return true;
    }
    const timeout = Math.min(request.meta?.timeout ?? this.#options.defaultTimeout, this.#options.maxTimeout);
    if (timeout === 0) {
      this.#respond(request.id, new RpcError('DEADLINE_EXCEEDED', `deadline of ${method.path} had passed before it arrived`), undefined);
      return true;
    }
    const parsed = parseParams(method, request.params, this.#options.validateParams);
    if (!parsed.ok) {
      this.#respond(request.id, parsed.error, undefined);
      return true;
    }
    const items = DECODE_STATS.items;
    const full = this.#host.acquireCall(items);
    if (full !== undefined) {
      this.#respond(request.id, full, undefined);
      return true;
    }
    const deadline = Date.now() + timeout;
    const ctx = this.#context(method.path, deadline, request.meta?.headers, false);
    let outcome: unknown;
    try {
      outcome = method.handler(parsed.input, ctx);
      // A handler that answers synchronously needs no timer and no entry in the in-flight map.
      if (!(outcome instanceof Promise) && !isThenable(outcome)) {
        this.#host.releaseCall(items);
        this.#respond(request.id, undefined, outcome);
        return true;
      }
    } catch (error) {
      this.#host.releaseCall(items);
      this.#respond(request.id, errorFromHandler(error, method.path, this.#options.exposeInternalErrors, this.#host.log), undefined);
      return true;
    }
    const call: ActiveCall = { id: request.id, method: method.path, ctx, timer: undefined, items };
    if (this.#calls === NO_CALLS) this.#calls = new Map();
    this.#calls.set(request.id, call);
    call.timer = setTimeout(() => {
      this.#finish(call, new RpcError('DEADLINE_EXCEEDED', `${method.path} passed its deadline of ${timeout} ms`));
    }, Math.max(0, deadline - Date.now()));
    Promise.resolve(outcome).then(
      (result) => this.#finish(call, undefined, result),
      (error: unknown) => this.#finish(call, errorFromHandler(error, method.path, this.#options.exposeInternalErrors, this.#host.log)),
    );
    return true;
  }

  #onNotification(notification: NotificationMessage): void {
    if (this.#state !== 'open') return;
    const method = this.#host.methods.get(notification.method);
    if (method === undefined) {
      this.#host.log(`notification for unknown method ${JSON.stringify(notification.method.slice(0, 200))} dropped`);
      return;
    }
    const parsed = parseParams(method, notification.params, this.#options.validateParams);
    if (!parsed.ok) {
      this.#host.log(`notification ${method.path} dropped: ${parsed.error.message}`);
      return;
    }
    const timeout = Math.min(notification.meta?.timeout ?? this.#options.defaultTimeout, this.#options.maxTimeout);
    if (timeout === 0) {
      this.#host.log(`notification ${method.path} dropped: its deadline had passed before it arrived`);
      return;
    }
    const ctx = this.#context(method.path, Date.now() + timeout, notification.meta?.headers, true);
    this.#notificationsRunning++;
    if (this.#notifications === NO_NOTIFICATIONS) this.#notifications = new Set();
    this.#notifications.add(ctx);
    // PROTOCOL.md 8.1 / 5.3: a notification's signal is aborted at its deadline too; nothing is sent.
    const timer = setTimeout(() => {
      ctx.abort(new RpcError('DEADLINE_EXCEEDED', `notification ${method.path} passed its deadline of ${timeout} ms`));
    }, timeout);
    const done = (error?: unknown): void => {
      clearTimeout(timer);
      this.#notifications.delete(ctx);
      this.#notificationsRunning--;
      if (error !== undefined) errorFromHandler(error, method.path, false, this.#host.log);
      if (this.#backlogHead < this.#backlog.length) this.#pump();
      this.#closeIfIdle();
    };
    try {
      Promise.resolve(method.handler(parsed.input, ctx)).then(() => done(), (error: unknown) => done(error ?? 'rejected'));
    } catch (error) {
      done(error ?? 'threw');
    }
  }

  // gRPC's keepalive enforcement: pings with no call running may come once per minPingInterval; a client that
  // floods them past maxPingStrikes costs us CPU for nothing and is cut off.
  #onPing(data: unknown): boolean {
    const { minPingInterval, maxPingStrikes } = this.#options;
    const now = Date.now();
    if (minPingInterval > 0 && this.#calls.size === 0 && now - this.#lastPingAt < minPingInterval) {
      if (++this.#pingStrikes > maxPingStrikes) {
        this.#fail(new RpcError('RESOURCE_EXHAUSTED', `too many pings: more than ${maxPingStrikes} sooner than minPingInterval ${minPingInterval} ms with no call running; ping less often`));
        return false;
      }
    }
    this.#lastPingAt = now;
    this.#send({ type: MessageType.Pong, data });
    return true;
  }

  #onPeerGoaway(code: string): boolean {
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
    this.#peer ??= { address: socket.remoteAddress, port: socket.remotePort, family: socket.remoteFamily };
    return new HandlerContext(method, deadline, headers ?? EMPTY_HEADERS, notification, this.#peer, socket, this.#auth);
  }

  // Settles a call exactly once: the Map entry is the guard (Go's pending delete-then-done).
  #finish(call: ActiveCall, error: RpcError | undefined, result?: unknown): void {
    if (this.#calls.get(call.id) !== call) return;
    this.#calls.delete(call.id);
    clearTimeout(call.timer);
    this.#host.releaseCall(call.items);
    if (error !== undefined) call.ctx.abort(error);
    if (this.#state !== 'closed') this.#respond(call.id, error, result);
    if (this.#backlogHead < this.#backlog.length) this.#pump();
    this.#closeIfIdle();
  }

  #respond(id: number, error: RpcError | undefined, result: unknown): void {
    let payload: PayloadParts;
    try {
      payload = encodePayloadParts(error === undefined ? { type: MessageType.Response, id, result } : { type: MessageType.Response, id, error: toWireError(error), result: undefined });
    } catch {
      payload = encodePayloadParts({ type: MessageType.Response, id, error: toWireError(new RpcError('INTERNAL', 'the result could not be encoded as MessagePack')), result: undefined });
    }
    const length = payloadLength(payload);
    if (length > this.#options.maxFrameSize) {
      const tooLarge = frameTooLarge(length, this.#options.maxFrameSize, 'sent');
      payload = encodePayloadParts({ type: MessageType.Response, id, error: toWireError(tooLarge), result: undefined });
    }
    this.#write(payload);
  }

  #send(message: Message): void {
    this.#write(encodePayloadParts(message));
  }

  // Frames go out in capped batches (FrameBatcher); what a non-reading peer can make us queue is bounded.
  #write(payload: PayloadParts): void {
    if (this.#state === 'closed' || this.#socket.destroyed) return;
    this.#lastActivity = Date.now();
    // The cap applies to what is still queued from before this frame: a peer holds at most maxWriteBuffer plus one
    // frame (RELIABILITY.md T18), and two large results written in one tick do not cut off a peer that reads.
    const backlog = this.#socket.writableLength + this.#batcher.queuedBytes;
    if (backlog > this.#options.maxWriteBuffer) {
      this.destroy(new RpcError('RESOURCE_EXHAUSTED', `peer is not reading: ${backlog} bytes queued exceed maxWriteBuffer ${this.#options.maxWriteBuffer}`));
      return;
    }
    this.#batcher.push(payload);
    const queued = this.#socket.writableLength + this.#batcher.queuedBytes;
    if (queued > this.#options.writeHighWaterMark && this.#writeBlockedSince === 0) {
      this.#writeBlockedSince = Date.now();
      this.#socket.pause();
    }
  }

  // Ends our side after what is queued (a goaway, the last answers), with a hard stop for a peer that never reads.
  #endSocket(): void {
    this.#batcher.flush();
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), CLOSE_LINGER_MS).unref();
  }

  #onDrain(): void {
    if (this.#writeBlockedSince === 0) return;
    this.#writeBlockedSince = 0;
    this.#resumeReading();
  }

  // A violation: goaway with a code the peer can act on, then close. The message never quotes peer bytes.
  #fail(error: RpcError): void {
    if (this.#state === 'closed') return;
    const code: GoawayCode = goawayCodeOf(error);
    this.#send({ type: MessageType.Goaway, lastId: this.#lastId, code, message: error.message });
    this.#abortAll(new RpcError('CANCELLED', `connection closed after ${code}: ${error.message}`));
    this.#endSocket();
  }

  #closeIfIdle(): void {
    if (this.#state === 'draining' && this.#calls.size === 0 && this.#notificationsRunning === 0) {
      this.#state = 'closed';
      this.#endSocket();
    }
  }

  #abortAll(reason: RpcError): void {
    this.#state = 'closed';
    this.#backlog = NO_BACKLOG;
    this.#backlogHead = 0;
    this.#socket.pause();
    for (const call of this.#calls.values()) {
      clearTimeout(call.timer);
      this.#host.releaseCall(call.items);
      call.ctx.abort(reason);
    }
    this.#calls.clear();
    for (const ctx of this.#notifications) ctx.abort(reason);
  }

  #onPeerEnd(): void {
    // A half-closed client sends nothing more; answer what runs, then close our side.
    if (this.#state === 'open') this.#state = 'draining';
    this.#closeIfIdle();
  }

  #onClose(): void {
    this.#abortAll(new RpcError('CANCELLED', 'the connection to the client closed'));
    this.#host.connectionClosed(this);
  }

}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
