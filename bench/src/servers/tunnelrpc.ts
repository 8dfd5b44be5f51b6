/**
 * tunnelrpc server: the real RpcServer with the Echo fixture's `echo` (input and output z.unknown()), every guard
 * at its default. Only two limits move, and only when the run needs more than the default:
 *   --concurrency C        maxInFlight = C when C > 128 (the default)
 *   --max-connections N    maxConnectionsPerIp = N (and maxConnections when N > 10000, the default), for the
 *                          idle-tunnel count, which opens every tunnel from 127.0.0.1
 */
import { Echo, createEchoService } from '@tunnelrpc/examples';
import { RpcServer, type ServerOptions } from '@tunnelrpc/server';
import { ChildArgs } from '../child-args.js';
import { failServer, serveControl } from '../server-control.js';

const DEFAULT_MAX_IN_FLIGHT = 128;
const DEFAULT_MAX_CONNECTIONS = 10_000;

async function main(): Promise<void> {
  const args = new ChildArgs();
  const concurrency = args.number('concurrency', 1);
  const maxConnections = args.number('max-connections', 0);
  const options: ServerOptions = {};
  if (concurrency > DEFAULT_MAX_IN_FLIGHT) options.maxInFlight = concurrency;
  // The idle-tunnel count opens every tunnel from 127.0.0.1, so the per-address cap moves with the total.
  if (maxConnections > 0) {
    options.maxConnections = Math.max(maxConnections, DEFAULT_MAX_CONNECTIONS);
    options.maxConnectionsPerIp = maxConnections;
  }
  const rpc = new RpcServer(options).register(Echo, createEchoService());
  const { port } = await rpc.listen(0, '127.0.0.1');
  serveControl(port, { connections: () => rpc.connectionCount, close: () => rpc.close() });
}

main().catch(failServer);
