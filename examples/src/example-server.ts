/**
 * `pnpm example:server --port N [--host H]`: serves the Echo fixture in the foreground and prints
 * `listening http://HOST:PORT/_rpc` once it accepts connections, followed on a loopback host (the default,
 * 127.0.0.1) by a note that only this machine can connect. SIGINT/SIGTERM close it gracefully.
 */
import { parseArgs } from 'node:util';
import { RpcServer, type LogEntry } from '@tunnelrpc/server';
import { Echo, createEchoService } from './echo-service.js';
import { Fleet, createFleetService } from './fleet-service.js';

const usage = 'usage: pnpm example:server --port N [--host H]   (port 0 picks a free port)';

async function main(): Promise<void> {
  let values: { port?: string; host?: string; help?: boolean };
  try {
    ({ values } = parseArgs({ options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' }, help: { type: 'boolean' } } }));
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage}`);
    process.exit(2);
  }
  if (values.help === true) {
    console.log(usage);
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port must be an integer from 0 to 65535; got ${values.port}\n${usage}`);
    process.exit(2);
  }
  // One line per handler crash: the detail stays in the server's log, never in the caller's error.
  const logger = (entry: LogEntry): void => {
    if (entry.level === 'debug') return;
    const error = entry.error === undefined ? '' : `: ${entry.error instanceof Error ? entry.error.message : String(entry.error)}`;
    console.error(`[example server] ${entry.level} ${entry.method ?? ''} ${entry.message}${error}`);
  };
  // Fleet says which process answered: a client spread over several servers can count where its calls went.
  const server = new RpcServer({ logger }).register(Echo, createEchoService()).register(Fleet, createFleetService());
  // Handlers go in before the 'listening' line: a supervisor that signals as soon as it reads the line must
  // never meet the default action (death by signal, not a graceful close and exit 0).
  const stop = (): void => {
    server.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const address = await server.listen(port, values.host);
  // Like rpc.listen(), the example binds 127.0.0.1 by default: other machines and containers cannot reach it.
  const loopback = ['127.0.0.1', '::1', 'localhost'].includes(address.host);
  console.log(`listening ${address.url}${loopback ? ' (loopback only; --host 0.0.0.0 listens on every interface)' : ''}`);
}

main().catch((error: unknown) => {
  console.error(`example server failed: ${(error as Error).message}`);
  process.exit(1);
});
