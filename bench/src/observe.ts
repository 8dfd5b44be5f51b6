/**
 * `pnpm bench:observe`: what interceptors and metrics cost, on the small-payload C=256 cell of `pnpm bench`.
 * Four variants of the same tunnelrpc echo server and client (observe/modes.ts), each server in its own process,
 * measured in interleaved runs. Prints one JSON line per run, then one per variant with the medians and the
 * ratio to `plain` (calls/s, p50, p99, server CPU s per 1M calls). Progress goes to stderr.
 *
 * Options: --seconds S (default 5) --warmup S (1) --runs N (3) --concurrency C (256) --modes a,b (all) --verbose 1
 *          --cpu-prof-dir DIR (every server and client writes a --cpu-prof profile there; bench/dist/profile-summary.js)
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManagedChild, stopAllChildren, type ChildMessage } from './child-process.js';
import { ChildArgs } from './child-args.js';
import { MODE_INFO, OBSERVE_MODES, isObserveMode, type ObserveMode } from './observe/modes.js';
import { PAYLOADS } from './payload.js';
import { readProcessSample } from './proc-stats.js';

const distDir = dirname(fileURLToPath(import.meta.url));
const benchDir = resolve(distDir, '..');
const START_TIMEOUT_MS = 15_000;

interface Run {
  mode: ObserveMode;
  run: number;
  concurrency: number;
  bytes: number;
  calls: number;
  callsPerSec: number;
  p50us: number;
  p99us: number;
  errors: number;
  serverCpuSPer1M: number | undefined;
}

async function measure(mode: ObserveMode, run: number, settings: { seconds: number; warmup: number; concurrency: number; bytes: number; verbose: boolean; nodeFlags: string[] }): Promise<Run> {
  const label = `observe ${mode} run ${run}`;
  const server = new ManagedChild(`${label} server`, process.execPath, [...settings.nodeFlags, resolve(distDir, 'observe/server.js'), '--mode', mode, '--concurrency', String(settings.concurrency)], { cwd: benchDir, verbose: settings.verbose });
  let client: ManagedChild | undefined;
  try {
    const announced = await server.next(START_TIMEOUT_MS);
    if (typeof announced.port !== 'number') throw new Error(`${label}: the server did not start: ${JSON.stringify(announced)}`);
    const args = ['--mode', mode, '--port', String(announced.port), '--concurrency', String(settings.concurrency), '--payload', 'small', '--seconds', String(settings.seconds), '--warmup', String(settings.warmup), '--wait-go', '1'];
    client = new ManagedChild(`${label} client`, process.execPath, [...settings.nodeFlags, resolve(distDir, 'observe/client.js'), ...args], { cwd: benchDir, verbose: settings.verbose });
    const ready = await client.next(START_TIMEOUT_MS + settings.warmup * 1000);
    if (ready.ready !== true) throw new Error(`${label}: the client failed in the warm-up: ${JSON.stringify(ready)}`);
    const before = readProcessSample(server.pid);
    client.send('go');
    const result: ChildMessage = await client.next(settings.seconds * 1000 + 30_000);
    const after = readProcessSample(server.pid);
    const calls = Number(result.calls);
    await client.waitForExit(10_000);
    return {
      mode,
      run,
      concurrency: settings.concurrency,
      bytes: settings.bytes,
      calls,
      callsPerSec: Number(result.callsPerSec),
      p50us: Number(result.p50us),
      p99us: Number(result.p99us),
      errors: Number(result.errors),
      serverCpuSPer1M: before === undefined || after === undefined || calls === 0 ? undefined : ((after.cpuSeconds - before.cpuSeconds) / calls) * 1e6,
    };
  } finally {
    await client?.stop();
    await server.stop();
  }
}

function median(values: number[]): number {
  const sorted = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function profileFlags(dir: string): string[] {
  return dir === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', resolve(dir)];
}

const round = (value: number, digits = 3): number => Math.round(value * 10 ** digits) / 10 ** digits;

async function main(): Promise<void> {
  const args = new ChildArgs();
  const modes = args.string('modes', OBSERVE_MODES.join(',')).split(',');
  for (const mode of modes) if (!isObserveMode(mode)) throw new Error(`--modes: unknown ${mode}; choose from ${OBSERVE_MODES.join(',')}`);
  const settings = {
    seconds: args.number('seconds', 5),
    warmup: args.number('warmup', 1),
    concurrency: args.number('concurrency', 256),
    bytes: PAYLOADS.small.size,
    verbose: args.number('verbose', 0) === 1,
    nodeFlags: profileFlags(args.string('cpu-prof-dir', '')),
  };
  const runs = args.number('runs', 3);
  const results: Run[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const mode of modes as ObserveMode[]) {
      process.stderr.write(`bench:observe ${mode} (${MODE_INFO[mode]}), run ${run} of ${runs} ...\n`);
      const result = await measure(mode, run, settings);
      results.push(result);
      process.stdout.write(`${JSON.stringify({ kind: 'run', ...result })}\n`);
    }
  }
  const summary = (mode: ObserveMode): { callsPerSec: number; p50us: number; p99us: number; serverCpuSPer1M: number } => {
    const mine = results.filter((result) => result.mode === mode);
    return {
      callsPerSec: median(mine.map((result) => result.callsPerSec)),
      p50us: median(mine.map((result) => result.p50us)),
      p99us: median(mine.map((result) => result.p99us)),
      serverCpuSPer1M: median(mine.map((result) => result.serverCpuSPer1M ?? Number.NaN)),
    };
  };
  const base = modes.includes('plain') ? summary('plain') : undefined;
  for (const mode of modes as ObserveMode[]) {
    const mine = summary(mode);
    const ratio = base === undefined ? undefined : {
      callsPerSec: round(mine.callsPerSec / base.callsPerSec),
      serverCpuSPer1M: round(mine.serverCpuSPer1M / base.serverCpuSPer1M),
      p99us: round(mine.p99us / base.p99us),
    };
    process.stdout.write(`${JSON.stringify({ kind: 'summary', mode, adds: MODE_INFO[mode], concurrency: settings.concurrency, bytes: settings.bytes, runs, seconds: settings.seconds, ...mine, vsPlain: ratio })}\n`);
  }
}

main().then(
  () => stopAllChildren(),
  async (error: unknown) => {
    process.stderr.write(`bench:observe failed: ${error instanceof Error ? error.message : String(error)}\n`);
    await stopAllChildren();
    process.exitCode = 1;
  },
);
