/**
 * RpcClient: many concurrent calls multiplexed over one tunnel, answered in any order. Every call ends:
 * answered, or failed with an RpcError whose code says why and whose data says whether it may have run.
 */
import type { Socket } from 'node:net';
import {
  FrameDecoder,
  MAX_UINT32,
  MessageType,
  RpcError,
  decodeMessage,
  encodeMessage,
  frameTooLarge,
  fromWireError,
  goawayCodeOf,
  protocolViolation,
  type GoawayMessage,
  type Message,
  type RequestMeta,
  type ResponseMessage,
} from '@tunnelrpc/protocol';
import type { ResolvedClientOptions } from './options.js';

/** CallOptions tune one call. */
export interface CallOptions {
  /** Deadline in ms from now; the server gets it as meta.timeout. Default: the client's defaultTimeout. */
  timeout?: number;
  /** Aborting it fails the call with CANCELLED and sends a cancel to the server. */
  signal?: AbortSignal;
  /** Headers for the handler (ctx.headers): trace ids, per-call credentials. */
  headers?: Record<string, string>;
}

/** NotifyOptions tune one notification. */
export interface NotifyOptions {
  /** Headers for the handler (ctx.headers). */
  headers?: Record<string, string>;
}

/** CallFailure says, in every locally made error's `data`, whether the server may have run the call. */
export interface CallFailure {
  /** False when the call surely did not run (never sent, or refused by a goaway): safe to retry. */
  mayHaveRun: boolean;
}

interface PendingCall {
  readonly id: number;
  readonly method: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: RpcError) => void;
  readonly timer: NodeJS.Timeout;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: (() => void) | undefined;
}

// Hard stop for a socket we closed after a violation but whose peer does not take the close.
const CLOSE_LINGER_MS = 1000;

/** RpcClient sends calls and notifications over one tunnel. Create it with connect(). */
export class RpcClient {
  readonly #socket: Socket;
  readonly #options: ResolvedClientOptions;
  readonly #decoder: FrameDecoder;
  readonly #target: string;
  readonly #pending = new Map<number, PendingCall>();
  // Ids given up locally (deadline, abort, goaway) whose answer may still come: the id stays reserved until then.
  readonly #abandoned = new Set<number>();
  #nextId = 1;
  #state: 'open' | 'draining' | 'closing' | 'closed' = 'open';
  #closeReason: RpcError | undefined;
  #corked = false;
  #corkedBytes = 0;
  readonly #closed: Promise<RpcError | undefined>;
  #resolveClosed!: (reason: RpcError | undefined) => void;

  /** @internal Use connect(). */
  constructor(socket: Socket, rest: Buffer, options: ResolvedClientOptions, target: string) {
    this.#socket = socket;
    this.#options = options;
    this.#target = target;
    this.#decoder = new FrameDecoder(options.maxFrameSize);
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    socket.on('error', (error) => this.#lost(error));
    socket.on('close', () => this.#lost(undefined));
    socket.on('end', () => this.#lost(undefined));
    if (rest.length > 0) this.#onData(rest);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
  }

  /** target is the URL this client dialed. */
  get target(): string {
    return this.#target;
  }

  /** pendingCalls counts calls waiting for an answer. */
  get pendingCalls(): number {
    return this.#pending.size;
  }

  /** closed resolves when the tunnel is gone: undefined after close(), else the error that ended it. */
  get closed(): Promise<RpcError | undefined> {
    return this.#closed;
  }

  /**
   * call invokes `method` ("Service.method") and resolves with its result, or rejects with an RpcError:
   * the server's error, DEADLINE_EXCEEDED at the deadline, CANCELLED on abort, UNAVAILABLE when the tunnel is lost.
   */
  call(method: string, params?: unknown, options: CallOptions = {}): Promise<unknown> {
    const refused = this.#refuseNew(method);
    if (refused !== undefined) return Promise.reject(refused);
    if (this.#pending.size + this.#abandoned.size >= this.#options.maxPendingCalls) {
      return Promise.reject(
        new RpcError('RESOURCE_EXHAUSTED', `${method} not sent: ${this.#options.maxPendingCalls} calls are waiting for answers (maxPendingCalls); slow down or raise the limit`, { mayHaveRun: false }),
      );
    }
    // Frames corked in this tick are on their way; only bytes left over from earlier ticks mean a server not reading.
    const unsent = this.#socket.writableLength - this.#corkedBytes;
    if (unsent > this.#options.maxWriteBuffer) {
      return Promise.reject(
        new RpcError('RESOURCE_EXHAUSTED', `${method} not sent: ${unsent} bytes are queued to a server that is not reading (maxWriteBuffer ${this.#options.maxWriteBuffer})`, { mayHaveRun: false }),
      );
    }
    const signal = options.signal;
    if (signal?.aborted === true) {
      return Promise.reject(new RpcError('CANCELLED', `${method} not sent: its AbortSignal was aborted already`, { mayHaveRun: false }, { cause: signal.reason }));
    }
    const timeout = options.timeout ?? this.#options.defaultTimeout;
    if (!Number.isInteger(timeout) || timeout < 0 || timeout > 2_147_483_647) {
      return Promise.reject(new RpcError('INVALID_ARGUMENT', `timeout of ${method} must be an integer of ms from 0 to 2147483647; got ${String(timeout)}`));
    }
    const meta: RequestMeta = options.headers === undefined ? { timeout } : { timeout, headers: options.headers };
    const id = this.#allocateId();
    let frame: Buffer;
    try {
      frame = encodeMessage({ type: MessageType.Request, id, method, params, meta });
    } catch (error) {
      return Promise.reject(new RpcError('INVALID_ARGUMENT', `${method} not sent: its params cannot be encoded as MessagePack (${(error as Error).message})`, { mayHaveRun: false }));
    }
    if (frame.length - 4 > this.#options.maxFrameSize) {
      const tooLarge = frameTooLarge(frame.length - 4, this.#options.maxFrameSize, 'sent');
      return Promise.reject(new RpcError('RESOURCE_EXHAUSTED', `${method} not sent: ${tooLarge.message}`, { ...(tooLarge.data as object), mayHaveRun: false }));
    }
    return new Promise((resolve, reject) => {
      const onAbort =
        signal === undefined
          ? undefined
          : (): void => this.#giveUp(id, RpcError.from(signal.reason, 'CANCELLED'), `${method} was cancelled by its AbortSignal`);
      const timer = setTimeout(() => {
        this.#giveUp(id, undefined, `${method} passed its deadline of ${timeout} ms`);
      }, timeout);
      this.#pending.set(id, { id, method, resolve, reject, timer, signal, onAbort });
      signal?.addEventListener('abort', onAbort!, { once: true });
      this.#write(frame);
    });
  }

  /** notify sends a notification: no answer, no result. Throws RpcError when it cannot be sent. */
  notify(method: string, params?: unknown, options: NotifyOptions = {}): void {
    const refused = this.#refuseNew(method);
    if (refused !== undefined) throw refused;
    let frame: Buffer;
    try {
      frame = encodeMessage({ type: MessageType.Notification, method, params, ...(options.headers === undefined ? {} : { meta: { headers: options.headers } }) });
    } catch (error) {
      throw new RpcError('INVALID_ARGUMENT', `notification ${method} not sent: its params cannot be encoded as MessagePack (${(error as Error).message})`);
    }
    if (frame.length - 4 > this.#options.maxFrameSize) throw frameTooLarge(frame.length - 4, this.#options.maxFrameSize, 'sent');
    this.#write(frame);
  }

  /**
   * close ends the tunnel gracefully: no new calls, a goaway to the server, then the socket closes once every
   * pending call has its answer (each is still bounded by its deadline). Resolves when the socket is closed.
   */
  close(): Promise<void> {
    if (this.#state === 'open' || this.#state === 'draining') {
      this.#state = 'closing';
      this.#write(encodeMessage({ type: MessageType.Goaway, lastId: 0, code: 'UNAVAILABLE', message: 'client closing' }));
      this.#endIfDone();
    }
    return this.#closed.then(() => undefined);
  }

  #refuseNew(method: string): RpcError | undefined {
    if (this.#state === 'open') return undefined;
    if (this.#closeReason !== undefined) {
      return new RpcError('UNAVAILABLE', `${method} not sent: the tunnel to ${this.#target} is closed (${this.#closeReason.message}); connect again`, { mayHaveRun: false });
    }
    const why = this.#state === 'draining' ? 'the server is shutting down this tunnel (goaway)' : 'close() was called';
    return new RpcError('UNAVAILABLE', `${method} not sent: ${why}; connect again`, { mayHaveRun: false });
  }

  // Ids increase and wrap at 2^32 back to 1, skipping any the server may still hold: goaway lastId compares
  // them, and 0 is never used so that lastId 0 means "took nothing" (PROTOCOL.md 7.6).
  #allocateId(): number {
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id === MAX_UINT32 ? 1 : id + 1;
      if (!this.#pending.has(id) && !this.#abandoned.has(id)) return id;
    }
  }

  // Fails a call locally and tells the server to stop; the id stays reserved until the server answers.
  #giveUp(id: number, reason: RpcError | undefined, message: string): void {
    const call = this.#settle(id);
    if (call === undefined) return;
    this.#abandoned.add(id);
    if (this.#state !== 'closed') this.#write(encodeMessage({ type: MessageType.Cancel, id }));
    const error =
      reason === undefined
        ? new RpcError('DEADLINE_EXCEEDED', `${message}; it may have run on the server`, { mayHaveRun: true })
        : new RpcError(reason.code, `${message}; it may have run on the server`, { mayHaveRun: true }, { cause: reason });
    call.reject(error);
    this.#endIfDone();
  }

  // Removes a call from the pending map: whoever removes it settles it, exactly once.
  #settle(id: number): PendingCall | undefined {
    const call = this.#pending.get(id);
    if (call === undefined) return undefined;
    this.#pending.delete(id);
    clearTimeout(call.timer);
    if (call.onAbort !== undefined) call.signal?.removeEventListener('abort', call.onAbort);
    return call;
  }

  #onData(chunk: Buffer): void {
    if (this.#state === 'closed') return;
    let payloads: Buffer[];
    try {
      payloads = this.#decoder.push(chunk);
    } catch (error) {
      this.#violation(RpcError.from(error, 'INTERNAL'));
      return;
    }
    for (const payload of payloads) {
      let message: Message;
      try {
        message = decodeMessage(payload, this.#options);
      } catch (error) {
        this.#violation(RpcError.from(error, 'INTERNAL'));
        return;
      }
      if (!this.#onMessage(message)) return;
    }
  }

  // Returns false when the message ended the connection.
  #onMessage(message: Message): boolean {
    switch (message.type) {
      case MessageType.Response:
        return this.#onResponse(message);
      case MessageType.Ping:
        this.#write(encodeMessage({ type: MessageType.Pong, data: message.data }));
        return true;
      case MessageType.Pong:
        return true;
      case MessageType.Goaway:
        return this.#onGoaway(message);
      default:
        this.#violation(protocolViolation(`the server sent a message of type ${message.type}, which only clients send`));
        return false;
    }
  }

  #onResponse(response: ResponseMessage): boolean {
    const call = this.#settle(response.id);
    if (call === undefined) {
      if (this.#abandoned.delete(response.id)) {
        this.#endIfDone();
        return true;
      }
      this.#violation(protocolViolation(`the server answered request id ${response.id}, which is not waiting for an answer`));
      return false;
    }
    if (response.error === undefined) call.resolve(response.result);
    else call.reject(fromWireError(response.error));
    this.#endIfDone();
    return true;
  }

  #onGoaway(goaway: GoawayMessage): boolean {
    if (goaway.code !== 'UNAVAILABLE') {
      const reason = new RpcError('UNAVAILABLE', `the server closed the tunnel with goaway ${goaway.code.slice(0, 40)}: ${goaway.message.slice(0, 300)}`, { goaway: goaway.code.slice(0, 40) });
      this.#shutdown(reason);
      return false;
    }
    if (this.#state === 'open') this.#state = 'draining';
    for (const id of [...this.#pending.keys()]) {
      if (id <= goaway.lastId) continue;
      const call = this.#settle(id)!;
      this.#abandoned.add(id);
      call.reject(new RpcError('UNAVAILABLE', `${call.method} was not run: the server is shutting down (goaway) and did not take it; safe to retry on a new connection`, { mayHaveRun: false }));
    }
    this.#endIfDone();
    return true;
  }

  // The server broke wire-v1: tell it why, fail everything, close.
  #violation(error: RpcError): void {
    if (this.#state === 'closed') return;
    this.#write(encodeMessage({ type: MessageType.Goaway, lastId: 0, code: goawayCodeOf(error), message: error.message }));
    this.#shutdown(new RpcError('UNAVAILABLE', `tunnel to ${this.#target} closed: the server sent invalid data (${error.message})`, { goaway: goawayCodeOf(error) }));
  }

  #shutdown(reason: RpcError): void {
    this.#failAll(reason);
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), CLOSE_LINGER_MS).unref();
  }

  #lost(error: Error | undefined): void {
    if (this.#state === 'closed') return;
    const wasClosing = this.#state === 'closing' && this.#pending.size === 0;
    const reason = wasClosing
      ? undefined
      : new RpcError('UNAVAILABLE', `lost the tunnel to ${this.#target}${error === undefined ? '' : `: ${(error as NodeJS.ErrnoException).code ?? error.message}`}`, undefined, { cause: error });
    this.#failAll(reason);
    this.#socket.destroy();
  }

  #failAll(reason: RpcError | undefined): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#closeReason = reason ?? new RpcError('UNAVAILABLE', 'close() was called');
    for (const id of [...this.#pending.keys()]) {
      const call = this.#settle(id)!;
      call.reject(new RpcError('UNAVAILABLE', `${call.method} failed: ${this.#closeReason.message}; it may have run on the server`, { mayHaveRun: true }, { cause: reason }));
    }
    this.#abandoned.clear();
    this.#resolveClosed(reason);
  }

  #endIfDone(): void {
    if (this.#state !== 'closing' && this.#state !== 'draining') return;
    if (this.#pending.size > 0) return;
    this.#failAll(this.#state === 'closing' ? undefined : new RpcError('UNAVAILABLE', `the server at ${this.#target} shut this tunnel down (goaway)`));
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), CLOSE_LINGER_MS).unref();
  }

  // Coalesces the frames of one tick into one writev.
  #write(frame: Buffer): void {
    if (this.#socket.destroyed || this.#socket.writableEnded) return;
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(() => {
        this.#corked = false;
        this.#corkedBytes = 0;
        this.#socket.uncork();
      });
    }
    this.#corkedBytes += frame.length;
    this.#socket.write(frame);
  }
}
