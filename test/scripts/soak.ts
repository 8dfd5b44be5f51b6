/**
 * The soak (not in CI): many mixed calls against a server in a child process, with random cancels, short
 * deadlines and tunnels killed from the server side, then an account of every call and of the server's memory.
 *
 *   pnpm soak                                       1,000,000 calls
 *   pnpm soak --calls 200000 --clients 8 --concurrency 32 --kill-every 200 --seed 7
 *   pnpm soak --calls 200000 --inject-leak 64       the server keeps 64 bytes per call: the verdict must say leak
 *   pnpm soak --idle-tunnels 10000           server RSS for N idle tunnels instead
 *
 * Every call must end exactly once: answered with the right value, or failed with an RpcError whose code is in
 * ERROR_CODES. The report counts lost calls (never settled: must be 0), doubled ones (settled twice: must be 0),
 * wrong answers and unmapped errors (must be 0), and judges the server's memory by its trend: --samples readings
 * through the run, each after a full GC in the server (--expose-gc), and the least-squares slope of heap used +
 * external after the warm-up share, in MiB per million calls, must stay under the limit of memory-verdict.ts.
 * RSS, heap, external and arrayBuffers slopes are all reported; RSS at the start and end too, for information.
 *
 * Roles: this one file is the orchestrator, the server child (`--role server`) and the idle-tunnel client children
 * (`--role idle-clients`). Children talk to the orchestrator over the fork IPC channel and are ended by it.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect, createClient, type RpcClient, type TypedClient } from '@tunnelrpc/client';
import { Echo, createEchoService } from '@tunnelrpc/examples';
import { ERROR_CODES, RpcError, type ErrorCode } from '@tunnelrpc/protocol';
import { RpcServer } from '@tunnelrpc/server';
import { Rng } from '../helpers/fuzz.js';
import { judgeMemory, type MemorySample } from './memory-verdict.js';

const SELF = fileURLToPath(import.meta.url);
const MiB = 1024 * 1024;
const CODES = new Set<string>(ERROR_CODES);

// ---------------------------------------------------------------------------------------------------------------
// IPC between the orchestrator and its children.

type Command = { cmd: 'stats' } | { cmd: 'gc' } | { cmd: 'kill'; count: number } | { cmd: 'reset-peak' } | { cmd: 'exit' };
interface Stats {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  peakRss: number;
  connections: number;
  /** Buffers the injected leak holds (0 without --inject-leak). */
  leaked: number;
}

/** Child wraps a forked child: request/response over IPC, one at a time, and a bounded stop. */
class Child {
  readonly process: ChildProcess;
  readonly #label: string;
  #queue: Promise<unknown> = Promise.resolve();
  #messages: unknown[] = [];
  #waiting: Array<(message: unknown) => void> = [];

  constructor(label: string, args: string[], execArgv: string[] = []) {
    this.#label = label;
    this.process = fork(SELF, args, { execArgv: ['--enable-source-maps', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.process.on('message', (message) => {
      const waiter = this.#waiting.shift();
      if (waiter !== undefined) waiter(message);
      else this.#messages.push(message);
    });
    this.process.on('exit', (code, signal) => {
      for (const waiter of this.#waiting.splice(0)) waiter({ error: `${this.#label} exited (code ${code}, signal ${signal})` });
    });
  }

  /** next resolves with the next message the child sends. */
  next<T>(): Promise<T> {
    const queued = this.#messages.shift();
    if (queued !== undefined) return Promise.resolve(queued as T);
    if (this.process.exitCode !== null) return Promise.reject(new Error(`${this.#label} has exited`));
    return new Promise((resolve, reject) =>
      this.#waiting.push((message) => {
        const error = (message as { error?: string }).error;
        if (error !== undefined) reject(new Error(error));
        else resolve(message as T);
      }),
    );
  }

  /** request sends a command and resolves with the child's answer; requests are serialised. */
  request<T>(command: Command): Promise<T> {
    const answer = this.#queue.then(() => {
      this.process.send(command);
      return this.next<T>();
    });
    this.#queue = answer.catch(() => undefined);
    return answer;
  }

  /** stop asks the child to exit, and kills it (by its pid) if it has not within 5 s. */
  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = once(this.process, 'exit');
    if (this.process.connected) this.process.send({ cmd: 'exit' } satisfies Command);
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

function reply(message: object): void {
  process.send?.(message);
}

// ---------------------------------------------------------------------------------------------------------------
// --role server: the Echo fixture on an attached http server whose tunnel sockets can be killed on command.

async function serverRole(maxConnections: number, idleTimeout: number, leakBytes: number): Promise<void> {
  const rpc = new RpcServer({ maxConnections, maxConnectionsPerIp: maxConnections, idleTimeout, logger: () => undefined }).register(Echo, leaky(createEchoService(), leakBytes));
  const http = createServer();
  const tunnels: Duplex[] = [];
  http.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    tunnels.push(socket);
    socket.once('close', () => {
      const at = tunnels.indexOf(socket);
      if (at !== -1) tunnels.splice(at, 1);
    });
  });
  rpc.attach(http);
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  let peakRss = process.memoryUsage().rss;
  setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100).unref();
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on('message', (command: Command) => {
    switch (command.cmd) {
      case 'stats': {
        const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
        peakRss = Math.max(peakRss, rss);
        reply({ rss, heapUsed, external, arrayBuffers, peakRss, connections: rpc.connectionCount, leaked: LEAKED.length } satisfies Stats);
        break;
      }
      case 'gc':
        gc?.();
        gc?.();
        reply({ gc: gc !== undefined });
        break;
      case 'reset-peak':
        peakRss = process.memoryUsage().rss;
        reply({ peakRss });
        break;
      case 'kill': {
        let killed = 0;
        for (let i = 0; i < command.count && tunnels.length > 0; i++) {
          const socket = tunnels.splice(Math.floor(Math.random() * tunnels.length), 1)[0]!;
          socket.destroy();
          killed++;
        }
        reply({ killed });
        break;
      }
      case 'exit':
        for (const socket of tunnels) socket.destroy();
        rpc.close().finally(() => process.exit(0));
        setTimeout(() => process.exit(0), 2000).unref();
        break;
    }
  });
  process.on('disconnect', () => process.exit(0));
  reply({ port: (http.address() as AddressInfo).port });
}

// What --inject-leak keeps: one Buffer per call, never released, so that the verdict can be shown to catch it.
const LEAKED: Buffer[] = [];

/** leaky wraps every handler so that each call leaves a Buffer of `bytes` behind (none when bytes is 0). */
function leaky(service: ReturnType<typeof createEchoService>, bytes: number): ReturnType<typeof createEchoService> {
  if (bytes === 0) return service;
  const wrapped: Record<string, unknown> = {};
  for (const [name, handler] of Object.entries(service) as [string, (...args: unknown[]) => unknown][]) {
    wrapped[name] = (...args: unknown[]) => {
      LEAKED.push(Buffer.alloc(bytes));
      return handler(...args);
    };
  }
  return wrapped as ReturnType<typeof createEchoService>;
}

// ---------------------------------------------------------------------------------------------------------------
// --role idle-clients: open N tunnels with the public connect(), then hold them, silent, until told to exit.

async function idleClientsRole(port: number, count: number): Promise<void> {
  const url = `http://127.0.0.1:${port}/_rpc`;
  const clients: RpcClient[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      // No keepalive pings and no redial: the tunnel stays exactly as idle as the count means.
      clients.push(await connect(url, { reconnect: false, keepaliveInterval: 0 }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(200, count) }, worker));
  reply({ opened: clients.length });
  process.on('message', (command: Command) => {
    if (command.cmd === 'exit') process.exit(0);
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------------------------------
// The soak itself.

interface SoakOptions {
  calls: number;
  clients: number;
  concurrency: number;
  killEvery: number;
  seed: number;
  warmup: number;
  samples: number;
  injectLeak: number;
}

/** Outcome of one call: 'ok', 'wrong' (answered with another value), a code, or 'unmapped' (not an RpcError with a listed code). */
type Outcome = 'ok' | 'wrong' | ErrorCode | 'unmapped';

/** Ledger records every call's one outcome and notices a second one. */
class Ledger {
  readonly settled: Uint8Array;
  readonly outcomes: Record<string, number> = {};
  settledCount = 0;
  doubled = 0;
  lastProgress = Date.now();

  constructor(size: number) {
    this.settled = new Uint8Array(size);
  }

  settle(index: number, outcome: Outcome): void {
    if (this.settled[index] === 1) {
      this.doubled++;
      return;
    }
    this.settled[index] = 1;
    this.settledCount++;
    this.lastProgress = Date.now();
    this.outcomes[outcome] = (this.outcomes[outcome] ?? 0) + 1;
  }
}

function outcomeOfError(error: unknown): Outcome {
  return error instanceof RpcError && CODES.has(error.code) ? error.code : 'unmapped';
}

/** runCall makes call `index` of a random kind and records its outcome in `ledger` (every path settles once). */
async function runCall(echo: TypedClient<typeof Echo>, rng: Rng, index: number, ledger: Ledger): Promise<void> {
  const kind = rng.float();
  try {
    if (kind < 0.35) {
      const value = { i: index, s: 'x'.repeat(rng.int(64)) };
      const result = await echo.echo(value);
      const echoed = result as { i?: unknown; s?: unknown };
      ledger.settle(index, echoed?.i === value.i && echoed?.s === value.s ? 'ok' : 'wrong');
    } else if (kind < 0.6) {
      const b = rng.int(1000);
      ledger.settle(index, (await echo.add({ a: index, b })) === index + b ? 'ok' : 'wrong');
    } else if (kind < 0.75) {
      const ms = rng.int(10);
      ledger.settle(index, (await echo.sleep({ ms })).slept === ms ? 'ok' : 'wrong');
    } else if (kind < 0.85) {
      // A cancel at a random moment: before the call is sent, while it runs, or after it has been answered.
      const ms = 5 + rng.int(25);
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), rng.int(12));
      try {
        ledger.settle(index, (await echo.sleep({ ms }, { signal: controller.signal })).slept === ms ? 'ok' : 'wrong');
      } finally {
        clearTimeout(timer);
      }
    } else if (kind < 0.95) {
      const ms = 5 + rng.int(25);
      ledger.settle(index, (await echo.sleep({ ms }, { timeout: 1 + rng.int(15) })).slept === ms ? 'ok' : 'wrong');
    } else {
      // Answered with the error asked for counts as answered right; any other error is counted by its code.
      const code = rng.pick(ERROR_CODES);
      const outcome = await echo.fail({ code, message: `failing with ${code}` }).then(
        (): Outcome => 'wrong',
        (error: unknown): Outcome => (error instanceof RpcError && error.code === code && error.message === `failing with ${code}` ? 'ok' : outcomeOfError(error)),
      );
      ledger.settle(index, outcome);
    }
  } catch (error) {
    ledger.settle(index, outcomeOfError(error));
  }
}

async function soak(options: SoakOptions): Promise<boolean> {
  const server = new Child(
    'soak server',
    ['--role', 'server', '--max-connections', '10000', '--idle-timeout', '60000', '--inject-leak', String(options.injectLeak)],
    ['--expose-gc'],
  );
  const clients: RpcClient[] = [];
  try {
    const { port } = await server.next<{ port: number }>();
    const url = `http://127.0.0.1:${port}/_rpc`;
    for (let i = 0; i < options.clients; i++) {
      clients.push(await connect(url, { minReconnectDelay: 5, maxReconnectDelay: 200, defaultTimeout: 10_000 }));
    }
    const echos = clients.map((client) => createClient(Echo, client));
    const rng = new Rng(options.seed);

    // Warm-up: the same mix, not counted, so the baseline holds the code and buffers a busy server keeps. It is
    // long enough (100,000 calls) for V8 to have grown its young generation to what this load settles on; with a
    // short one the end reading counts that growth, which is the engine's, not a leak.
    const warmLedger = new Ledger(options.warmup);
    await runWorkers(echos, rng, options.warmup, options.concurrency, warmLedger);
    await delay(1000);
    await server.request({ cmd: 'gc' });
    const start = await server.request<Stats>({ cmd: 'stats' });
    await server.request({ cmd: 'reset-peak' });

    const ledger = new Ledger(options.calls);
    let kills = 0;
    const killer = setInterval(() => {
      server.request<{ killed: number }>({ cmd: 'kill', count: 1 }).then((answer) => (kills += answer.killed), () => undefined);
    }, options.killEvery);
    const started = performance.now();
    const progress = setInterval(() => {
      process.stderr.write(`  ${ledger.settledCount} / ${options.calls} settled, ${kills} tunnels killed\n`);
    }, 5000);
    const finished = runWorkers(echos, rng, options.calls, options.concurrency, ledger);
    // Memory samples through the run, each after a full GC, every calls/samples settled calls.
    const samples: MemorySample[] = [];
    const every = Math.max(1, Math.floor(options.calls / options.samples));
    let sampling = true;
    const sampler = (async () => {
      let nextAt = every;
      while (sampling) {
        await delay(20);
        const calls = ledger.settledCount;
        if (calls < nextAt || calls >= options.calls) continue;
        nextAt = calls + every;
        await server.request({ cmd: 'gc' });
        const stats = await server.request<Stats>({ cmd: 'stats' });
        samples.push({ calls, rss: stats.rss, heapUsed: stats.heapUsed, external: stats.external, arrayBuffers: stats.arrayBuffers });
      }
    })();
    // Lost calls never settle; stop waiting once nothing has settled for 30 s.
    const stalled = (async () => {
      while (ledger.settledCount < options.calls) {
        await delay(1000);
        if (Date.now() - ledger.lastProgress > 30_000) return;
      }
    })();
    await Promise.race([finished, stalled]);
    const seconds = (performance.now() - started) / 1000;
    sampling = false;
    await sampler;
    clearInterval(killer);
    clearInterval(progress);

    // Idle, then the end reading, after the same full GC as the start one.
    for (const client of clients) await client.close();
    clients.length = 0;
    await delay(2000);
    await server.request({ cmd: 'gc' });
    const end = await server.request<Stats>({ cmd: 'stats' });

    const lost = options.calls - ledger.settledCount;
    const rssChange = (end.rss - start.rss) / start.rss;
    const memory = judgeMemory(samples);
    const mib = (bytes: number): number => Math.round((bytes / MiB) * 10) / 10;
    const summary = {
      calls: options.calls,
      settled: ledger.settledCount,
      outcomes: ledger.outcomes,
      lost,
      doubled: ledger.doubled,
      wrong: ledger.outcomes['wrong'] ?? 0,
      unmapped: ledger.outcomes['unmapped'] ?? 0,
      tunnelsKilled: kills,
      memory: { ...memory, samples: samples.length, leakedBuffers: end.leaked },
      rssMiB: { start: mib(start.rss), end: mib(end.rss), peak: mib(end.peakRss), changePercent: Math.round(rssChange * 1000) / 10 },
      heapUsedMiB: { start: mib(start.heapUsed), end: mib(end.heapUsed) },
      externalMiB: { start: mib(start.external), end: mib(end.external) },
      serverConnectionsAtEnd: end.connections,
      durationSeconds: Math.round(seconds * 10) / 10,
      callsPerSecond: Math.round(options.calls / seconds),
      options,
    };
    const ok = lost === 0 && ledger.doubled === 0 && summary.wrong === 0 && summary.unmapped === 0 && !memory.leak;
    console.log(JSON.stringify({ ok, ...summary }, null, 2));
    return ok;
  } finally {
    for (const client of clients) client.close().catch(() => undefined);
    await server.stop();
  }
}

/** runWorkers runs `total` calls spread over the clients, `concurrency` at a time per client. */
async function runWorkers(echos: TypedClient<typeof Echo>[], rng: Rng, total: number, concurrency: number, ledger: Ledger): Promise<void> {
  let next = 0;
  const worker = async (echo: TypedClient<typeof Echo>): Promise<void> => {
    while (next < total) await runCall(echo, rng, next++, ledger);
  };
  await Promise.all(echos.flatMap((echo) => Array.from({ length: concurrency }, () => worker(echo))));
}

// ---------------------------------------------------------------------------------------------------------------
// --idle-tunnels N: the server's RSS for N open, silent tunnels.

const MAX_TUNNELS_PER_CLIENT = 5000;

async function idleTunnels(count: number): Promise<boolean> {
  const soft = Number(execFileSync('sh', ['-c', 'ulimit -Sn'], { encoding: 'utf8' }).trim());
  if (Number.isFinite(soft) && soft < Math.min(count, MAX_TUNNELS_PER_CLIENT) + 64) {
    throw new Error(`ulimit -n is ${soft}; raise it to at least ${count + 64} (ulimit -n ${count + 64}) for ${count} tunnels`);
  }
  const server = new Child('idle server', ['--role', 'server', '--max-connections', String(count + 100), '--idle-timeout', '0', '--inject-leak', '0'], ['--expose-gc']);
  const children: Child[] = [];
  try {
    const { port } = await server.next<{ port: number }>();
    const warm = await connect(`http://127.0.0.1:${port}/_rpc`, { reconnect: false });
    await createClient(Echo, warm).echo({ warm: 'up' });
    await warm.close();
    await waitForConnections(server, 0);
    await server.request({ cmd: 'gc' });
    const before = await server.request<Stats>({ cmd: 'stats' });

    const started = performance.now();
    for (let opened = 0; opened < count; opened += MAX_TUNNELS_PER_CLIENT) {
      const share = Math.min(MAX_TUNNELS_PER_CLIENT, count - opened);
      children.push(new Child(`idle clients ${children.length + 1}`, ['--role', 'idle-clients', '--port', String(port), '--count', String(share)]));
    }
    await Promise.all(children.map((child) => child.next<{ opened: number }>()));
    await waitForConnections(server, count);
    const openSeconds = (performance.now() - started) / 1000;
    await delay(1000);
    await server.request({ cmd: 'gc' });
    const after = await server.request<Stats>({ cmd: 'stats' });
    const mib = (bytes: number): number => Math.round((bytes / MiB) * 10) / 10;
    const rssGrowth = after.rss - before.rss;
    const summary = {
      tunnels: count,
      clientProcesses: children.length,
      openSeconds: Math.round(openSeconds * 10) / 10,
      rssMiB: { before: mib(before.rss), after: mib(after.rss), growth: mib(rssGrowth) },
      rssPerTunnelKiB: Math.round((rssGrowth / count / 1024) * 100) / 100,
      heapUsedMiB: { before: mib(before.heapUsed), after: mib(after.heapUsed), growth: mib(after.heapUsed - before.heapUsed) },
      heapPerTunnelKiB: Math.round(((after.heapUsed - before.heapUsed) / count / 1024) * 100) / 100,
      budget: 'SECURITY.md T21: 10,000 idle tunnels <= 64 MiB RSS',
    };
    const ok = count !== 10_000 || rssGrowth <= 64 * MiB;
    console.log(JSON.stringify({ ok, ...summary }, null, 2));
    return ok;
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    await server.stop();
  }
}

async function waitForConnections(server: Child, count: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const stats = await server.request<Stats>({ cmd: 'stats' });
    if (stats.connections === count) return;
    if (Date.now() > deadline) throw new Error(`the server holds ${stats.connections} tunnels, expected ${count}`);
    await delay(100);
  }
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      role: { type: 'string', default: 'soak' },
      calls: { type: 'string', default: '1000000' },
      clients: { type: 'string', default: '8' },
      concurrency: { type: 'string', default: '32' },
      'kill-every': { type: 'string', default: '200' },
      warmup: { type: 'string', default: '100000' },
      samples: { type: 'string', default: '40' },
      'inject-leak': { type: 'string', default: '0' },
      seed: { type: 'string' },
      'idle-tunnels': { type: 'string' },
      port: { type: 'string' },
      count: { type: 'string' },
      'max-connections': { type: 'string', default: '10000' },
      'idle-timeout': { type: 'string', default: '60000' },
    },
  });
  const int = (name: string, text: string | undefined, min: number): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be an integer >= ${min}; got ${text}`);
    return value;
  };
  switch (values.role) {
    case 'server':
      await serverRole(int('max-connections', values['max-connections'], 1), int('idle-timeout', values['idle-timeout'], 0), int('inject-leak', values['inject-leak'], 0));
      return;
    case 'idle-clients':
      await idleClientsRole(int('port', values.port, 1), int('count', values.count, 1));
      return;
    case 'soak':
      break;
    default:
      throw new Error(`unknown --role ${values.role}`);
  }
  if (values['idle-tunnels'] !== undefined) {
    process.exitCode = (await idleTunnels(int('idle-tunnels', values['idle-tunnels'], 1))) ? 0 : 1;
    return;
  }
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : int('seed', values.seed, 0);
  console.log(`soak seed ${seed}`);
  const ok = await soak({
    calls: int('calls', values.calls, 1),
    clients: int('clients', values.clients, 1),
    concurrency: int('concurrency', values.concurrency, 1),
    killEvery: int('kill-every', values['kill-every'], 1),
    warmup: int('warmup', values.warmup, 0),
    samples: int('samples', values.samples, 10),
    injectLeak: int('inject-leak', values['inject-leak'], 0),
    seed,
  });
  process.exitCode = ok ? 0 : 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 2;
});
