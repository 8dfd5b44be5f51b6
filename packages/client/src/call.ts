/** One call's state, shared by the client (queueing, retries) and the tunnel it is sent on. */
import { RpcError, type ErrorCode, type ObservedMethod } from '@tunnelrpc/protocol';
import { Deadlines, type DeadlineGroup, type Observers, type TimerFunctions } from '@tunnelrpc/protocol/internal';
import type { StreamCore } from './stream.js';

/** CallTunnel is what a call needs of the tunnel it waits on: the tunnel owns the record while it is there. @internal */
export interface CallTunnel {
  /** Forgets the call and tells the server it was cancelled (a deadline, an abort, a stream ended early). */
  abandon(call: Call): void;
  /** Ends the tunnel with `reason`, failing what waits on it. */
  destroy(reason: RpcError): void;
}

/** Call is one client call from call() until it settles. @internal */
export interface Call {
  /** A notification: settled as soon as it is written, never waits for an answer. */
  readonly notification: boolean;
  readonly method: string;
  /** What the call sends; dropped when it settles. */
  params: unknown;
  readonly headers: Record<string, string> | undefined;
  /** Absolute deadline, Date.now() based. */
  readonly deadline: number;
  /** The contract marks the method idempotent: it may be re-sent even when it may have run. */
  readonly idempotent: boolean;
  /** The caller's promise; both are dropped when the call settles (resolveCall, rejectCall). */
  resolve: (value: unknown) => void;
  reject: (error: RpcError) => void;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** The shared deadline timer the call waits on (Deadlines). */
  deadlineGroup: DeadlineGroup | undefined;
  deadlineSlot: number;
  /** Times the call was written to a tunnel. */
  attempts: number;
  /** performance.now() when its latest attempt was written: the endpoint's latency estimate reads it. */
  sentAt: number;
  /** An earlier attempt was lost while the server may have been running it (refused attempts do not count). */
  mayHaveRun: boolean;
  /** The tunnel it waits on, and its id there; undefined while queued. */
  tunnel: CallTunnel | undefined;
  id: number;
  settled: boolean;
  /** The stream this call opens (PROTOCOL.md 12); undefined for a unary call or a notification. */
  readonly stream?: StreamCore | undefined;
  /** Fails the call when its deadline passes (one function per client). */
  readonly expire: (call: Call, timeout: number) => void;
  /**
   * The client's observers, told of its start (ClientOptions.observers): undefined without observers, and once it
   * settles. Fields of the record rather than an object per call.
   */
  observers: Observers | undefined;
  /** The method and type the observers heard it as. */
  observedMethod: ObservedMethod | undefined;
  /** performance.now() when the observers heard it start. */
  observedAt: number;
}

// Tells the observers how a call ended, once.
function observeEnd(call: Call, code: ErrorCode | 'OK'): void {
  const observers = call.observers;
  if (observers === undefined) return;
  call.observers = undefined;
  const method = call.observedMethod!;
  call.observedMethod = undefined;
  observers.endedSoon(method, code, call.observedAt);
}

// What a settled call holds in place of its resolvers (and a new one until it has them): nothing that reaches the
// caller's promise or its result.
const SETTLED = (): void => {};

/** NO_RESOLVER is what a record is made with, before promiseFor gives it its caller's resolvers. @internal */
export const NO_RESOLVER: (value: unknown) => void = SETTLED;

// The executor of every call's promise: one shared function that hands the resolvers over, instead of a closure
// (and the context it captures) per call. Read back at once by promiseFor, in the same synchronous step.
let handedResolve: ((value: unknown) => void) | undefined;
let handedReject: ((error: RpcError) => void) | undefined;
function handOver(resolve: (value: unknown) => void, reject: (error: RpcError) => void): void {
  handedResolve = resolve;
  handedReject = reject;
}

/** promiseFor makes the caller's promise of `call` and gives the record its resolvers. @internal */
export function promiseFor(call: Call): Promise<unknown> {
  const promise = new Promise<unknown>(handOver);
  call.resolve = handedResolve!;
  call.reject = handedReject!;
  handedResolve = undefined;
  handedReject = undefined;
  return promise;
}

// Marks a call done and lets go of everything that could keep its result or params alive: its deadline slot, its
// abort listener, its tunnel, its params and its resolvers. A settled record may live on (a scavenge may have
// promoted it, and an old-space object keeps what it points to alive through every scavenge until the next
// mark-compact), so it must point at nothing of the call's. False if it was settled already.
function settleCall(call: Call): boolean {
  if (call.settled) return false;
  call.settled = true;
  if (call.deadlineGroup !== undefined) callDeadlines.disarm(call);
  if (call.onAbort !== undefined) call.signal?.removeEventListener('abort', call.onAbort);
  call.onAbort = undefined;
  call.tunnel = undefined;
  call.params = undefined;
  return true;
}

/** resolveCall settles a call with its result, once; later settles are ignored. @internal */
export function resolveCall(call: Call, result: unknown): void {
  if (!settleCall(call)) return;
  const resolve = call.resolve;
  call.resolve = SETTLED;
  call.reject = SETTLED;
  observeEnd(call, 'OK');
  resolve(result);
}

/** rejectCall settles a call with `error`, once; later settles are ignored. @internal */
export function rejectCall(call: Call, error: RpcError): void {
  if (!settleCall(call)) return;
  const reject = call.reject;
  call.resolve = SETTLED;
  call.reject = SETTLED;
  observeEnd(call, error.code);
  reject(error);
}

/** failCall settles a call with a locally made error that says whether it may have run. @internal */
export function failCall(call: Call, code: RpcError['code'], message: string, mayHaveRun: boolean, cause?: unknown): void {
  if (call.settled) return;
  rejectCall(call, new RpcError(code, message, { mayHaveRun }, cause === undefined ? undefined : { cause }));
}

const NODE_TIMERS: TimerFunctions = {
  set: (run, ms) => setTimeout(run, ms),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * callDeadlines is the one set of shared deadline timers for all calls of the process; each call's expiry goes to
 * the client that made it.
 * @internal
 */
export const callDeadlines = new Deadlines<Call>((call, timeout) => call.expire(call, timeout), NODE_TIMERS);
