/**
 * tunnelrpc client: connect() and client.call('Echo.echo', bytes) through the public API, default options
 * (maxPendingCalls is raised to C only when C exceeds its default of 1024).
 */
import { connect, type ClientOptions } from '@tunnelrpc/client';
import { failClient, runClosedLoop } from '../closed-loop.js';

const DEFAULT_MAX_PENDING_CALLS = 1024;

runClosedLoop(async ({ host, port, concurrency }) => {
  const options: ClientOptions = concurrency > DEFAULT_MAX_PENDING_CALLS ? { maxPendingCalls: concurrency } : {};
  const client = await connect(`http://${host}:${port}/_rpc`, options);
  return {
    call(payload, done) {
      client.call('Echo.echo', payload).then(
        (result) => done(undefined, result as Uint8Array),
        (error: unknown) => done(error),
      );
    },
    close: () => client.close(),
  };
}).catch(failClient);
