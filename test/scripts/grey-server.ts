/**
 * grey-server: a replica that can be made grey while it runs, for the pool tests and the pool bench. It serves
 * Echo and Fleet like the example server and prints `listening URL`; each line on stdin changes how it answers,
 * and it prints `ok LINE` once the change holds:
 *
 *   delay MS    every answer waits MS ms first (0: none)
 *   fail P      each call fails INTERNAL with probability P (0 … 1)
 *
 *   node test/dist/scripts/grey-server.js [PORT]
 */
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { Echo, createEchoService } from '@tunnelrpc/examples';
import { Fleet, createFleetService } from '@tunnelrpc/examples/fleet';
import { RpcError, RpcServer, type Interceptor } from '@tunnelrpc/server';

let answerDelay = 0;
let failShare = 0;

// Wraps every call: the delay first (as a slow disk or a GC-bound process would), then the coin for a failure.
const grey: Interceptor = (next) => async (call) => {
  if (answerDelay > 0) await delay(answerDelay);
  if (failShare > 0 && Math.random() < failShare) throw new RpcError('INTERNAL', 'grey replica: this call failed on purpose');
  return next(call);
};

const server = new RpcServer({ interceptors: [grey], logger: () => undefined }).register(Echo, createEchoService()).register(Fleet, createFleetService());
const address = await server.listen(Number(process.argv[2] ?? 0), '127.0.0.1');
console.log(`listening ${address.url}`);

createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, value] = line.trim().split(/\s+/);
  const number = Number(value);
  if (command === 'delay' && Number.isFinite(number) && number >= 0) answerDelay = number;
  else if (command === 'fail' && Number.isFinite(number) && number >= 0 && number <= 1) failShare = number;
  else {
    console.log(`bad ${line}`);
    return;
  }
  console.log(`ok ${line.trim()}`);
});
process.stdin.on('end', () => {
  server.close().then(() => process.exit(0), () => process.exit(1));
});
