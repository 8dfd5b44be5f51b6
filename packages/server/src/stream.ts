/**
 * ServerStream: one open stream on the server (PROTOCOL.md 12). It owns the handler's input (a MessageQueue the
 * handler reads as an AsyncIterable) and pulls the handler's generator only when the client has granted credit and
 * the tunnel's write path has room: a generator is never advanced without credit. The connection routes frames to
 * it and writes what it asks for; StreamState and CreditLedger (protocol package) decide what is legal.
 */
import {
  MessageQueue,
  RpcError,
  StreamState,
  clientSends,
  parseWithSchema,
  summarizeIssues,
  formatIssues,
  serverSends,
  type CreditLedger,
  type StreamKind,
} from '@tunnelrpc/protocol';
import type { Cost } from './budget.js';
import type { HandlerContext } from './context.js';
import type { RegisteredMethod } from './dispatch.js';

/** StreamHost is what a stream needs from its connection. @internal */
export interface StreamHost {
  readonly ledger: CreditLedger;
  /** True while the tunnel's write path is below its high-water mark. */
  canWrite(): boolean;
  /** Sends `[4, id, message]`; returns the error that ends the stream when the message cannot go (size, encoding). */
  sendMessage(stream: ServerStream, message: unknown): RpcError | undefined;
  /** Sends the grants the ledger decided (`[9, id, n]`, with maxMessageSize on a stream's first). */
  sendGrants(grants: readonly { id: number; n: number }[]): void;
  /** The stream ended: answer `[1, id, error, result]` (unless `silent`), release what it holds. */
  finished(stream: ServerStream, error: RpcError | undefined, result: unknown): void;
  /** Maps a handler's throw to the error sent (RpcError as written, anything else INTERNAL). */
  handlerError(thrown: unknown, stream: ServerStream): RpcError;
  /** Runs a callback from a promise; a throw costs the connection, never the process. */
  guarded(step: () => void): void;
  /** Remembers a stream that stopped at a full write buffer, to pump it on 'drain'. */
  waitForDrain(stream: ServerStream): void;
}

type Pulled = AsyncIterator<unknown, unknown>;

/** ServerStream runs one stream handler. @internal */
export class ServerStream {
  readonly id: number;
  readonly method: RegisteredMethod;
  readonly kind: StreamKind;
  readonly ctx: HandlerContext;
  readonly state: StreamState;
  readonly cost: Cost;
  /** The client's bound on each server-to-client message payload, in bytes (meta.maxMessageSize). */
  readonly maxMessageSize: number;
  timer: NodeJS.Timeout | undefined;
  readonly input: MessageQueue<unknown>;
  readonly #host: StreamHost;
  #iterator: Pulled | undefined;
  #pulling = false;
  #ended = false;

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
      taken: () => this.#host.sendGrants(this.#host.ledger.consume(this.id)),
      // The handler stopped reading early: nothing to tell the client; what still arrives is dropped on receipt.
      abandoned: () => {},
    });
    if (!clientSends(kind)) this.input.end();
  }

  /** ended tells whether the stream has finished (answered or abandoned). */
  get ended(): boolean {
    return this.#ended;
  }

  /** start runs the handler. A synchronous throw is the handler's failure, answered like a rejection. */
  start(params: unknown): void {
    let outcome: unknown;
    try {
      outcome = this.kind === 'serverStream' ? this.method.handler(params, this.ctx) : this.method.handler(params, this.input, this.ctx);
    } catch (error) {
      this.end(this.#host.handlerError(error, this));
      return;
    }
    if (!serverSends(this.kind)) {
      Promise.resolve(outcome).then(
        (result) => this.#host.guarded(() => this.#complete(result)),
        (error: unknown) => this.#host.guarded(() => this.end(this.#host.handlerError(error, this))),
      );
      return;
    }
    const iterator = toIterator(outcome);
    if (iterator === undefined) {
      this.end(new RpcError('INTERNAL', `handler of ${this.method.path} must be an async generator (async function*)`, { mayHaveRun: true }));
      return;
    }
    this.#iterator = iterator;
    this.pump();
  }

  /**
   * pump pulls the handler's next message while there is credit and write room; one pull at a time, so a message
   * is never produced that could not be sent.
   */
  pump(): void {
    const iterator = this.#iterator;
    if (iterator === undefined || this.#ended || this.#pulling) return;
    if (this.#host.ledger.credit(this.id) === 0) return;
    if (!this.#host.canWrite()) {
      this.#host.waitForDrain(this);
      return;
    }
    this.#pulling = true;
    let next: Promise<IteratorResult<unknown, unknown>>;
    try {
      next = Promise.resolve(iterator.next());
    } catch (error) {
      this.#pulling = false;
      this.end(this.#host.handlerError(error, this));
      return;
    }
    next.then(
      (result) => this.#host.guarded(() => this.#pulled(result)),
      (error: unknown) => this.#host.guarded(() => {
        this.#pulling = false;
        this.end(this.#host.handlerError(error, this));
      }),
    );
  }

  #pulled(result: IteratorResult<unknown, unknown>): void {
    this.#pulling = false;
    if (this.#ended) return;
    if (result.done === true) {
      this.#complete(result.value);
      return;
    }
    this.#host.ledger.spend(this.id);
    const refused = this.#host.sendMessage(this, result.value);
    if (refused !== undefined) {
      this.end(refused);
      return;
    }
    this.pump();
  }

  /** receive validates one client message and queues it for the handler; INVALID_ARGUMENT ends the stream. */
  receive(message: unknown): void {
    if (this.input.closed) {
      // The handler stopped reading: the message is dropped and its reservation freed at once.
      this.#host.sendGrants(this.#host.ledger.consume(this.id));
      return;
    }
    const schema = this.method.spec.clientMessage!;
    const parsed = parseWithSchema(schema, message);
    if (!parsed.success) {
      const summary = summarizeIssues(parsed.issues);
      this.end(new RpcError('INVALID_ARGUMENT', `invalid stream message for ${this.method.path}: ${formatIssues(summary.issues)}`, { ...summary, mayHaveRun: true }));
      return;
    }
    this.input.push(parsed.data);
  }

  // The handler returned: the result ends the stream in both directions.
  #complete(result: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.state.ended();
    this.input.fail(new RpcError('CANCELLED', `${this.method.path} has already answered`));
    this.#host.finished(this, undefined, result);
  }

  /**
   * end finishes the stream with `error` (cancel, deadline, invalid message, a lost tunnel): the handler's signal is
   * aborted, its input fails, and its generator is returned so that its `finally` blocks run. The error is answered
   * unless the connection can no longer write.
   */
  end(error: RpcError): void {
    if (this.#ended) return;
    this.#ended = true;
    this.state.ended();
    this.ctx.abort(error);
    this.input.fail(error);
    this.#host.finished(this, error, undefined);
    const iterator = this.#iterator;
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
