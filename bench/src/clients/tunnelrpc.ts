/**
 * tunnelrpc client: connect() and client.call('Echo.echo', bytes) through the public API, default options
 * (maxPendingCalls is raised to C only when C exceeds its default of 1024).
 */
import { connect, type ClientOptions } from '@tunnelrpc/client';
import { failClient, runClosedLoop } from '../closed-loop.js';
import { echoDriver } from '../tunnelrpc-echo.js';

const DEFAULT_MAX_PENDING_CALLS = 1024;

runClosedLoop(async ({ host, port, concurrency }) => {
  const options: ClientOptions = concurrency > DEFAULT_MAX_PENDING_CALLS ? { maxPendingCalls: concurrency } : {};
  return echoDriver(await connect(`http://${host}:${port}/_rpc`, options));
}).catch(failClient);
