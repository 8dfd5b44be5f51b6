/**
 * The echo server of `pnpm bench:observe`: the tunnelrpc bench server with the variant's options.
 * Arguments: --mode plain|context|interceptor|metrics --concurrency C.
 */
import { Echo, createEchoService } from '@tunnelrpc/examples';
import { createPrometheus } from '@tunnelrpc/prometheus';
import { RpcServer, type ServerOptions } from '@tunnelrpc/server';
import { ChildArgs } from '../child-args.js';
import { failServer, serveControl } from '../server-control.js';
import { enableAmbientCalls } from '@tunnelrpc/protocol/internal';
import { PASS_THROUGH, isObserveMode } from './modes.js';

async function main(): Promise<void> {
  const args = new ChildArgs();
  const mode = args.string('mode');
  if (!isObserveMode(mode)) throw new Error(`unknown --mode ${mode}`);
  const concurrency = args.number('concurrency', 1);
  // Every variant runs the server at its defaults (propagateContext on) and adds one thing.
  const options: ServerOptions = { maxInFlight: Math.max(128, concurrency) };
  const asyncHandler = mode === 'async' || mode === 'async-context';
  // A server process with no tunnelrpc client never enters the store (interceptor and metrics measure that common
  // case); context and async-context measure a server that also makes calls, so has a client.
  if (mode === 'context' || mode === 'async-context') enableAmbientCalls();
  if (mode === 'interceptor') options.interceptors = [PASS_THROUGH];
  if (mode === 'metrics') {
    const metrics = createPrometheus({ services: [Echo] });
    options.observers = [metrics.serverObserver];
    options.listeners = [metrics.serverListener];
  }
  // An async handler answers through the connection's promise path (a deadline timer and an in-flight entry per
  // call), as every call does once an interceptor wraps it.
  const service = { ...createEchoService(), ...(asyncHandler ? { echo: async (value: unknown) => value } : {}) };
  const rpc = new RpcServer(options).register(Echo, service);
  const { port } = await rpc.listen(0, '127.0.0.1');
  serveControl(port, { connections: () => rpc.connectionCount, close: () => rpc.close() });
}

main().catch(failServer);
