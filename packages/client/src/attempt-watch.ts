/**
 * Attempt watch: attemptTimeout for idempotent calls. Each attempt sent to a tunnel is armed on a shared timer
 * (Deadlines); one answered or given up is disarmed. One that waited attemptTimeout counts against its endpoint and,
 * when the call has tries and time left, is cancelled there (a cancel goes out, the id stays reserved) and handed
 * back to be sent elsewhere.
 */
import { Deadlines, type DeadlineGroup, type TimerFunctions } from '@tunnelrpc/protocol/internal';
import type { Call } from './call.js';
import type { Endpoint } from './endpoint.js';
import type { Tunnel } from './tunnel.js';

// One attempt of an idempotent call under attemptTimeout: which tunnel it went to, and which try it was.
interface AttemptWatch {
  readonly call: Call;
  readonly tunnel: Tunnel;
  readonly owner: Endpoint;
  readonly attempt: number;
  deadlineGroup: DeadlineGroup | undefined;
  deadlineSlot: number;
}

// Attempt timers never keep the process alive: the call's own deadline does while it waits.
const UNREF_TIMERS: TimerFunctions = {
  set: (run, ms) => setTimeout(run, ms).unref(),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** AttemptWatches arms attemptTimeout on each attempt of an idempotent call. @internal */
export class AttemptWatches {
  readonly #attemptTimeout: number;
  readonly #maxRetries: number;
  // Hands back a call cancelled on its tunnel, to be sent again elsewhere.
  readonly #timedOut: (call: Call) => void;
  readonly #attempts: Deadlines<AttemptWatch>;
  // The armed attempt of each idempotent call, disarmed when it is answered: memory follows calls in flight, not
  // calls made within the last attemptTimeout.
  readonly #watches = new Map<Call, AttemptWatch>();
  #closed = false;

  constructor(attemptTimeout: number, maxRetries: number, timedOut: (call: Call) => void) {
    this.#attemptTimeout = attemptTimeout;
    this.#maxRetries = maxRetries;
    this.#timedOut = timedOut;
    this.#attempts = new Deadlines<AttemptWatch>((watch, timeout) => this.#expired(watch, timeout), UNREF_TIMERS);
  }

  /** sent arms the attempt of `call` just written to `tunnel`, when attemptTimeout applies to it. */
  sent(call: Call, tunnel: Tunnel, owner: Endpoint): void {
    if (this.#attemptTimeout <= 0 || !call.idempotent || call.stream !== undefined || call.notification || this.#closed) return;
    const earlier = this.#watches.get(call);
    if (earlier !== undefined) this.#attempts.disarm(earlier);
    const watch: AttemptWatch = { call, tunnel, owner, attempt: call.attempts, deadlineGroup: undefined, deadlineSlot: 0 };
    this.#watches.set(call, watch);
    this.#attempts.arm(watch, this.#attemptTimeout, Date.now());
  }

  /** ended disarms the attempt of a call answered or given up on its tunnel. */
  ended(call: Call): void {
    const watch = this.#watches.get(call);
    if (watch === undefined) return;
    this.#watches.delete(call);
    this.#attempts.disarm(watch);
  }

  /** close disarms every attempt; none is armed after. */
  close(): void {
    this.#closed = true;
    for (const watch of this.#watches.values()) this.#attempts.disarm(watch);
    this.#watches.clear();
  }

  #expired(watch: AttemptWatch, timeout: number): void {
    const { call, tunnel, owner } = watch;
    if (this.#watches.get(call) === watch) this.#watches.delete(call);
    if (call.settled || call.tunnel !== tunnel || call.attempts !== watch.attempt || this.#closed) return;
    try {
      owner.attemptTimedOut(timeout);
      if (call.attempts > this.#maxRetries || call.deadline <= Date.now()) return;
      tunnel.abandon(call);
      call.tunnel = undefined;
      call.mayHaveRun = true;
      this.#timedOut(call);
    } catch {
      // A bug here must not escape the timer: the call still ends at its deadline.
    }
  }
}
