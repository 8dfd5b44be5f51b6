/**
 * Real servers for the end-to-end tests: the Echo fixture served by an RpcServer attached to an http, https or
 * unix-socket server that also answers an ordinary GET route, listening on 127.0.0.1 port 0 or a temp path.
 */
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { promisify } from 'node:util';
import { RpcServer, type CallContext, type LogEntry, type ServerOptions, type ServiceImpl } from '@tunnelrpc/server';
import { Echo, createEchoService } from '@tunnelrpc/examples';
import type { Cleanup } from './cleanup.js';
import { listenAttached } from '@tunnelrpc/test-kit';

/** logLine renders a log entry as tests match it: `Service.method: message`, or the message alone. */
export function logLine(entry: LogEntry): string {
  return entry.method === undefined ? entry.message : `${entry.method}: ${entry.message}`;
}

/** APP_GREETING is what the ordinary GET route next to the RPC endpoint answers. */
export const APP_GREETING = 'hello from the application route\n';

/** ObservedEcho is the Echo fixture with a window on its sleep handler: which calls started and how they ended. */
export interface ObservedEcho {
  readonly impl: ServiceImpl<typeof Echo>;
  /** Resolves once `count` sleep handlers in total have started. */
  sleepsStarted(count: number): Promise<void>;
  /** Resolves once the signals of `count` sleep handlers in total have been aborted. */
  sleepsAborted(count: number): Promise<void>;
  /** Reasons the handler signals of sleep calls were aborted with, in order. */
  readonly aborted: unknown[];
}

/** Counter counts events and lets a test await the n-th one. */
export class Counter {
  value = 0;
  #waiting: Array<{ count: number; resolve: () => void }> = [];

  increment(): void {
    this.value++;
    const ready = this.#waiting.filter((each) => each.count <= this.value);
    this.#waiting = this.#waiting.filter((each) => each.count > this.value);
    for (const waiter of ready) waiter.resolve();
  }

  reach(count: number): Promise<void> {
    if (this.value >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push({ count, resolve }));
  }
}

/** observeEcho wraps createEchoService() so tests can wait for sleeps to be running on the server. */
export function observeEcho(): ObservedEcho {
  const base = createEchoService();
  const sleep = base.sleep;
  const aborted: unknown[] = [];
  const started = new Counter();
  const abortCount = new Counter();
  const observedSleep = (input: { ms: number }, ctx: CallContext): ReturnType<typeof sleep> => {
    ctx.signal.addEventListener(
      'abort',
      () => {
        aborted.push(ctx.signal.reason);
        abortCount.increment();
      },
      { once: true },
    );
    started.increment();
    return sleep(input, ctx);
  };
  const impl: ServiceImpl<typeof Echo> = { ...base, sleep: observedSleep };
  return {
    impl,
    aborted,
    sleepsStarted: (count) => started.reach(count),
    sleepsAborted: (count) => abortCount.reach(count),
  };
}

/** EchoServer is a running server with everything a test may want to look at or break. */
export interface EchoServer {
  readonly rpc: RpcServer;
  readonly http: HttpServer;
  readonly echo: ObservedEcho;
  /** What the server logged (handler crashes, dropped notifications) instead of printing it. */
  readonly logs: string[];
  /** Every socket the http server handed to a CONNECT listener, to kill a tunnel abruptly. */
  readonly tunnels: Set<Duplex>;
  /** TCP port, or undefined on a unix socket. */
  readonly port: number | undefined;
  /** The URL connect() takes. */
  readonly url: string;
}

/** EchoServerOptions picks the transport and the RpcServer options. */
export interface EchoServerOptions {
  server?: ServerOptions;
  /** Listen on this unix socket path instead of 127.0.0.1:0. */
  socketPath?: string;
  /** Serve https with this key and certificate. */
  tls?: { key: Buffer; cert: Buffer };
}

function appRoute(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'GET' && req.url === '/hello') {
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(APP_GREETING);
    return;
  }
  res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end('not found\n');
}

/**
 * startEchoServer serves the observed Echo fixture on a fresh http (or https) server that also answers
 * `GET /hello`, and registers its teardown with `cleanup`.
 */
export async function startEchoServer(cleanup: Cleanup, options: EchoServerOptions = {}): Promise<EchoServer> {
  const logs: string[] = [];
  const echo = observeEcho();
  const rpc = new RpcServer({ logger: (entry) => logs.push(logLine(entry)), ...options.server }).register(Echo, echo.impl);
  const http: HttpServer = options.tls === undefined ? createHttpServer(appRoute) : createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, appRoute);
  const tunnels = new Set<Duplex>();
  http.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
  });
  rpc.attach(http);
  cleanup.defer(async () => {
    await rpc.close();
    for (const socket of tunnels) socket.destroy();
    http.closeAllConnections();
    if (http.listening) await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  if (options.socketPath !== undefined) {
    await rm(options.socketPath, { force: true });
    http.listen(options.socketPath);
    await once(http, 'listening');
    return { rpc, http, echo, logs, tunnels, port: undefined, url: `unix:${options.socketPath}` };
  }
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const { port } = http.address() as AddressInfo;
  const scheme = options.tls === undefined ? 'http' : 'https';
  return { rpc, http, echo, logs, tunnels, port, url: `${scheme}://127.0.0.1:${port}/_rpc` };
}

let socketCounter = 0;

/** tempSocketPath returns a fresh unix socket path in os.tmpdir(), short enough for sun_path. */
export function tempSocketPath(): string {
  return join(tmpdir(), `tunnelrpc-e2e-${process.pid}-${++socketCounter}.sock`);
}

/**
 * makeSelfSignedCertificate creates a one-day RSA key and certificate for CN=localhost with IP:127.0.0.1 and
 * DNS:localhost as subject alternative names. Node 20 can parse certificates but not issue them, so this runs
 * openssl in a temp directory and removes the directory afterwards.
 */
export async function makeSelfSignedCertificate(): Promise<{ key: Buffer; cert: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'tunnelrpc-e2e-tls-'));
  try {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]).catch((error: unknown) => {
      throw new Error(`openssl could not make a test certificate (is openssl on PATH?): ${(error as Error).message}`);
    });
    return { key: await readFile(keyPath), cert: await readFile(certPath) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** listenRpc attaches `rpc` to a new http server on 127.0.0.1:0, closed by `cleanup`, and returns its /_rpc URL and port. */
export async function listenRpc(cleanup: Cleanup, rpc: RpcServer): Promise<{ url: string; port: number }> {
  const port = await listenAttached(rpc, createHttpServer(), (step) => cleanup.defer(step));
  return { url: `http://127.0.0.1:${port}/_rpc`, port };
}
