/**
 * The unary calls and notifications running on one connection (the mirror of the stream table, stream.ts): which
 * ids are in flight, their shared deadline timers, and settling each exactly once when its handler answers, its
 * deadline passes, the client cancels or the connection goes. The connection admits a call (admission.ts, the
 * budget) and runs a synchronous handler itself; what outlives its frame comes here.
 */
import { RpcError, type ErrorCode } from '@tunnelrpc/protocol';
import { Deadlines, type DeadlineGroup, type Observers, type TimerFunctions } from '@tunnelrpc/protocol/internal';
import type { Cost } from './budget.js';
import type { HandlerContext } from './context.js';
import type { RegisteredMethod } from './dispatch.js';

/** CallTableHost is what the calls need from their connection. @internal */
export interface CallTableHost {
  /** Gives back a call's share of the server-wide budget. */
  releaseCall(cost: Cost): void;
  /**
   * Answers a call with its result (checked against the contract) or its error; nothing once the tunnel is closed.
   * Returns what its caller was told: 'OK' or the error's code.
   */
  answer(id: number, method: RegisteredMethod, error: RpcError | undefined, result: unknown): ErrorCode | 'OK';
  /** ServerOptions.observers; undefined when there are none. */
  readonly observers: Observers | undefined;
  /** Maps a handler's throw to the error sent (RpcError as written, anything else INTERNAL), logged. */
  handlerError(thrown: unknown, path: string, ctx: HandlerContext): RpcError;
  /** Runs a callback from a promise or a timer; a throw costs the connection, never the process. */
  guarded(step: () => void): void;
  /** A call or notification ended: the connection may take backlogged frames, emit idle, or close. */
  callEnded(): void;
}

/** ActiveCall is one unary call whose handler has not answered yet. @internal */
interface ActiveCall {
  readonly id: number;
  readonly registered: RegisteredMethod;
  readonly ctx: HandlerContext;
  /** The deadline timer it shares with calls that arrived in the same ms with the same timeout. */
  deadlineGroup: DeadlineGroup | undefined;
  deadlineSlot: number;
  /** Its deadline as the request gave it, in ms, for the error message. */
  readonly timeout: number;
  /** What it holds of the server-wide budget (decoded values and frame bytes). */
  readonly cost: Cost;
  /** When observers were told it started (performance.now()); 0 without observers. */
  readonly startedAt: number;
}

const NODE_TIMERS: TimerFunctions = {
  set: (run, ms) => setTimeout(run, ms),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** CallTable holds one connection's running unary calls and notifications. @internal */
export class CallTable {
  readonly #host: CallTableHost;
  readonly #calls = new Map<number, ActiveCall>();
  #deadlines: Deadlines<ActiveCall> | undefined;
  // Signals of running notification handlers, aborted at their deadline or when the connection closes.
  readonly #notifications = new Set<HandlerContext>();

  constructor(host: CallTableHost) {
    this.#host = host;
  }

  /** calls counts the unary calls in flight. */
  get calls(): number {
    return this.#calls.size;
  }

  /** notifications counts the notification handlers running. */
  get notifications(): number {
    return this.#notifications.size;
  }

  /** has tells whether call `id` is in flight. */
  has(id: number): boolean {
    return this.#calls.has(id);
  }

  /**
   * run waits for the answer of a handler that returned a promise: the call is in flight until it settles, its
   * deadline passes (at `deadline`, Date.now() based) or it is cancelled.
   */
  run(id: number, method: RegisteredMethod, ctx: HandlerContext, timeout: number, cost: Cost, outcome: unknown, startedAt: number): void {
    const call: ActiveCall = { id, registered: method, ctx, deadlineGroup: undefined, deadlineSlot: 0, timeout, cost, startedAt };
    this.#calls.set(id, call);
    const now = Date.now();
    (this.#deadlines ??= this.#makeDeadlines()).arm(call, Math.max(0, ctx.deadline - now), now);
    Promise.resolve(outcome).then(
      (result) => this.#host.guarded(() => this.#finish(call, undefined, result)),
      (error: unknown) => this.#host.guarded(() => this.#finish(call, this.#host.handlerError(error, method.path, ctx))),
    );
  }

  /** cancel ends call `id`, if in flight, with a client cancel. */
  cancel(id: number): void {
    const call = this.#calls.get(id);
    if (call !== undefined) this.#finish(call, new RpcError('CANCELLED', `call ${call.registered.path} was cancelled by the client`, { mayHaveRun: true }));
  }

  /**
   * runNotification runs a notification's handler (`start`) to its end: its signal is aborted at its deadline too
   * (PROTOCOL.md 8.1 / 5.3), nothing is sent, and a failure is only logged.
   */
  runNotification(method: RegisteredMethod, ctx: HandlerContext, timeout: number, cost: Cost, start: () => unknown, startedAt: number): void {
    this.#notifications.add(ctx);
    const timer = setTimeout(() => {
      ctx.abort(new RpcError('DEADLINE_EXCEEDED', `notification ${method.path} passed its deadline of ${timeout} ms`));
    }, timeout);
    let done = false;
    const finish = (error?: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.#host.releaseCall(cost);
      this.#notifications.delete(ctx);
      const code = error === undefined ? 'OK' : this.#host.handlerError(error, method.path, ctx).code;
      this.#host.observers?.ended(method.observedNotification, code, startedAt);
      this.#host.callEnded();
    };
    try {
      Promise.resolve(start()).then(
        () => this.#host.guarded(() => finish()),
        (error: unknown) => this.#host.guarded(() => finish(error ?? 'rejected')),
      );
    } catch (error) {
      finish(error ?? 'threw');
    }
  }

  /** abortAll ends every call and notification with `reason`, unanswered (the connection is closing). */
  abortAll(reason: RpcError): void {
    const observers = this.#host.observers;
    for (const call of this.#calls.values()) {
      this.#deadlines?.disarm(call);
      this.#host.releaseCall(call.cost);
      call.ctx.abort(reason);
      observers?.ended(call.registered.observed, reason.code, call.startedAt);
    }
    this.#calls.clear();
    for (const ctx of this.#notifications) ctx.abort(reason);
  }

  // Made with the first call that outlives its frame.
  #makeDeadlines(): Deadlines<ActiveCall> {
    return new Deadlines<ActiveCall>((call) => {
      this.#host.guarded(() => this.#finish(call, new RpcError('DEADLINE_EXCEEDED', `${call.registered.path} passed its deadline of ${call.timeout} ms`, { mayHaveRun: true })));
    }, NODE_TIMERS);
  }

  // Settles a call exactly once: the Map entry is the guard (Go's pending delete-then-done).
  #finish(call: ActiveCall, error: RpcError | undefined, result?: unknown): void {
    if (this.#calls.get(call.id) !== call) return;
    this.#calls.delete(call.id);
    this.#deadlines?.disarm(call);
    this.#host.releaseCall(call.cost);
    if (error !== undefined) call.ctx.abort(error);
    const code = this.#host.answer(call.id, call.registered, error, result);
    this.#host.observers?.ended(call.registered.observed, code, call.startedAt);
    this.#host.callEnded();
  }
}
