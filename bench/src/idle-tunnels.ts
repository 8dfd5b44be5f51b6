/**
 * The idle-tunnel count: what N open, silent tunnels cost a tunnelrpc server in memory. The server starts with
 * --expose-gc; after one warm-up call its RSS and heap are read after a full GC (the idle baseline), then client
 * processes open N tunnels, and once the server counts N the same readings are taken again.
 *
 * Each process needs one file descriptor per socket. When the soft `ulimit -n` is too low the processes are
 * started through `sh -c 'ulimit -n …'` (up to the hard limit; past it the count is skipped with a note), and the
 * tunnels are spread over client processes of at most 5000 each.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { connect } from '@tunnelrpc/client';
import { ManagedChild, delay, type ChildMessage } from './child-process.js';
import { createPayload } from './payload.js';

/** IdleResult is the outcome of the idle-tunnel count (or why it was skipped). */
export type IdleResult =
  | {
      tunnels: number;
      clientProcesses: number;
      openSeconds: number;
      baselineRssBytes: number;
      rssBytes: number;
      rssPerTunnelBytes: number;
      baselineHeapBytes: number;
      heapBytes: number;
      heapPerTunnelBytes: number;
      fdLimit: string;
    }
  | { tunnels: number; skipped: string };

// Descriptors a node process uses besides the tunnels (stdio, epoll, the listener, libuv's pipes).
const FD_RESERVE = 64;
// Tunnels one client process opens at most, so that the handshakes of a large count run on more than one core.
const MAX_TUNNELS_PER_CLIENT = 5000;
const SETTLE_TIMEOUT_MS = 30_000;

/** measureIdleTunnels opens `count` idle tunnels and reports the server's RSS and heap over its idle baseline. */
export async function measureIdleTunnels(count: number, context: { benchDir: string; distDir: string; verbose: boolean }): Promise<IdleResult> {
  const limits = readFdLimits();
  if (limits.hard < count + FD_RESERVE) {
    return { tunnels: count, skipped: `ulimit -Hn is ${limits.hard}; the server needs ${count + FD_RESERVE} descriptors for ${count} tunnels` };
  }
  const perClient = Math.min(count, limits.hard - FD_RESERVE, MAX_TUNNELS_PER_CLIENT);
  const clientProcesses = Math.ceil(count / perClient);
  const needed = count + FD_RESERVE; // the server's need; every client needs less
  const wrap = (args: string[]): { command: string; args: string[] } =>
    limits.soft >= needed ? { command: process.execPath, args } : { command: 'sh', args: ['-c', 'ulimit -n "$0" && exec "$@"', String(needed), process.execPath, ...args] };

  const serverCmd = wrap(['--expose-gc', join(context.distDir, 'servers', 'tunnelrpc.js'), '--max-connections', String(count)]);
  const server = new ManagedChild('idle tunnelrpc server', serverCmd.command, serverCmd.args, { cwd: context.benchDir, verbose: context.verbose });
  const clients: ManagedChild[] = [];
  try {
    const announced = await server.next(15_000);
    if (typeof announced.port !== 'number') throw new Error(`idle server failed to start: ${JSON.stringify(announced)}`);
    const port = announced.port;
    // One tunnel and one call first, so the baseline already holds the code and buffers every tunnel shares.
    const warm = await connect(`http://127.0.0.1:${port}/_rpc`);
    await warm.call('Echo.echo', createPayload('small'));
    await warm.close();
    await waitForConnections(server, 0);
    const baseline = await readServerMemory(server);

    const started = performance.now();
    for (let i = 0; i < clientProcesses; i++) {
      const share = Math.min(perClient, count - i * perClient);
      const cmd = wrap([join(context.distDir, 'clients', 'idle-tunnels.js'), '--port', String(port), '--count', String(share)]);
      clients.push(new ManagedChild(`idle clients ${i + 1}/${clientProcesses}`, cmd.command, cmd.args, { cwd: context.benchDir, verbose: context.verbose }));
    }
    const opened = await Promise.all(clients.map((client) => client.next(120_000)));
    for (const message of opened) {
      if (typeof message.opened !== 'number') throw new Error(`idle client failed: ${JSON.stringify(message)}`);
    }
    await waitForConnections(server, count);
    const openSeconds = (performance.now() - started) / 1000;
    const loaded = await readServerMemory(server);
    return {
      tunnels: count,
      clientProcesses,
      openSeconds: Math.round(openSeconds * 100) / 100,
      baselineRssBytes: baseline.rss,
      rssBytes: loaded.rss,
      rssPerTunnelBytes: Math.round((loaded.rss - baseline.rss) / count),
      baselineHeapBytes: baseline.heap,
      heapBytes: loaded.heap,
      heapPerTunnelBytes: Math.round((loaded.heap - baseline.heap) / count),
      fdLimit: `soft ${limits.soft}, hard ${limits.hard}${limits.soft >= needed ? '' : ` (raised to ${needed} for these processes)`}`,
    };
  } finally {
    await Promise.all(clients.map((client) => client.stop()));
    await server.stop();
  }
}

function readFdLimits(): { soft: number; hard: number } {
  try {
    const [soft, hard] = execFileSync('sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8' }).trim().split('\n');
    const parse = (value: string | undefined): number => (value === 'unlimited' ? 1_048_576 : Number(value));
    return { soft: parse(soft), hard: parse(hard) };
  } catch {
    return { soft: 1024, hard: 1024 };
  }
}

async function waitForConnections(server: ManagedChild, count: number): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  let stats: ChildMessage = {};
  while (Date.now() < deadline) {
    stats = await server.request('stats');
    if (stats.connections === count) return;
    await delay(100);
  }
  throw new Error(`the idle server holds ${String(stats.connections)} tunnels, expected ${count} (idleTimeout closes tunnels silent for 60 s)`);
}

async function readServerMemory(server: ManagedChild): Promise<{ rss: number; heap: number }> {
  await server.request('gc');
  const stats = await server.request('stats');
  if (typeof stats.rssBytes !== 'number' || typeof stats.heapUsedBytes !== 'number') throw new Error(`bad stats from the idle server: ${JSON.stringify(stats)}`);
  return { rss: stats.rssBytes, heap: stats.heapUsedBytes };
}
