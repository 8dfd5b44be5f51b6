/**
 * Over 400 lines: a stream (ServerStream) and the table that routes frames to it and lends it the connection
 * (StreamTable) are written together because each is the other's only host.
 *
 * ServerStream: one open stream on the server (PROTOCOL.md 12). It runs through the method's interceptors like a
 * call, owns the handler's input (a MessageQueue the handler reads as an AsyncIterable, each message holding its
 * share of the server-wide budget until taken), and pulls the handler's generator only while the tunnel's write
 * path has room and at most one message ahead of the client's credit (so its end is learnt without a grant). The
 * connection routes frames to it and writes what it asks for; StreamState and CreditLedger (protocol package)
 * decide what is legal.
 */
import { RpcError, type ErrorCode, type StreamKind, type StreamWatcher } from '@tunnelrpc/protocol';
import {
  CreditLedger,
  MessageQueue,
  MessageType,
  StreamState,
  ambientCalls,
  ambientCallsWanted,
  clientSends,
  encodePayloadParts,
  encodeStreamMessagePayload,
  formatIssues,
  fromWireValue,
  parseWithSchema,
  payloadLength,
  serverSends,
  summarizeIssues,
  type CreditMessage,
  type HalfCloseMessage,
  type Message,
  type PayloadParts,
  type StreamMessageMessage,
  type Observers,
} from '@tunnelrpc/protocol/internal';
import type { Cost } from './budget.js';
import type { HandlerContext } from './context.js';
import { prepareStreamMessage, type RegisteredMethod } from './dispatch.js';
import type { CallContext } from './handler-types.js';
import { openStreamCall, type StreamRun } from './intercept.js';
import type { LogEntry } from './log.js';
import type { ResolvedServerOptions } from './options.js';

/** StreamHost is what a stream needs from its connection. @internal */
export interface StreamHost {
  readonly ledger: CreditLedger;
  /** ServerOptions.observers; undefined when there are none. */
  readonly observers: Observers | undefined;
  /** Check client messages against the contract (ServerOptions.validateParams). */
  readonly validateMessages: boolean;
  /** True while the tunnel's write path is below its high-water mark. */
  canWrite(): boolean;
  /** Sends `[4, id, message]`; returns the error that ends the stream when the message cannot go (size, encoding). */
  sendMessage(stream: ServerStream, message: unknown): RpcError | undefined;
  /** Sends the grants the ledger decided (`[9, id, n]`, with maxMessageSize on a stream's first). */
  sendGrants(grants: readonly { id: number; n: number }[]): void;
  /** The stream ended: answer `[1, id, error, result]` (unless the tunnel is closed), release what it holds. */
  finished(stream: ServerStream, error: RpcError | undefined, result: unknown): void;
  /** Maps a handler's throw to the error sent (RpcError as written, anything else INTERNAL). */
  handlerError(thrown: unknown, stream: ServerStream): RpcError;
  /** The error a stream that ended already gives an interceptor that calls `next` late. */
  endedError(stream: ServerStream): RpcError;
  /** The handler took one message from its input (or one was dropped): free what it held, send the grants due. */
  taken(stream: ServerStream): void;
  /** Takes the server-wide budget share of one message received for the handler (decoded values and bytes). */
  hold(stream: ServerStream, cost: Cost): RpcError | undefined;
  /** Gives back what hold() took. */
  unhold(cost: Cost): void;
  /** Runs a callback from a promise; a throw costs the connection, never the process. */
  guarded(step: () => void): void;
  /** Remembers a stream that stopped at a full write buffer, to pump it on 'drain'. */
  waitForDrain(stream: ServerStream): void;
}

type Pulled = AsyncIterator<unknown, unknown>;

// A pulled message waiting for credit or write room; NOTHING when none is held.
const NOTHING: unique symbol = Symbol('nothing held');

/** ServerStream runs one stream handler. @internal */
export class ServerStream implements StreamRun {
  readonly id: number;
  readonly method: RegisteredMethod;
  readonly kind: StreamKind;
  readonly ctx: HandlerContext;
  readonly state: StreamState;
  readonly cost: Cost;
  /** The client's bound on each server-to-client message payload, in bytes (meta.maxMessageSize). */
  readonly maxMessageSize: number;
  timer: NodeJS.Timeout | undefined;
  /** When observers were told it started (performance.now()); 0 without observers. */
  startedAt = 0;
  readonly input: MessageQueue<unknown>;
  readonly #host: StreamHost;
  #iterator: Pulled | undefined;
  #pulling = false;
  #ended = false;
  // One message pulled ahead of the client's credit, so that the handler's end is learnt without a grant.
  #held: unknown = NOTHING;
  // Interceptors' watchers of the messages; undefined (nothing to call) without interceptors.
  #watchers: StreamWatcher[] | undefined;
  // What each message queued for the handler holds of the server-wide budget, oldest first.
  #heldCosts: Cost[] | undefined;
  #handlerStarted = false;
  // With interceptors: settles the innermost step of the chain when the handler finishes.
  #settle: { resolve: (result: unknown) => void; reject: (error: unknown) => void } | undefined;

  constructor(host: StreamHost, id: number, method: RegisteredMethod, kind: StreamKind, ctx: HandlerContext, cost: Cost, maxMessageSize: number) {
    this.#host = host;
    this.id = id;
    this.method = method;
    this.kind = kind;
    this.ctx = ctx;
    this.cost = cost;
    this.maxMessageSize = maxMessageSize;
    this.state = new StreamState(kind, 'server');
    this.input = new MessageQueue<unknown>({
      taken: () => {
        const cost = this.#heldCosts?.shift();
        if (cost !== undefined) this.#host.unhold(cost);
        this.#host.taken(this);
      },
      // The handler stopped reading early: nothing to tell the client; what still arrives is dropped on receipt.
      abandoned: () => {},
    });
    if (!clientSends(kind)) this.input.end();
  }

  /** ended tells whether the stream has finished (answered or abandoned). */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * start runs the stream: through the method's interceptors when it has any (they see the opening first and the
   * outcome last, and may refuse it), then the handler. The chain's outcome is the stream's answer.
   */
  start(params: unknown): void {
    const chain = this.method.streamChain;
    if (chain === undefined) {
      this.#startHandler(params, this.ctx);
      return;
    }
    let outcome: Promise<unknown>;
    try {
      outcome = chain(openStreamCall(this.method.path, this.kind, params, this.ctx, this));
    } catch (error) {
      outcome = Promise.reject(error);
    }
    outcome.then(
      (result) => this.#host.guarded(() => this.#complete(result)),
      (error: unknown) => this.#host.guarded(() => this.end(this.#host.handlerError(error, this))),
    );
  }

  /** runHandler is the innermost step of the interceptor chain: the handler, settled when it finishes. */
  runHandler(params: unknown, ctx: CallContext): Promise<unknown> {
    if (this.#ended) return Promise.reject(this.#host.endedError(this));
    // A stream's input and credit belong to one handler run: an interceptor that calls next() again (a retry meant
    // for unary calls) gets an error instead of a second handler on the same stream.
    if (this.#handlerStarted) {
      return Promise.reject(new RpcError('FAILED_PRECONDITION', `next() was called twice for stream ${this.method.path}; a stream's handler runs once, so interceptors must not retry streams`, { mayHaveRun: true }));
    }
    this.#handlerStarted = true;
    return new Promise((resolve, reject) => {
      this.#settle = { resolve, reject };
      this.#startHandler(params, ctx);
    });
  }

  // Runs `step` as the ambient call when the server propagates context, so that calls the handler makes inherit the
  // stream's deadline and cancellation; otherwise (or with no client in the process) as it is.
  #inAmbient<T>(step: () => T): T {
    return this.method.ambient === true && ambientCallsWanted() ? ambientCalls.run(this.ctx, step) : step();
  }

  /** watch adds an interceptor's watcher of the stream's messages. */
  watch(watcher: StreamWatcher): void {
    (this.#watchers ??= []).push(watcher);
  }

  // A synchronous throw is the handler's failure, answered like a rejection.
  #startHandler(params: unknown, ctx: CallContext): void {
    let outcome: unknown;
    try {
      outcome = this.#inAmbient(() => (this.kind === 'serverStream' ? this.method.handler(params, ctx) : this.method.handler(params, this.input, ctx)));
    } catch (error) {
      this.#handlerFinished(true, error);
      return;
    }
    if (!serverSends(this.kind)) {
      Promise.resolve(outcome).then(
        (result) => this.#host.guarded(() => this.#handlerFinished(false, result)),
        (error: unknown) => this.#host.guarded(() => this.#handlerFinished(true, error)),
      );
      return;
    }
    const iterator = toIterator(outcome);
    if (iterator === undefined) {
      this.#handlerFinished(true, new RpcError('INTERNAL', `handler of ${this.method.path} must be an async generator (async function*)`, { mayHaveRun: true }));
      return;
    }
    this.#iterator = iterator;
    this.pump();
  }

  // The handler returned or failed: straight to the answer, or back up through the interceptors.
  #handlerFinished(failed: boolean, value: unknown): void {
    const settle = this.#settle;
    if (settle !== undefined) {
      this.#settle = undefined;
      if (failed) settle.reject(value);
      else settle.resolve(value);
      return;
    }
    if (failed) this.end(this.#host.handlerError(value, this));
    else this.#complete(value);
  }

  /**
   * pump sends the message held for credit when it may, and pulls the handler's next one: one pull at a time, and
   * never more than one message ahead of the client's credit and the write path. Pulling one ahead is how the
   * handler's end is learnt while the client holds no credit: the final response spends none (PROTOCOL.md 12.3).
   */
  pump(): void {
    const iterator = this.#iterator;
    if (iterator === undefined || this.#ended || this.#pulling) return;
    if (!this.#host.canWrite()) {
      this.#host.waitForDrain(this);
      return;
    }
    if (this.#held !== NOTHING) {
      if (this.#host.ledger.credit(this.id) === 0) return;
      const message = this.#held;
      this.#held = NOTHING;
      if (!this.#send(message)) return;
      if (!this.#host.canWrite()) {
        this.#host.waitForDrain(this);
        return;
      }
    }
    this.#pulling = true;
    let next: Promise<IteratorResult<unknown, unknown>>;
    try {
      // A generator's body runs inside next(): each pull enters the ambient call again.
      next = Promise.resolve(this.#inAmbient(() => iterator.next()));
    } catch (error) {
      this.#pulling = false;
      this.#handlerFinished(true, error);
      return;
    }
    next.then(
      (result) => this.#host.guarded(() => this.#pulled(result)),
      (error: unknown) => this.#host.guarded(() => {
        this.#pulling = false;
        if (!this.#ended) this.#handlerFinished(true, error);
      }),
    );
  }

  #pulled(result: IteratorResult<unknown, unknown>): void {
    this.#pulling = false;
    if (this.#ended) return;
    if (result.done === true) {
      this.#handlerFinished(false, result.value);
      return;
    }
    this.#held = result.value;
    this.pump();
  }

  // Spends a credit and writes one message; false when the stream ended instead.
  #send(message: unknown): boolean {
    const watchers = this.#watchers;
    if (watchers !== undefined && !this.#watch(watchers, 'sent', message)) return false;
    this.#host.ledger.spend(this.id);
    const refused = this.#host.sendMessage(this, message);
    if (refused === undefined) {
      this.#host.observers?.message(this.method.observed, 'sent');
      return true;
    }
    this.end(refused);
    return false;
  }

  // Runs the watchers on one message; a throw ends the stream with what was thrown.
  #watch(watchers: readonly StreamWatcher[], direction: 'sent' | 'received', message: unknown): boolean {
    try {
      for (const watcher of watchers) watcher[direction]?.(message);
      return true;
    } catch (error) {
      this.end(this.#host.handlerError(error, this));
      return false;
    }
  }

  /**
   * receive validates one client message and queues it for the handler; INVALID_ARGUMENT ends the stream. Until the
   * handler takes it, the message holds `cost` of the server-wide budget (its decoded values and bytes, as a call's
   * params do); a holder past its share ends the stream RESOURCE_EXHAUSTED.
   */
  receive(message: unknown, cost: Cost): void {
    if (this.input.closed) {
      // The handler stopped reading: the message is dropped and what it holds freed at once.
      this.#host.taken(this);
      return;
    }
    const schema = this.method.spec.clientMessage!;
    let value: unknown;
    if (!this.#host.validateMessages) {
      // ServerOptions.validateParams off (trusted peers): mapped to the schema's types, not checked.
      try {
        value = fromWireValue(schema, message);
      } catch {
        this.end(new RpcError('INVALID_ARGUMENT', `a stream message for ${this.method.path} is nested too deeply to map`, { mayHaveRun: true }));
        return;
      }
    } else {
      const parsed = parseWithSchema(schema, message);
      if (!parsed.success) {
        const summary = summarizeIssues(parsed.issues);
        this.end(new RpcError('INVALID_ARGUMENT', `invalid stream message for ${this.method.path}: ${formatIssues(summary.issues)}`, { ...summary, mayHaveRun: true }));
        return;
      }
      value = parsed.data;
    }
    const watchers = this.#watchers;
    if (watchers !== undefined && !this.#watch(watchers, 'received', value)) return;
    const refused = this.#host.hold(this, cost);
    if (refused !== undefined) {
      this.end(refused);
      return;
    }
    (this.#heldCosts ??= []).push(cost);
    this.#host.observers?.message(this.method.observed, 'received');
    this.input.push(value);
  }

  // Gives back what the messages still queued for the handler hold.
  #releaseHeld(): void {
    const costs = this.#heldCosts;
    if (costs === undefined) return;
    this.#heldCosts = undefined;
    for (const cost of costs) this.#host.unhold(cost);
  }

  // The stream's answer is a result: it ends the stream in both directions.
  #complete(result: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#held = NOTHING;
    this.state.ended();
    this.input.fail(new RpcError('CANCELLED', `${this.method.path} has already answered`));
    this.#releaseHeld();
    this.#host.finished(this, undefined, result);
  }

  /**
   * end finishes the stream with `error` (cancel, deadline, invalid message, a lost tunnel): the handler's signal is
   * aborted, its input fails, and its generator is returned so that its `finally` blocks run. The error is answered
   * unless the connection can no longer write; interceptors waiting on the handler see the same error.
   */
  end(error: RpcError): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#held = NOTHING;
    this.state.ended();
    this.ctx.abort(error);
    this.input.fail(error);
    this.#releaseHeld();
    this.#host.finished(this, error, undefined);
    const settle = this.#settle;
    if (settle !== undefined) {
      this.#settle = undefined;
      settle.reject(error);
    }
    const iterator = this.#iterator;
    this.#iterator = undefined;
    if (iterator?.return !== undefined) {
      // An async generator queues return() behind a pull in progress; either way its finally runs. What it throws
      // from there has nowhere to go: the stream has been answered.
      try {
        Promise.resolve(iterator.return(undefined)).catch(() => {});
      } catch {
        // A hand-written iterator whose return() throws: same.
      }
    }
  }
}

function toIterator(outcome: unknown): Pulled | undefined {
  if (typeof outcome !== 'object' || outcome === null) return undefined;
  if (typeof (outcome as Pulled).next === 'function') return outcome as Pulled;
  const make = (outcome as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator];
  if (typeof make === 'function') {
    const iterator: unknown = make.call(outcome);
    if (typeof iterator === 'object' && iterator !== null && typeof (iterator as Pulled).next === 'function') return iterator as Pulled;
  }
  return undefined;
}

/** StreamTableHost is what a connection lends its streams: writing, answering, and the connection's own state. @internal */
export interface StreamTableHost {
  readonly options: ResolvedServerOptions;
  readonly log: (entry: LogEntry) => void;
  /** True while the write path is below writeHighWaterMark and the connection open. */
  canWrite(): boolean;
  /** Writes one frame payload (the connection's bounded write path). */
  write(payload: PayloadParts): void;
  /** Answers `[1, id, error, result]`; a result goes through the output schema as for calls. What the caller was told. */
  respond(stream: ServerStream, error: RpcError | undefined, result: unknown): ErrorCode | 'OK';
  /** ServerOptions.observers; undefined when there are none. */
  readonly observers: Observers | undefined;
  /** Gives back the stream's share of the server-wide budget. */
  release(cost: Cost): void;
  /** Takes a share of the server-wide budget for one stream message held for its handler; the refusal if none. */
  hold(cost: Cost): RpcError | undefined;
  /** Gives back what hold() took. */
  unhold(cost: Cost): void;
  handlerError(thrown: unknown, path: string, ctx: HandlerContext): RpcError;
  guarded(step: () => void): void;
  /** A stream ended: the connection may take backlogged frames or close. */
  streamEnded(): void;
}

/**
 * StreamTable holds one connection's open streams, their credit ledger, and the streams waiting for 'drain'. It
 * judges the client's stream frames (StreamState, CreditLedger) and routes them; the connection decides which ids
 * are streams at all. @internal
 */
export class StreamTable implements StreamHost {
  readonly #host: StreamTableHost;
  readonly #streams = new Map<number, ServerStream>();
  readonly #drainWaiters = new Set<ServerStream>();
  readonly ledger: CreditLedger;
  readonly validateMessages: boolean;

  get observers(): Observers | undefined {
    return this.#host.observers;
  }

  constructor(host: StreamTableHost) {
    this.#host = host;
    this.ledger = new CreditLedger(host.options.maxStreamBuffer);
    this.validateMessages = host.options.validateParams;
  }

  /** size counts the open streams. */
  get size(): number {
    return this.#streams.size;
  }

  has(id: number): boolean {
    return this.#streams.has(id);
  }

  /**
   * open starts a stream whose request was admitted: it enters the ledger with the opening credit, its deadline is
   * armed, the first grant of the client's direction goes out before the handler runs (PROTOCOL.md 12.3 rule 4),
   * and the handler starts.
   */
  open(id: number, method: RegisteredMethod, kind: StreamKind, ctx: HandlerContext, cost: Cost, meta: { credit?: number; maxMessageSize?: number }, timeout: number, input: unknown, startedAt: number): void {
    const { maxStreamMessageSize, maxStreamCredit } = this.#host.options;
    const stream = new ServerStream(this, id, method, kind, ctx, cost, meta.maxMessageSize ?? 0);
    stream.startedAt = startedAt;
    this.#streams.set(id, stream);
    this.ledger.open(id, kind === 'serverStream' ? 0 : maxStreamMessageSize, maxStreamCredit, meta.credit ?? 0);
    stream.timer = setTimeout(() => {
      this.#host.guarded(() => stream.end(new RpcError('DEADLINE_EXCEEDED', `${method.path} passed its deadline of ${timeout} ms`, { mayHaveRun: true })));
    }, timeout);
    const n = this.ledger.topUp(id);
    if (n > 0) this.sendGrants([{ id, n }]);
    stream.start(input);
  }

  /** onFrame judges and routes a `[4]`, `[5]` or `[9]` for the open stream `message.id`; the violation, if any. */
  onFrame(message: StreamMessageMessage | HalfCloseMessage | CreditMessage, bytes: number, items: number): string | undefined {
    const stream = this.#streams.get(message.id)!;
    switch (message.type) {
      case MessageType.StreamMessage: {
        const verdict = stream.state.onMessage();
        if (verdict !== undefined) return verdict;
        const limit = this.#host.options.maxStreamMessageSize;
        if (bytes > limit) return `a stream message of ${bytes} bytes exceeds the announced maxMessageSize ${limit}`;
        if (!this.ledger.receive(message.id)) return `a stream message arrived beyond the credit granted for stream ${message.id}`;
        stream.receive(message.message, { items, bytes });
        return undefined;
      }
      case MessageType.HalfClose: {
        const verdict = stream.state.onHalfClose();
        if (verdict !== undefined) return verdict;
        stream.input.end();
        return undefined;
      }
      case MessageType.Credit: {
        const verdict = stream.state.onCredit(message.maxMessageSize);
        if (verdict !== undefined) return verdict;
        if (!this.ledger.addCredit(message.id, message.n)) return `credit for stream ${message.id} would exceed 2147483647`;
        stream.pump();
        return undefined;
      }
    }
  }

  /** cancel ends stream `id`, if open, with `error` (a client cancel). */
  cancel(id: number, error: (path: string) => RpcError): void {
    const stream = this.#streams.get(id);
    if (stream !== undefined) stream.end(error(stream.method.path));
  }

  /** endAll ends every open stream with the error `reason` makes for it. */
  endAll(reason: (path: string) => RpcError): void {
    for (const stream of [...this.#streams.values()]) stream.end(reason(stream.method.path));
  }

  /** drained pumps the streams that stopped at a full write buffer. */
  drained(): void {
    if (this.#drainWaiters.size === 0) return;
    const waiting = [...this.#drainWaiters];
    this.#drainWaiters.clear();
    for (const stream of waiting) stream.pump();
  }

  // ---- StreamHost, for the streams ----

  canWrite(): boolean {
    return this.#host.canWrite();
  }

  waitForDrain(stream: ServerStream): void {
    this.#drainWaiters.add(stream);
  }

  sendMessage(stream: ServerStream, message: unknown): RpcError | undefined {
    const { options } = this.#host;
    const prepared = prepareStreamMessage(stream.method, message, options.validateResults, this.#host.log);
    if (!prepared.ok) return prepared.error;
    let payload: PayloadParts;
    try {
      payload = encodeStreamMessagePayload(stream.id, prepared.value);
    } catch {
      return new RpcError('INTERNAL', `a stream message of ${stream.method.path} could not be encoded as MessagePack`, { mayHaveRun: true });
    }
    const length = payloadLength(payload);
    const limit = Math.min(stream.maxMessageSize, options.maxFrameSize);
    if (length > limit) {
      return new RpcError('RESOURCE_EXHAUSTED', `a stream message of ${length} bytes exceeds the client's maxMessageSize ${limit}; send smaller messages, or raise maxStreamMessageSize on the client`, { mayHaveRun: true, size: length, maxMessageSize: limit });
    }
    this.#host.write(payload);
    return undefined;
  }

  // A stream's first grant carries the bound on the client's messages (PROTOCOL.md 12.3 rule 5).
  sendGrants(grants: readonly { id: number; n: number }[]): void {
    for (const { id, n } of grants) {
      const stream = this.#streams.get(id);
      if (stream === undefined) continue;
      let message: Message;
      if (stream.state.clientGranted) {
        message = { type: MessageType.Credit, id, n };
      } else {
        stream.state.granted();
        message = { type: MessageType.Credit, id, n, maxMessageSize: this.#host.options.maxStreamMessageSize };
      }
      this.#host.write(encodePayloadParts(message));
    }
  }

  finished(stream: ServerStream, error: RpcError | undefined, result: unknown): void {
    if (this.#streams.get(stream.id) !== stream) return;
    this.#streams.delete(stream.id);
    this.#drainWaiters.delete(stream);
    clearTimeout(stream.timer);
    this.#host.release(stream.cost);
    const grants = this.ledger.close(stream.id);
    const code = this.#host.respond(stream, error, result);
    this.#host.observers?.ended(stream.method.observed, code, stream.startedAt);
    this.sendGrants(grants);
    this.#host.streamEnded();
  }

  handlerError(thrown: unknown, stream: ServerStream): RpcError {
    return this.#host.handlerError(thrown, stream.method.path, stream.ctx);
  }

  endedError(stream: ServerStream): RpcError {
    return new RpcError('CANCELLED', `${stream.method.path} has already ended`, { mayHaveRun: true });
  }

  taken(stream: ServerStream): void {
    this.sendGrants(this.ledger.consume(stream.id));
  }

  hold(stream: ServerStream, cost: Cost): RpcError | undefined {
    const refused = this.#host.hold(cost);
    if (refused === undefined) return undefined;
    const limit = (refused.data as { limit?: string } | undefined)?.limit ?? 'maxBytesInFlight';
    return new RpcError(
      'RESOURCE_EXHAUSTED',
      `${stream.method.path} ended: the server holds more unread stream messages than ${limit} allows for this peer (the handler is not keeping up); open it again later, or send smaller messages`,
      { mayHaveRun: true, limit },
    );
  }

  unhold(cost: Cost): void {
    this.#host.unhold(cost);
  }

  guarded(step: () => void): void {
    this.#host.guarded(step);
  }
}
