/**
 * The closed-loop client of `pnpm bench:observe`: client.call('Echo.echo', bytes) with the variant's client
 * interceptors. Arguments as every bench client (closed-loop.ts), plus --mode.
 */
import { connect, type ClientOptions } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import { createPrometheus } from '@tunnelrpc/prometheus';
import { failClient, runClosedLoop } from '../closed-loop.js';
import { echoDriver } from '../tunnelrpc-echo.js';
import { PASS_THROUGH, isObserveMode } from './modes.js';

const modeAt = process.argv.indexOf('--mode');
const mode = modeAt === -1 ? '' : (process.argv[modeAt + 1] ?? '');
// runClosedLoop reads the rest of argv; the mode pair is ours.
if (modeAt !== -1) process.argv.splice(modeAt, 2);

runClosedLoop(async ({ host, port, concurrency }) => {
  if (!isObserveMode(mode)) throw new Error(`unknown --mode ${mode}`);
  const options: ClientOptions = { maxPendingCalls: Math.max(1024, concurrency) };
  if (mode === 'interceptor') options.interceptors = [PASS_THROUGH];
  if (mode === 'metrics') {
    const metrics = createPrometheus({ services: [Echo] });
    options.observers = [metrics.clientObserver];
    options.listeners = [metrics.clientListener];
  }
  return echoDriver(await connect(`http://${host}:${port}/_rpc`, options));
}).catch(failClient);
