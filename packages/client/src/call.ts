/** One call's state, shared by the client (queueing, retries) and the tunnel it is sent on. */
import { Deadlines, RpcError, type DeadlineGroup, type TimerFunctions } from '@tunnelrpc/protocol';
import type { StreamCore } from './stream.js';
import type { Tunnel } from './tunnel.js';

/** Call is one client call from call() until it settles. @internal */
export interface Call {
  /** A notification: settled as soon as it is written, never waits for an answer. */
  readonly notification: boolean;
  readonly method: string;
  readonly params: unknown;
  readonly headers: Record<string, string> | undefined;
  /** Absolute deadline, Date.now() based. */
  readonly deadline: number;
  /** The contract marks the method idempotent: it may be re-sent even when it may have run. */
  readonly idempotent: boolean;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: RpcError) => void;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** The shared deadline timer the call waits on (Deadlines). */
  deadlineGroup: DeadlineGroup | undefined;
  /** Times the call was written to a tunnel. */
  attempts: number;
  /** performance.now() when its latest attempt was written: the endpoint's latency estimate reads it. */
  sentAt: number;
  /** An earlier attempt was lost while the server may have been running it (refused attempts do not count). */
  mayHaveRun: boolean;
  /** The tunnel it waits on, and its id there; undefined while queued. */
  tunnel: Tunnel | undefined;
  id: number;
  settled: boolean;
  /** The stream this call opens (PROTOCOL.md 12); undefined for a unary call or a notification. */
  readonly stream?: StreamCore | undefined;
  /** Fails the call when its deadline passes (one function per client). */
  readonly expire: (call: Call, timeout: number) => void;
}

/** settleCall marks a call done and drops its deadline and abort listener; false if it was settled already. @internal */
export function settleCall(call: Call): boolean {
  if (call.settled) return false;
  call.settled = true;
  if (call.deadlineGroup !== undefined) callDeadlines.disarm(call);
  if (call.onAbort !== undefined) call.signal?.removeEventListener('abort', call.onAbort);
  call.tunnel = undefined;
  return true;
}

/** failCall settles a call with a locally made error that says whether it may have run. @internal */
export function failCall(call: Call, code: RpcError['code'], message: string, mayHaveRun: boolean, cause?: unknown): void {
  if (!settleCall(call)) return;
  call.reject(new RpcError(code, message, { mayHaveRun }, cause === undefined ? undefined : { cause }));
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
