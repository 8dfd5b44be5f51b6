/**
 * `pnpm example:server --port N [--host H] [--proxy-protocol] [--debug]`: serves the Echo fixture in the
 * foreground and prints `listening http://HOST:PORT/_rpc` once it accepts connections, followed on a loopback host
 * (the default, 127.0.0.1) by a note that only this machine can connect. SIGINT/SIGTERM close it gracefully.
 *
 * --proxy-protocol serves a listener behind a balancer on this machine: every connection must start with a PROXY
 * v1/v2 header from 127.0.0.1 or ::1 (HAProxy send-proxy-v2, nginx proxy_protocol on).
 *
 * --debug turns the operating features on: Prometheus metrics at /metrics, the debug page at /debug/tunnelrpc,
 * tracing (spans go to the OpenTelemetry SDK you register; without one they cost next to nothing), and one log
 * line per tunnel event, rate-limited with the server's own log and with peer text escaped. Health and reflection
 * are on either way.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { createTracing } from '@tunnelrpc/otel';
import { createPrometheus } from '@tunnelrpc/prometheus';
import { escapePeerText, quotePeerText } from '@tunnelrpc/protocol';
import { RpcServer, createRateLimitedLogger, type LogEntry, type ServerEvent } from '@tunnelrpc/server';
import { Echo, createEchoService } from './echo-service.js';
import { Fleet, createFleetService } from './fleet-service.js';

const usage = 'usage: pnpm example:server --port N [--host H] [--proxy-protocol] [--debug]   (port 0 picks a free port)';
const DEBUG_PATH = '/debug/tunnelrpc';

async function main(): Promise<void> {
  let values: { port?: string; host?: string; help?: boolean; debug?: boolean; 'proxy-protocol'?: boolean };
  try {
    ({ values } = parseArgs({ options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' }, help: { type: 'boolean' }, debug: { type: 'boolean' }, 'proxy-protocol': { type: 'boolean' } } }));
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
    const error = entry.error === undefined ? '' : `: ${escapePeerText(entry.error instanceof Error ? entry.error.message : String(entry.error))}`;
    console.error(`[example server] ${entry.level} ${entry.method ?? ''} ${entry.message}${error}`);
  };
  if (values.debug === true) {
    await serveWithDebug(port, values.host ?? '127.0.0.1', logger);
    return;
  }
  const proxyProtocol = values['proxy-protocol'] === true ? { trusted: ['127.0.0.1', '::1'] } : undefined;
  // Fleet says which process answered: a client spread over several servers can count where its calls went.
  const server = new RpcServer({ logger, proxyProtocol }).register(Echo, createEchoService()).register(Fleet, createFleetService());
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
  const proxied = proxyProtocol === undefined ? '' : ' (PROXY protocol required, from 127.0.0.1 and ::1 only)';
  console.log(`listening ${address.url}${loopback ? ' (loopback only; --host 0.0.0.0 listens on every interface)' : ''}${proxied}`);
}

main().catch((error: unknown) => {
  console.error(`example server failed: ${(error as Error).message}`);
  process.exit(1);
});

// --debug: the same Echo service with metrics, tracing, tunnel event logs and the debug page, on an http server of
// our own so that /metrics and the debug page share its port.
async function serveWithDebug(port: number, host: string, logger: (entry: LogEntry) => void): Promise<void> {
  const metrics = createPrometheus({ services: [Echo], collectDefaultMetrics: true });
  const tracing = createTracing();
  // Every refused CONNECT is an event, so a peer can cause as many as it likes: events share one rate-limited log
  // with the server's own entries (bursts of 100, then a line saying how many were dropped), and the text a peer
  // chose (a path in a refusal, a goaway message) is escaped and bounded before it reaches the terminal.
  const limitedLogger = createRateLimitedLogger(logger);
  const logEvent = (event: ServerEvent): void => limitedLogger({ level: 'info', message: `event ${describeEvent(event)}` });
  const server = new RpcServer({
    logger: limitedLogger,
    debugPath: DEBUG_PATH,
    interceptors: [tracing.interceptor],
    observers: [metrics.serverObserver],
    listeners: [metrics.serverListener, logEvent],
  }).register(Echo, createEchoService()).register(Fleet, createFleetService());
  const http = createServer({ headersTimeout: 10_000, requestTimeout: 10_000, maxHeaderSize: 8192 });
  server.attach(http);
  metrics.serve(http);
  const stop = (): void => {
    server.close().then(
      () => http.close(() => process.exit(0)),
      () => process.exit(1),
    );
    http.closeIdleConnections();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => resolve());
  });
  const actual = (http.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  const loopback = ['127.0.0.1', '::1', 'localhost'].includes(host);
  console.log(`listening http://${shown}:${actual}/_rpc${loopback ? ' (loopback only; --host 0.0.0.0 listens on every interface)' : ''}`);
  console.log(`metrics http://${shown}:${actual}/metrics`);
  console.log(`debug http://${shown}:${actual}${DEBUG_PATH}`);
}

// One line per event: its fields as key=value, every string escaped and bounded (peer text: escapePeerText).
function describeEvent(event: ServerEvent): string {
  return Object.entries(event)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? quotePeerText(value) : escapePeerText(JSON.stringify(value) ?? String(value))}`)
    .join(' ');
}
