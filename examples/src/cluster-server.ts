/**
 * `node examples/dist/cluster-server.js --workers N --port P [--host H]`: N worker processes (Node's `cluster`)
 * serve Echo and Fleet on one port. The primary prints `listening http://HOST:PORT/_rpc` once every worker
 * accepts connections. Each tunnel lands on one worker (the primary hands connections round robin), so a client
 * with `tunnelsPerEndpoint: N` spreads its calls over up to N workers. SIGINT/SIGTERM close every worker
 * gracefully; a worker that dies is replaced.
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { RpcServer } from '@tunnelrpc/server';
import { Echo, createEchoService } from './echo-service.js';
import { Fleet, createFleetService } from './fleet-service.js';

const usage = 'usage: node examples/dist/cluster-server.js [--workers N] [--port P] [--host H]   (port 0 picks a free port)';

function options(): { workers: number; port: number; host: string } {
  const { values } = parseArgs({
    options: { workers: { type: 'string', default: String(availableParallelism()) }, port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } },
  });
  const workers = Number(values.workers);
  const port = Number(values.port);
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) throw new Error(`--workers must be an integer from 1 to 256; got ${values.workers}`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be an integer from 0 to 65535; got ${values.port}`);
  return { workers, port, host: values.host };
}

async function primary(): Promise<void> {
  const { workers, port, host } = options();
  let stopping = false;
  let listening = 0;
  let url = '';
  const fork = (): void => {
    const worker = cluster.fork({ TUNNELRPC_PORT: String(port), TUNNELRPC_HOST: host });
    worker.on('message', (message: { url?: string }) => {
      if (typeof message?.url !== 'string') return;
      url = message.url;
      // Port 0: the primary binds once and every worker shares that port.
      if (++listening === workers) console.log(`listening ${url} (${workers} workers)`);
    });
  };
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    console.error(`[cluster server] worker ${worker.process.pid} exited (${signal ?? code}); starting another`);
    fork();
  });
  const stop = (): void => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  for (let i = 0; i < workers; i++) fork();
}

async function worker(): Promise<void> {
  const server = new RpcServer().register(Echo, createEchoService()).register(Fleet, createFleetService());
  const stop = (): void => {
    server.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const address = await server.listen(Number(process.env.TUNNELRPC_PORT ?? 0), process.env.TUNNELRPC_HOST ?? '127.0.0.1');
  process.send?.({ url: address.url });
}

(cluster.isPrimary ? primary() : worker()).catch((error: unknown) => {
  console.error(`cluster server failed: ${(error as Error).message}\n${usage}`);
  process.exit(2);
});
