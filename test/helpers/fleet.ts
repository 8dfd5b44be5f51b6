/**
 * A fleet of real server processes for the scale-out tests: example servers (Echo and Fleet, one process each),
 * the cluster example, and HAProxy in front of them, each started on 127.0.0.1 and torn down by the test's
 * Cleanup. Daemons the machine may lack (haproxy) are looked up on PATH: a test skips with one line when one is
 * missing, and fails instead when TUNNELRPC_REQUIRE_DEPLOY=1 (`pnpm test:deploy`, CI).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from './boxes.js';
import type { Cleanup } from './cleanup.js';
import { spawnNode, waitForLine } from './processes.js';

/** ServerProcess is a running example server: its process, its pid (the one Fleet.whoami returns) and URL. */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly url: string;
  readonly port: number;
}

// Output of children is drained (and the tail kept for failures): a full pipe would block a process that logs.
function drain(child: ChildProcess): void {
  child.stdout?.resume();
  child.stderr?.resume();
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** startServerProcess starts `node examples/dist/example-server.js` on `port` (0: a free one). */
export async function startServerProcess(cleanup: Cleanup, port = 0): Promise<ServerProcess> {
  const child = cleanup.add(spawnNode(['examples/dist/example-server.js', '--port', String(port)]), stop);
  const [, url] = await waitForLine(child, /^listening (\S+)/);
  drain(child);
  return { child, pid: child.pid!, url: url!, port: Number(new URL(url!).port) };
}

/** GreyProcess is a replica whose answers can be slowed down or made to fail while it runs (scripts/grey-server.ts). */
export interface GreyProcess extends ServerProcess {
  /** set sends `delay MS` or `fail P` and resolves once the process says the change holds. */
  set(command: string): Promise<void>;
}

/** startGreyProcess starts `node test/dist/scripts/grey-server.js` on `port` (0: a free one). */
export async function startGreyProcess(cleanup: Cleanup, port = 0): Promise<GreyProcess> {
  const child = cleanup.add(spawnNode(['test/dist/scripts/grey-server.js', String(port)], true), stop);
  const [, url] = await waitForLine(child, /^listening (\S+)/);
  child.stderr?.resume();
  const set = async (command: string): Promise<void> => {
    const acked = waitForLine(child, new RegExp(`^(ok|bad) ${command.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    child.stdin!.write(`${command}\n`);
    const [, verdict] = await acked;
    if (verdict !== 'ok') throw new Error(`grey server refused ${command}`);
  };
  return { child, pid: child.pid!, url: url!, port: Number(new URL(url!).port), set };
}

/** kill ends a server process at once (SIGKILL: no goaway, sockets reset by the kernel) and waits for its exit. */
export async function kill(server: ServerProcess): Promise<void> {
  await stop(server.child);
}

/** startClusterProcess starts the cluster example with `workers` workers; resolves once all of them listen. */
export async function startClusterProcess(cleanup: Cleanup, workers: number): Promise<{ child: ChildProcess; url: string }> {
  // SIGTERM first: the primary passes it on, so no worker outlives the test.
  const child = cleanup.add(spawnNode(['examples/dist/cluster-server.js', '--workers', String(workers), '--port', '0']), async (each) => {
    if (each.exitCode !== null || each.signalCode !== null) return;
    const exited = once(each, 'exit');
    each.kill('SIGTERM');
    await exited;
  });
  const [, url] = await waitForLine(child, /^listening (\S+)/);
  drain(child);
  return { child, url: url! };
}


/**
 * haproxyConfig is the HAProxy configuration the tests run and the README shows: TCP mode, least connections,
 * and a health check that performs the real handshake (CONNECT /_rpc, expect `HTTP/1.0 200`).
 */
export function haproxyConfig(frontendPort: number, servers: readonly number[], statsSocket: string): string {
  return [
    'global',
    `    stats socket ${statsSocket} mode 600 level admin`,
    '    maxconn 4096',
    'defaults',
    '    mode tcp',
    '    timeout connect 2s',
    '    timeout client 60s',
    '    timeout server 60s',
    // A dial to a server that just died goes to another one instead of failing the client's handshake.
    '    retries 2',
    '    option redispatch',
    'frontend tunnelrpc',
    `    bind 127.0.0.1:${frontendPort}`,
    '    default_backend tunnelrpc_servers',
    'backend tunnelrpc_servers',
    '    balance leastconn',
    '    option tcp-check',
    '    tcp-check connect',
    '    tcp-check send "CONNECT /_rpc HTTP/1.1\\r\\nHost: healthcheck\\r\\n\\r\\n"',
    '    tcp-check expect string "HTTP/1.0 200"',
    '    default-server inter 200ms fall 2 rise 2',
    ...servers.map((port, index) => `    server s${index + 1} 127.0.0.1:${port} check`),
    '',
  ].join('\n');
}

/** Haproxy is a running haproxy: its frontend URL and a window on its servers' health. */
export interface Haproxy {
  readonly url: string;
  readonly config: string;
  /** status returns each server's health as HAProxy sees it: `s1` -> `UP`, `DOWN`, … */
  status(): Promise<Map<string, string>>;
  /** waitForStatus resolves once server `name` has `status`. */
  waitForStatus(name: string, status: string): Promise<void>;
}

/** startHaproxy runs `haproxy -db -f <config>` in front of `servers` and resolves once it accepts connections. */
export async function startHaproxy(cleanup: Cleanup, binary: string, servers: readonly number[]): Promise<Haproxy> {
  const dir = await mkdtemp(join(tmpdir(), 'tunnelrpc-fleet-haproxy-'));
  cleanup.defer(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const statsSocket = join(dir, 'stats.sock');
  const config = haproxyConfig(port, servers, statsSocket);
  const file = join(dir, 'haproxy.cfg');
  await writeFile(file, config);
  const child = cleanup.add(spawn(binary, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] }), stop);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  child.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  const status = async (): Promise<Map<string, string>> => {
    const csv = await askStats(statsSocket, 'show stat\n');
    const states = new Map<string, string>();
    for (const line of csv.split('\n')) {
      const fields = line.split(',');
      // pxname,svname,…,status is the 18th column.
      if (fields[0] === 'tunnelrpc_servers' && /^s\d+$/.test(fields[1] ?? '')) states.set(fields[1]!, fields[17] ?? '');
    }
    return states;
  };
  // Polls the stats socket: the health check runs every 200 ms (inter), the test's own timeout bounds the wait.
  const waitForStatus = async (name: string, wanted: string): Promise<void> => {
    for (;;) {
      const states = await status().catch(() => new Map<string, string>());
      if ((states.get(name) ?? '').startsWith(wanted)) return;
      if (child.exitCode !== null) throw new Error(`haproxy exited: ${output}`);
      await delay(50);
    }
  };
  // Ready once the stats socket answers and every server passed its first checks.
  for (let i = 1; i <= servers.length; i++) await waitForStatus(`s${i}`, 'UP');
  return { url: `http://127.0.0.1:${port}/_rpc`, config, status, waitForStatus };
}

function askStats(path: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ path });
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
    socket.end(command);
  });
}
