/**
 * Retries: what happens to a call whose tunnel went away before it was answered. A call that surely did not run
 * (refused by a goaway, above its lastId) is sent again; one that may have run is sent again only when it is
 * idempotent and has tries left; a stream never, once a message crossed. Everything else fails with words that say
 * whether it may have run. The client decides whether it can send at all (open, a tunnel or a redial to come).
 */
import type { RpcError } from '@tunnelrpc/protocol';
import { failCall, type Call } from './call.js';

/** mayResend tells whether `call`, off its tunnel, may be sent again within its deadline. @internal */
export function mayResend(call: Call, surelyNotRun: boolean, maxRetries: number): boolean {
  return (
    call.deadline > Date.now() &&
    // A stream is never re-sent once a message has crossed (its source cannot be replayed, its reader has read).
    call.stream?.delivered !== true &&
    (surelyNotRun || (call.idempotent && call.attempts <= maxRetries))
  );
}

/**
 * failUnresent fails a call that is not sent again: UNAVAILABLE, saying it did not run when a goaway refused it,
 * else that it may have run (`reason` is the tunnel's end, `url` the endpoint it was on). @internal
 */
export function failUnresent(call: Call, reason: RpcError | undefined, surelyNotRun: boolean, display: string, url: string): void {
  if (surelyNotRun) {
    failCall(call, 'UNAVAILABLE', `${call.method} was not run: the server is shutting down (goaway) and did not take it; safe to retry on a new connection to ${display}`, call.mayHaveRun);
    return;
  }
  const why = reason?.message ?? `the tunnel to ${url} closed`;
  failCall(call, 'UNAVAILABLE', `${call.method} failed: ${why}; it may have run on the server`, true, reason);
}
