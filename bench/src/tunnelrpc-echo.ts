/**
 * The tunnelrpc side of a bench client: Echo.echo through the public client.call, as the plain tunnelrpc cell and
 * the observe variants both drive it, so a difference between their numbers is the variant's and not the loop's.
 */
import type { RpcClient } from '@tunnelrpc/client';
import type { EchoDriver } from './closed-loop.js';

/** echoDriver drives `client` with Echo.echo calls and closes it when the loop is done. */
export function echoDriver(client: RpcClient): EchoDriver {
  return {
    call(payload, done) {
      client.call('Echo.echo', payload).then(
        (result) => done(undefined, result as Uint8Array),
        (error: unknown) => done(error),
      );
    },
    close: () => client.close(),
  };
}
