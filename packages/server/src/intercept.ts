/**
 * Server-side interceptors and the ambient call. A handler is wrapped once, when it is registered, so that a
 * server without interceptors runs its handlers exactly as before: the connection calls `handler(input, ctx)` and
 * cannot tell the difference. Streams pass the same chain (streamChain): the opening goes through every
 * interceptor before the handler runs, and the chain settles when the stream ends.
 */
import {
  RpcError,
  applyInterceptors,
  type CallFn,
  type Interceptor,
  type RpcCall,
  type StreamCall,
  type StreamKind,
  type StreamWatcher,
  type UnaryCall,
} from '@tunnelrpc/protocol';
import { ambientCalls, ambientCallsWanted, splitMethod } from '@tunnelrpc/protocol/internal';
import { HandlerContext } from './context.js';
import type { CallContext } from './handler-types.js';

type RawHandler = (input: unknown, ctx: CallContext) => unknown;

/** HandlerWrapping says how registered handlers are wrapped (ServerOptions.interceptors, propagateContext). @internal */
export interface HandlerWrapping {
  readonly interceptors: readonly Interceptor[];
  readonly propagateContext: boolean;
}

/**
 * wrapHandler returns the handler the connection runs for `path`: `handler` itself when there is nothing to add,
 * else one that enters the ambient call and runs the interceptors around it.
 * @internal
 */
export function wrapHandler(path: string, handler: RawHandler, wrapping: HandlerWrapping, registered = true): RawHandler {
  const { interceptors, propagateContext } = wrapping;
  if (interceptors.length === 0) {
    if (!propagateContext) return handler;
    return (input, ctx) => (ambientCallsWanted() ? ambientCalls.run(ctx, handler, input, ctx) : handler(input, ctx));
  }
  const { service, name } = splitMethod(path);
  const chain = applyInterceptors(innermost(handler), interceptors);
  const run = (input: unknown, ctx: CallContext): Promise<unknown> => {
    const call = new ServerUnaryCall(path, service, name, input, ctx, registered);
    try {
      return chain(call);
    } catch (error) {
      // An interceptor that throws before returning its promise: the same as one that rejects.
      return Promise.reject(error);
    }
  };
  if (!propagateContext) return run;
  return (input, ctx) => (ambientCallsWanted() ? ambientCalls.run(ctx, run, input, ctx) : run(input, ctx));
}

// The innermost step: the handler, with the headers as the interceptors left them, settled no later than the call
// ends (cancel, deadline, a closed tunnel), so that interceptors see the outcome the caller got.
function innermost(handler: RawHandler): CallFn {
  return (call: RpcCall): Promise<unknown> => {
    const server = call as ServerUnaryCall;
    const ctx = server.context;
    const handlerCtx = server.handlerContext();
    let outcome: unknown;
    try {
      outcome = handler(call.params, handlerCtx);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!(outcome instanceof Promise)) return Promise.resolve(outcome);
    // The connection's own context tells us of an early end without an AbortController per call (one listener; a
    // second `next` running at once, as a hedging interceptor would make, watches the signal instead).
    if (ctx instanceof HandlerContext && !ctx.watched) {
      const ended = ctx.abortReason;
      if (ended !== undefined) return Promise.reject(ended);
      return new Promise((resolve, reject) => {
        ctx.whenAborted(reject);
        outcome.then(
          (result) => {
            ctx.whenAborted(undefined);
            resolve(result);
          },
          (error: unknown) => {
            ctx.whenAborted(undefined);
            reject(error);
          },
        );
      });
    }
    const signal = ctx.signal;
    if (signal.aborted) return Promise.reject(abortReason(signal, call.method));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(abortReason(signal, call.method));
      signal.addEventListener('abort', onAbort, { once: true });
      outcome.then(
        (result) => {
          signal.removeEventListener('abort', onAbort);
          resolve(result);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      );
    });
  };
}

function abortReason(signal: AbortSignal, method: string): RpcError {
  const reason: unknown = signal.reason;
  return reason instanceof RpcError ? reason : new RpcError('CANCELLED', `${method} was cancelled`);
}

/** StreamRun is what the innermost step of a stream's chain needs from the stream: run the handler to its end. @internal */
export interface StreamRun {
  /** runHandler starts the handler with `params` and `ctx`; settles with its result or its failure. */
  runHandler(params: unknown, ctx: CallContext): Promise<unknown>;
  /** watch adds a watcher of the stream's messages. */
  watch(watcher: StreamWatcher): void;
}

/**
 * streamChain returns the interceptor chain streams of `path` run through, or undefined without interceptors (the
 * stream then runs its handler directly, at no cost).
 * @internal
 */
export function streamChain(wrapping: HandlerWrapping): CallFn | undefined {
  if (wrapping.interceptors.length === 0) return undefined;
  return applyInterceptors(innermostStream, wrapping.interceptors);
}

/** openStreamCall builds the call a stream's interceptors see. @internal */
export function openStreamCall(path: string, streamKind: StreamKind, params: unknown, ctx: CallContext, run: StreamRun): StreamCall {
  const { service, name } = splitMethod(path);
  return new ServerStreamCall(path, service, name, params, ctx, streamKind, run);
}

function innermostStream(call: RpcCall): Promise<unknown> {
  const stream = call as ServerStreamCall;
  return stream.run.runHandler(call.params, stream.handlerContext());
}

function withHeaders(ctx: CallContext, headers: Readonly<Record<string, string>>): CallContext {
  return {
    method: ctx.method,
    get signal() {
      return ctx.signal;
    },
    deadline: ctx.deadline,
    headers,
    notification: ctx.notification,
    peer: ctx.peer,
    socket: ctx.socket,
    auth: ctx.auth,
    draining: ctx.draining,
  };
}

/** ServerCallBase holds what every kind of call shows its interceptors; `signal` is made only when read. */
abstract class ServerCallBase {
  readonly side = 'server' as const;
  readonly method: string;
  readonly service: string;
  readonly name: string;
  readonly registered: boolean;
  params: unknown;
  readonly deadline: number;
  readonly auth: unknown;
  readonly context: CallContext;
  #headers: Record<string, string> | undefined;

  constructor(method: string, service: string, name: string, params: unknown, ctx: CallContext, registered: boolean) {
    this.method = method;
    this.registered = registered;
    this.service = service;
    this.name = name;
    this.params = params;
    this.deadline = ctx.deadline;
    this.auth = ctx.auth;
    this.context = ctx;
  }

  // The connection's headers object is the call's own (a fresh one per request), except the shared frozen empty
  // one: interceptors that read headers get a writable one in its place, made only then.
  get headers(): Record<string, string> {
    if (this.#headers === undefined) {
      const given = this.context.headers;
      this.#headers = Object.isFrozen(given) ? (Object.create(null) as Record<string, string>) : (given as Record<string, string>);
    }
    return this.#headers;
  }

  /** handlerContext is the context the handler gets: the connection's, or one with the headers interceptors wrote. */
  handlerContext(): CallContext {
    const headers = this.#headers;
    return headers === undefined || headers === this.context.headers ? this.context : withHeaders(this.context, headers);
  }

  get signal(): AbortSignal {
    return this.context.signal;
  }

  get peer(): string {
    const { address, port } = this.context.peer;
    return port === undefined ? String(address ?? 'unknown') : `${address ?? 'unknown'}:${port}`;
  }
}

/** ServerUnaryCall is a unary call or notification as server interceptors see it. @internal */
class ServerUnaryCall extends ServerCallBase implements UnaryCall {
  readonly kind = 'unary' as const;
  readonly notification: boolean;

  constructor(method: string, service: string, name: string, params: unknown, ctx: CallContext, registered: boolean) {
    super(method, service, name, params, ctx, registered);
    this.notification = ctx.notification;
  }
}

/** ServerStreamCall is a stream as server interceptors see it. @internal */
class ServerStreamCall extends ServerCallBase implements StreamCall {
  readonly kind = 'stream' as const;
  readonly notification = false as const;
  readonly streamKind: StreamKind;
  readonly run: StreamRun;

  constructor(method: string, service: string, name: string, params: unknown, ctx: CallContext, streamKind: StreamKind, run: StreamRun) {
    super(method, service, name, params, ctx, true);
    this.streamKind = streamKind;
    this.run = run;
  }

  watch(watcher: StreamWatcher): void {
    this.run.watch(watcher);
  }
}
