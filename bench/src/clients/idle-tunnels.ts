/**
 * Idle-tunnel client: opens --count tunnels to a tunnelrpc server with the public connect(), at most --parallel
 * handshakes at a time, prints {"opened":N,"seconds":S} and then holds them, sending nothing, until stdin says
 * exit (or ends). Exiting closes every socket at once.
 */
import { createInterface } from 'node:readline';
import { connect, type RpcClient } from '@tunnelrpc/client';
import { ChildArgs } from '../child-args.js';
import { emit, failClient } from '../closed-loop.js';

async function main(): Promise<void> {
  const args = new ChildArgs();
  const url = `http://${args.string('host', '127.0.0.1')}:${args.number('port')}/_rpc`;
  const count = args.number('count');
  const parallel = args.number('parallel', 200);
  const clients: RpcClient[] = [];
  const started = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      clients.push(await connect(url));
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  emit({ opened: clients.length, seconds: Math.round(performance.now() - started) / 1000 });
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() === 'exit') process.exit(0);
  });
  lines.on('close', () => process.exit(0));
}

main().catch(failClient);
