/**
 * `pnpm bench:pool`: what the client pool and a Node cluster change, in one run. One client process (this one)
 * runs a closed loop of C concurrent `Echo.echo` calls (a 16-byte string) against a server process, in cells:
 *
 *   one-tunnel     example server, tunnelsPerEndpoint 1 (the baseline)
 *   pool-4         the same server, tunnelsPerEndpoint 4: the pool's own cost (or gain) against one tunnel
 *   cluster-2      the cluster example with 2 workers, tunnelsPerEndpoint 4 (tunnels land on both workers)
 *
 * Each cell: a fresh server process, `--warmup` s, then `--seconds` s measured; `--runs` rounds (default 3) of every
 * cell, rotated, since the machine is shared and one sample is noise. Prints one JSON object: the median calls/s per
 * cell with every sample, failed calls, and the ratios of the medians to one-tunnel. `--concurrency` (default 256)
 * sets C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { availableParallelism, cpus } from 'node:os';
import { connect, type RpcClient } from '@tunnelrpc/client';

const examples = fileURLToPath(new URL('../../examples/dist/', import.meta.url));

interface Cell {
  name: string;
  server: readonly string[];
  tunnels: number;
}

const CELLS: readonly Cell[] = [
  { name: 'one-tunnel', server: ['example-server.js', '--port', '0'], tunnels: 1 },
  { name: 'pool-4', server: ['example-server.js', '--port', '0'], tunnels: 4 },
  { name: 'cluster-2', server: ['cluster-server.js', '--workers', '2', '--port', '0'], tunnels: 4 },
];

async function startServer(args: readonly string[]): Promise<{ child: ChildProcess; url: string }> {
  const [script, ...rest] = args;
  const child = spawn(process.execPath, [`${examples}${script!}`, ...rest], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    const match = /^listening (\S+)/.exec(line);
    if (match !== null) {
      lines.close();
      child.stdout!.resume();
      return { child, url: match[1]! };
    }
  }
  throw new Error(`${script} exited before listening`);
}

async function closedLoop(client: RpcClient, concurrency: number, ms: number): Promise<{ calls: number; errors: number }> {
  let calls = 0;
  let errors = 0;
  const until = Date.now() + ms;
  const worker = async (): Promise<void> => {
    while (Date.now() < until) {
      try {
        await client.call('Echo.echo', 'sixteen bytes!!!', { idempotent: true });
        calls++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { calls, errors };
}

async function measure(cell: Cell, concurrency: number, warmup: number, seconds: number): Promise<{ cell: string; callsPerSec: number; errors: number }> {
  const { child, url } = await startServer(cell.server);
  try {
    const client = await connect(url, { tunnelsPerEndpoint: cell.tunnels, maxPendingCalls: Math.max(1024, concurrency * 2) });
    while (client.endpoints[0]!.tunnels < cell.tunnels) await new Promise((resolve) => setTimeout(resolve, 10));
    await closedLoop(client, concurrency, warmup * 1000);
    const { calls, errors } = await closedLoop(client, concurrency, seconds * 1000);
    await client.close();
    return { cell: cell.name, callsPerSec: Math.round(calls / seconds), errors };
  } finally {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: 'string', default: '5' }, warmup: { type: 'string', default: '1' }, concurrency: { type: 'string', default: '256' }, runs: { type: 'string', default: '3' } },
  });
  const seconds = Number(values.seconds);
  const warmup = Number(values.warmup);
  const concurrency = Number(values.concurrency);
  const runs = Number(values.runs);
  if (!(seconds > 0) || !(warmup >= 0) || !Number.isInteger(concurrency) || concurrency < 1 || !Number.isInteger(runs) || runs < 1) {
    throw new Error('usage: pnpm bench:pool [--seconds S] [--warmup S] [--concurrency C] [--runs N]');
  }
  const samples = new Map<string, number[]>(CELLS.map((cell) => [cell.name, []]));
  let errors = 0;
  for (let run = 0; run < runs; run++) {
    // Rotated per run, so that no cell always goes first (or last) on a machine whose load drifts.
    for (let i = 0; i < CELLS.length; i++) {
      const cell = CELLS[(i + run) % CELLS.length]!;
      const result = await measure(cell, concurrency, warmup, seconds);
      samples.get(cell.name)!.push(result.callsPerSec);
      errors += result.errors;
    }
  }
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const cells = CELLS.map((cell) => ({ cell: cell.name, medianCallsPerSec: median(samples.get(cell.name)!), samples: samples.get(cell.name)! }));
  const base = cells[0]!.medianCallsPerSec;
  const ratios = Object.fromEntries(cells.slice(1).map((cell) => [`${cell.cell}/one-tunnel`, Number((cell.medianCallsPerSec / base).toFixed(2))]));
  console.log(JSON.stringify({ concurrency, seconds, runs, cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', node: process.version, errors, cells, ratios }, null, 2));
}

main().catch((error: unknown) => {
  console.error(`bench:pool failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
