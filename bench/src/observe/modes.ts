/**
 * The variants `pnpm bench:observe` compares, each the same echo server and client with one thing added.
 */
import type { Interceptor } from '@tunnelrpc/protocol';

/** OBSERVE_MODES, in the order runs interleave them; `plain` is the baseline the others are compared with. */
export const OBSERVE_MODES = ['plain', 'async', 'async-context', 'context', 'interceptor', 'metrics'] as const;

/** ObserveMode is one variant. */
export type ObserveMode = (typeof OBSERVE_MODES)[number];

/** MODE_INFO says what each variant adds, for the report. */
export const MODE_INFO: Readonly<Record<ObserveMode, string>> = {
  plain: 'the server and client at their defaults (propagateContext on, no client in the server process, so no store is entered)',
  async: 'plain, but the echo handler is async: the connection path every interceptor puts a call on',
  'async-context': 'async, in a server process that also has a client: the AsyncLocalStorage around a handler that awaits',
  context: 'plain, in a server process that also has a client: handlers run in an AsyncLocalStorage',
  interceptor: 'one pass-through interceptor on the server and on the client (a server process without a client)',
  metrics: '@tunnelrpc/prometheus observers and listeners on the server and on the client (no client in the server process)',
};

/** isObserveMode narrows a command-line word. */
export function isObserveMode(name: string): name is ObserveMode {
  return (OBSERVE_MODES as readonly string[]).includes(name);
}

/** PASS_THROUGH is the cheapest interceptor there is: it only calls next. */
export const PASS_THROUGH: Interceptor = (next) => (call) => next(call);
