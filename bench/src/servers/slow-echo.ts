/**
 * slow-echo: the example's Echo service with every answer held back `--delay MS` ms (0: none), for the grey-replica
 * cell of `pnpm bench:pool`: one replica of three answering in 200 ms instead of about 1. Prints
 * `listening URL` once it accepts connections; SIGTERM closes it.
 *
 *   node bench/dist/servers/slow-echo.js --delay MS
 */
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Echo, createEchoService } from '@tunnelrpc/examples';
import { RpcServer, type Interceptor } from '@tunnelrpc/server';

const { values } = parseArgs({ options: { delay: { type: 'string', default: '0' } } });
const ms = Number(values.delay);
if (!Number.isInteger(ms) || ms < 0) throw new Error('usage: slow-echo --delay MS (a whole number of ms, 0 or more)');

const slow: Interceptor = (next) => async (call) => {
  await delay(ms);
  return next(call);
};

const server = new RpcServer({ interceptors: ms > 0 ? [slow] : [], maxInFlight: 1024 }).register(Echo, createEchoService());
const address = await server.listen(0, '127.0.0.1');
process.once('SIGTERM', () => {
  server.close().then(() => process.exit(0), () => process.exit(1));
});
console.log(`listening ${address.url}`);
