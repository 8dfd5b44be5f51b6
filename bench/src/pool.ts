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
 *
 * Then the grey-replica cell: three slow-echo processes, one answering after `--grey-delay` ms (default 200), the
 * others at once, one client over the three with `--grey-concurrency` callers (default 32); latency-aware picking on
 * and off against the same three processes in the same run, alternated `--runs` times. Reported per mode: p50, p99,
 * p99.9, max and calls/s (medians over the runs, with every sample) and the slow replica's share of the calls.
 * `--only grey` or `--only throughput` runs one part.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { availableParallelism, cpus } from 'node:os';
import { connect, type RpcClient } from '@tunnelrpc/client';
import { LatencyHistogram } from './histogram.js';

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
  return startListening(`${examples}${script!}`, rest);
}

// Starts a server script and resolves once it prints "listening URL"; its stdout keeps flowing after that.
async function startListening(script: string, args: readonly string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
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

const slowEcho = fileURLToPath(new URL('./servers/slow-echo.js', import.meta.url));

function startSlowEcho(delayMs: number): Promise<{ child: ChildProcess; url: string }> {
  return startListening(slowEcho, ['--delay', String(delayMs)]);
}

interface GreySample {
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  callsPerSec: number;
  slowShare: number;
  errors: number;
}

// One mode of the grey cell: a fresh client over the three processes, a warmup, then `seconds` of closed-loop calls
// with each call's latency recorded.
async function measureGrey(urls: readonly string[], latencyAware: boolean, concurrency: number, warmup: number, seconds: number): Promise<GreySample> {
  const client = await connect(urls, { latencyAware, maxPendingCalls: Math.max(1024, concurrency * 2) });
  try {
    while (!client.endpoints.every((endpoint) => endpoint.state === 'ready')) await new Promise((resolve) => setTimeout(resolve, 10));
    await closedLoop(client, concurrency, warmup * 1000);
    const sentBefore = client.endpoints.map((endpoint) => endpoint.sent);
    const histogram = new LatencyHistogram();
    let calls = 0;
    let errors = 0;
    const until = Date.now() + seconds * 1000;
    const worker = async (): Promise<void> => {
      while (Date.now() < until) {
        const started = process.hrtime.bigint();
        try {
          await client.call('Echo.echo', 'sixteen bytes!!!', { idempotent: true });
          histogram.record(Number(process.hrtime.bigint() - started));
          calls++;
        } catch {
          errors++;
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const sent = client.endpoints.map((endpoint, index) => endpoint.sent - sentBefore[index]!);
    const total = sent.reduce((sum, each) => sum + each, 0);
    const ms = (ns: number): number => Math.round(ns / 1000) / 1000;
    return { p50Ms: ms(histogram.percentile(50)), p99Ms: ms(histogram.percentile(99)), p999Ms: ms(histogram.percentile(99.9)), maxMs: ms(histogram.maxNs), callsPerSec: Math.round(calls / seconds), slowShare: Number((sent[2]! / total).toFixed(4)), errors };
  } finally {
    await client.close();
  }
}

async function greyCell(delayMs: number, concurrency: number, warmup: number, seconds: number, runs: number): Promise<unknown> {
  // The slow one is last: its share is the third endpoint's.
  const servers = await Promise.all([startSlowEcho(0), startSlowEcho(0), startSlowEcho(delayMs)]);
  const urls = servers.map((server) => server.url);
  const samples: Record<'latencyAware' | 'leastRequest', GreySample[]> = { latencyAware: [], leastRequest: [] };
  try {
    for (let run = 0; run < runs; run++) {
      // Alternated, so that neither mode always runs first on a machine whose load drifts.
      for (const aware of run % 2 === 0 ? [true, false] : [false, true]) {
        samples[aware ? 'latencyAware' : 'leastRequest'].push(await measureGrey(urls, aware, concurrency, warmup, seconds));
      }
    }
  } finally {
    await Promise.all(servers.map(async ({ child }) => {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }));
  }
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const summary = (list: GreySample[]): unknown => ({
    p50Ms: median(list.map((each) => each.p50Ms)),
    p99Ms: median(list.map((each) => each.p99Ms)),
    p999Ms: median(list.map((each) => each.p999Ms)),
    maxMs: median(list.map((each) => each.maxMs)),
    callsPerSec: median(list.map((each) => each.callsPerSec)),
    slowShare: median(list.map((each) => each.slowShare)),
    errors: list.reduce((sum, each) => sum + each.errors, 0),
    samples: list,
  });
  return { replicas: 3, slowReplicaDelayMs: delayMs, concurrency, seconds, runs, latencyAware: summary(samples.latencyAware), leastRequest: summary(samples.leastRequest) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '256' },
      runs: { type: 'string', default: '3' },
      'grey-delay': { type: 'string', default: '200' },
      'grey-concurrency': { type: 'string', default: '32' },
      only: { type: 'string' },
    },
  });
  const seconds = Number(values.seconds);
  const warmup = Number(values.warmup);
  const concurrency = Number(values.concurrency);
  const runs = Number(values.runs);
  const greyDelay = Number(values['grey-delay']);
  const greyConcurrency = Number(values['grey-concurrency']);
  const only = values.only;
  if (!(seconds > 0) || !(warmup >= 0) || !Number.isInteger(concurrency) || concurrency < 1 || !Number.isInteger(runs) || runs < 1 || !Number.isInteger(greyDelay) || greyDelay < 0 || !Number.isInteger(greyConcurrency) || greyConcurrency < 1 || (only !== undefined && only !== 'grey' && only !== 'throughput')) {
    throw new Error('usage: pnpm bench:pool [--seconds S] [--warmup S] [--concurrency C] [--runs N] [--grey-delay MS] [--grey-concurrency C] [--only grey|throughput]');
  }
  if (only === 'grey') {
    console.log(JSON.stringify({ cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', node: process.version, grey: await greyCell(greyDelay, greyConcurrency, warmup, seconds, runs) }, null, 2));
    return;
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
  const grey = only === 'throughput' ? undefined : await greyCell(greyDelay, greyConcurrency, warmup, seconds, runs);
  console.log(JSON.stringify({ concurrency, seconds, runs, cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', node: process.version, errors, cells, ratios, grey }, null, 2));
}

main().catch((error: unknown) => {
  console.error(`bench:pool failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
