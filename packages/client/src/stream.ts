/**
 * Streams on the client (PROTOCOL.md 12). A StreamCore rides on a Call (deadline, abort, goaway and loss work as
 * for calls) and owns what a stream adds: the inbox the caller reads (a MessageQueue: reading it is what grants more
 * credit), and the producer that pulls the caller's messages only when the server has granted credit. The tunnel
 * routes frames to it; StreamState and CreditLedger (protocol package) decide what is legal.
 */
import { Duplex } from 'node:stream';
import { RpcError, type StreamKind, type StreamWatcher } from '@tunnelrpc/protocol';
import {
  MessageQueue,
  StreamState,
  formatIssues,
  parseWithSchema,
  serverSends,
  summarizeIssues,
  toWireValue,
  type CreditLedger,
  type Grant,
} from '@tunnelrpc/protocol/internal';
import type { z } from 'zod';

/** StreamSink is the tunnel a stream was sent on, as the stream sees it. @internal */
export interface StreamSink {
  readonly ledger: CreditLedger;
  /** Writes `[4, id, message]` unless it breaks the server's maxMessageSize; returns the error then. */
  sendStreamMessage(core: StreamCore, message: unknown): RpcError | undefined;
  /** Writes `[5, id]`. */
  sendHalfClose(core: StreamCore): void;
  /** Writes credit frames. */
  sendGrants(grants: readonly Grant[]): void;
  /** True while the socket's unsent bytes are under maxWriteBuffer. */
  canWrite(): boolean;
  /** Pumps `core` again once the socket drains. */
  waitForDrain(core: StreamCore): void;
}

/** StreamSchemas are the contract's message schemas, when a typed client opened the stream. @internal */
export interface StreamSchemas {
  readonly clientMessage?: z.ZodType | undefined;
  readonly serverMessage?: z.ZodType | undefined;
}

/** StreamCore is one stream's client half. @internal */
export class StreamCore {
  readonly kind: StreamKind;
  readonly method: string;
  /** What the caller reads: the server's messages (empty for a client stream). */
  readonly inbox: MessageQueue<unknown>;
  state: StreamState;
  /** A message crossed the wire either way: the stream is never re-sent after this (PROTOCOL.md 12.5). */
  delivered = false;
  /** The server's bound on our message payloads, from its first grant. */
  peerMaxMessageSize = 0;
  id = 0;
  readonly #schemas: StreamSchemas;
  readonly #fail: (error: RpcError) => void;
  #source: AsyncIterator<unknown> | undefined;
  #sink: StreamSink | undefined;
  #pulling = false;
  #ended = false;
  // Client interceptors' watchers of the messages; undefined without interceptors.
  #watchers: StreamWatcher[] | undefined;
  /** Tells ClientOptions.observers of each message; undefined without observers. */
  observe: ((direction: 'sent' | 'received') => void) | undefined;

  constructor(kind: StreamKind, method: string, schemas: StreamSchemas, source: AsyncIterator<unknown> | undefined, fail: (error: RpcError) => void) {
    this.kind = kind;
    this.method = method;
    this.#schemas = schemas;
    this.#source = source;
    this.#fail = fail;
    this.state = new StreamState(kind, 'client');
    this.inbox = new MessageQueue<unknown>({
      taken: () => {
        const sink = this.#sink;
        if (sink !== undefined) sink.sendGrants(sink.ledger.consume(this.id));
      },
      // `break` or return() in the caller's loop: the stream is cancelled (grpc/grpc-node#2385).
      abandoned: () => this.#fail(new RpcError('CANCELLED', `the reader of ${method} stopped (break or return()); the stream was cancelled`, { mayHaveRun: true })),
    });
    if (!serverSends(kind)) this.inbox.end();
  }

  /** watch adds an interceptor's watcher of the stream's messages. */
  watch(watcher: StreamWatcher): void {
    (this.#watchers ??= []).push(watcher);
  }

  // Runs the watchers on one message; a throw fails the stream with it (an RpcError as thrown, else INTERNAL).
  #watch(direction: 'sent' | 'received', message: unknown): boolean {
    this.observe?.(direction);
    const watchers = this.#watchers;
    if (watchers === undefined) return true;
    try {
      for (const watcher of watchers) watcher[direction]?.(message);
      return true;
    } catch (error) {
      this.#fail(error instanceof RpcError ? error : new RpcError('INTERNAL', `a client interceptor's stream watcher failed on ${this.method}; watchers should throw RpcError`, { mayHaveRun: true }, { cause: error }));
      return false;
    }
  }

  /** bind attaches the stream to the tunnel and id it was sent on. */
  bind(sink: StreamSink, id: number): void {
    this.#sink = sink;
    this.id = id;
    this.state = new StreamState(this.kind, 'client');
    this.peerMaxMessageSize = 0;
  }

  /** unbind detaches it from its tunnel (answered, abandoned, refused or lost). */
  unbind(): void {
    this.#sink = undefined;
  }

  /** receive validates one server message and queues it for the reader; the error that ends the stream otherwise. */
  receive(message: unknown): void {
    this.delivered = true;
    const schema = this.#schemas.serverMessage;
    let value = message;
    if (schema !== undefined) {
      const parsed = parseWithSchema(schema, message);
      if (!parsed.success) {
        const summary = summarizeIssues(parsed.issues);
        this.#fail(new RpcError('INVALID_ARGUMENT', `a stream message of ${this.method} does not match the contract (${formatIssues(summary.issues)}); client and server disagree on the schema`, { ...summary, mayHaveRun: true }));
        return;
      }
      value = parsed.data;
    }
    if (!this.#watch('received', value)) return;
    if (this.inbox.closed) {
      // The reader left: drop it, free its room at once.
      this.#sink?.sendGrants(this.#sink.ledger.consume(this.id));
      return;
    }
    this.inbox.push(value);
  }

  /** granted takes the server's grant: the first one carries its bound on our messages. */
  granted(maxMessageSize: number | undefined): void {
    if (maxMessageSize !== undefined) this.peerMaxMessageSize = maxMessageSize;
    this.pump();
  }

  /** pump pulls the caller's next message while the server has granted credit and the socket has room. */
  pump(): void {
    const sink = this.#sink;
    const source = this.#source;
    if (sink === undefined || source === undefined || this.#ended || this.#pulling) return;
    if (!this.state.clientGranted || !this.state.outboundOpen) return;
    if (sink.ledger.credit(this.id) === 0) return;
    if (!sink.canWrite()) {
      sink.waitForDrain(this);
      return;
    }
    this.#pulling = true;
    let next: Promise<IteratorResult<unknown>>;
    try {
      next = Promise.resolve(source.next());
    } catch (error) {
      this.#pulling = false;
      this.#sourceFailed(error);
      return;
    }
    next.then(
      (result) => {
        this.#pulling = false;
        try {
          this.#pulled(result);
        } catch (error) {
          this.#fail(RpcError.from(error, 'INTERNAL'));
        }
      },
      (error: unknown) => {
        this.#pulling = false;
        this.#sourceFailed(error);
      },
    );
  }

  #pulled(result: IteratorResult<unknown>): void {
    const sink = this.#sink;
    if (this.#ended || sink === undefined) return;
    if (result.done === true) {
      this.#source = undefined;
      this.state.halfClosed();
      sink.sendHalfClose(this);
      return;
    }
    let wire: unknown;
    try {
      wire = this.#schemas.clientMessage === undefined ? result.value : toWireValue(this.#schemas.clientMessage, result.value);
    } catch (error) {
      this.#fail(new RpcError('INVALID_ARGUMENT', `a message for ${this.method} cannot be laid out for the wire (${error instanceof Error ? error.message : String(error)}); the stream was cancelled`, { mayHaveRun: true }, { cause: error }));
      return;
    }
    if (!this.#watch('sent', result.value)) return;
    sink.ledger.spend(this.id);
    const refused = sink.sendStreamMessage(this, wire);
    if (refused !== undefined) {
      this.#fail(refused);
      return;
    }
    this.delivered = true;
    this.pump();
  }

  #sourceFailed(error: unknown): void {
    if (this.#ended) return;
    this.#fail(new RpcError('CANCELLED', `the message source of ${this.method} threw (${error instanceof Error ? error.message : String(error)}); the stream was cancelled`, { mayHaveRun: true }, { cause: error }));
  }

  /** finish ends the stream with the call's outcome: the reader ends (or throws `error`), the source is returned. */
  finish(error: RpcError | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#sink = undefined;
    this.state.ended();
    if (error === undefined) this.inbox.end();
    else this.inbox.fail(error);
    const source = this.#source;
    this.#source = undefined;
    if (source?.return !== undefined) {
      try {
        Promise.resolve(source.return()).catch(() => {});
      } catch {
        // A source whose return() throws: it is done either way.
      }
    }
  }
}

/**
 * Feed is the message source of a bidi stream fed with send() / end(): send() resolves once the message was taken
 * to be written (so a writer awaiting it never runs ahead of credit), and rejects if the stream ended first.
 * @internal
 */
export class Feed implements AsyncIterator<unknown> {
  #items: { value: unknown; resolve: () => void; reject: (error: unknown) => void }[] = [];
  #waiter: ((result: IteratorResult<unknown>) => void) | undefined;
  #ended = false;
  #closed: RpcError | undefined;

  put(value: unknown): Promise<void> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    if (this.#ended) return Promise.reject(new RpcError('FAILED_PRECONDITION', 'send() after end(): the stream was half-closed already'));
    return new Promise((resolve, reject) => {
      const waiter = this.#waiter;
      if (waiter !== undefined) {
        this.#waiter = undefined;
        resolve();
        waiter({ value, done: false });
        return;
      }
      this.#items.push({ value, resolve, reject });
    });
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#items.length === 0 && this.#waiter !== undefined) {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<unknown>> {
    const item = this.#items.shift();
    if (item !== undefined) {
      item.resolve();
      return Promise.resolve({ value: item.value, done: false });
    }
    if (this.#ended || this.#closed !== undefined) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  return(): Promise<IteratorResult<unknown>> {
    this.close(new RpcError('CANCELLED', 'the stream ended before this message was sent'));
    return Promise.resolve({ value: undefined, done: true });
  }

  /** close rejects every message still waiting: the stream is over. */
  close(error: RpcError): void {
    this.#closed ??= error;
    for (const item of this.#items.splice(0)) item.reject(this.#closed);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.({ value: undefined, done: true });
  }
}

/** ServerStreamCall is a server stream: iterate it for the messages; `result` is the final answer. */
export interface ServerStreamCall<Out, Result> extends AsyncIterable<Out> {
  /** Resolves with the result after the last message; rejects with the RpcError that ended the stream. */
  readonly result: Promise<Result>;
  /** cancel ends the stream: the server's handler is aborted, reads and `result` reject CANCELLED. */
  cancel(): void;
}

/** BidiStreamCall is a bidirectional stream: send() and end() (or a source given at the call), and iterate it. */
export interface BidiStreamCall<In, Out, Result> extends ServerStreamCall<Out, Result> {
  /** send queues one message; resolves once it is taken to be written (credit permitting). */
  send(message: In): Promise<void>;
  /** end half-closes: the server's input ends after the messages sent. */
  end(): void;
  /** duplex returns a Node Duplex in object mode over this stream (writes are sent, reads are received), for pipeline(). */
  duplex(): Duplex;
}

/** StreamCall implements both stream shapes over one StreamCore. @internal */
export class StreamCall implements BidiStreamCall<unknown, unknown, unknown> {
  readonly result: Promise<unknown>;
  readonly #core: StreamCore;
  readonly #feed: Feed | undefined;
  readonly #cancel: () => void;

  constructor(core: StreamCore, result: Promise<unknown>, feed: Feed | undefined, cancel: () => void) {
    this.#core = core;
    this.result = result;
    this.#feed = feed;
    this.#cancel = cancel;
    // A caller that only iterates sees the error there; `result` must not also count as unhandled.
    result.catch(() => {});
  }

  [Symbol.asyncIterator](): AsyncIterator<unknown> {
    return this.#core.inbox;
  }

  cancel(): void {
    this.#cancel();
  }

  send(message: unknown): Promise<void> {
    if (this.#feed === undefined) return Promise.reject(new RpcError('FAILED_PRECONDITION', `${this.#core.method} was opened with a message source; send() is for streams opened without one`));
    return this.#feed.put(message);
  }

  end(): void {
    this.#feed?.end();
  }

  duplex(): Duplex {
    const inbox = this.#core.inbox;
    const call = this;
    return new Duplex({
      objectMode: true,
      write(chunk: unknown, _encoding, callback) {
        call.send(chunk).then(() => callback(), (error: unknown) => callback(error as Error));
      },
      final(callback) {
        call.end();
        callback();
      },
      read() {
        inbox.next().then(
          (next) => this.push(next.done === true ? null : next.value),
          (error: unknown) => this.destroy(error as Error),
        );
      },
      destroy(error, callback) {
        // Destroyed before the stream ended (pipeline failed, or the caller gave up): cancel it. After the end this
        // is a no-op.
        call.cancel();
        callback(error);
      },
    });
  }
}
