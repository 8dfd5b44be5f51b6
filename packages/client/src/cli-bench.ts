/**
 * `tunnelrpc bench`: load one unary method as `pnpm bench` does (a closed loop of -c calls in flight, client.call
 * through the public API), over --connections tunnels, for --duration or -n calls, optionally paced at --rps.
 * Prints a live progress line on a terminal, then the latency distribution, calls/s and a count per code; --json
 * prints one JSON object instead.
 *
 * With --rps the latency of a call is measured from when the schedule says it should have started, not from when
 * a free slot let it start: a server that stalls then shows its stall in the percentiles instead of hiding it
 * (wrk2's correction for coordinated omission).
 */
import { performance } from 'node:perf_hooks';
import { Reflection, RpcError } from '@tunnelrpc/protocol';
import { EXIT, clientOptions, type Invocation } from './cli-args.js';
import { LatencyHistogram } from './cli-histogram.js';
import type { Output } from './cli-output.js';
import { shownText, toJson } from './cli-output.js';
import { checkParams, findMethod, unknownMethod } from './cli-reflect.js';
import { connect, createClient, type RpcClient } from './index.js';

const PROGRESS_INTERVAL_MS = 1000;

/** BenchReport is what --json prints. @internal */
export interface BenchReport {
  method: string;
  concurrency: number;
  connections: number;
  rps: number | null;
  seconds: number;
  calls: number;
  callsPerSecond: number;
  latencyMs: { min: number; mean: number; p50: number; p90: number; p99: number; p999: number; max: number };
  codes: Record<string, number>;
}

/** runBench runs the bench subcommand and returns the exit code. @internal */
export async function runBench(invocation: Invocation, params: unknown, output: Output): Promise<number> {
  const { method, bench } = invocation;
  const clients: RpcClient[] = [];
  try {
    try {
      for (let i = 0; i < bench.connections; i++) clients.push(await connect(invocation.url, { ...clientOptions(invocation), maxPendingCalls: Math.max(1024, bench.concurrency) }));
    } catch (error) {
      output.failure(RpcError.from(error, 'UNAVAILABLE'));
      return EXIT.failure;
    }
    const refused = await checkMethod(clients[0]!, invocation, params);
    if (refused !== undefined) {
      output.error(refused, invocation.format);
      return EXIT.rpcError;
    }
    const report = await load(clients, invocation, params, output);
    if (output.closed) return EXIT.ok;
    output.line(bench.json ? toJson(report) : renderReport(report, invocation));
    return EXIT.ok;
  } finally {
    await Promise.all(clients.map((client) => client.close()));
  }
}

// The method must exist and be unary, and the params must pass its schema: a bench of errors measures nothing.
async function checkMethod(client: RpcClient, invocation: Invocation, params: unknown): Promise<RpcError | undefined> {
  let services;
  try {
    ({ services } = await createClient(Reflection, client).list(undefined, { timeout: invocation.timeout }));
  } catch {
    return undefined; // no reflection: the run's per-code counts will say what happened
  }
  const found = findMethod(services, invocation.method);
  if (found === undefined) return unknownMethod(services, invocation.method, invocation.url);
  if (found.kind !== 'unary') return new RpcError('INVALID_ARGUMENT', `bench calls unary methods; ${shownText(invocation.method)} is a ${found.kind}`);
  return invocation.validate ? checkParams(invocation.method, found.params, params) : undefined;
}

async function load(clients: readonly RpcClient[], invocation: Invocation, params: unknown, output: Output): Promise<BenchReport> {
  const { method, bench } = invocation;
  const histogram = new LatencyHistogram();
  const codes = new Map<string, number>();
  const started = performance.now();
  const deadline = bench.duration === undefined ? Number.POSITIVE_INFINITY : started + bench.duration;
  const interval = bench.rps === undefined ? 0 : 1000 / bench.rps;
  let issued = 0;
  const progress = process.stderr.isTTY === true && !bench.json ? setInterval(() => showProgress(), PROGRESS_INTERVAL_MS) : undefined;
  const showProgress = (): void => {
    const seconds = (performance.now() - started) / 1000;
    const errors = histogram.count - (codes.get('OK') ?? 0);
    const rate = seconds > 0 ? histogram.count / seconds : 0;
    process.stderr.write(`\r${seconds.toFixed(1)} s  ${histogram.count} calls  ${rate.toFixed(0)} calls/s  p99 ${ms(histogram.percentile(99))} ms  errors ${errors}   `);
  };
  // The line shows at once, then every second: a run shorter than a second still says it ran.
  if (progress !== undefined) showProgress();
  // The next call's place in the schedule, or undefined once the run is over.
  const nextSlot = (): number | undefined => {
    if (output.closed || (bench.count !== undefined && issued >= bench.count)) return undefined;
    const slot = interval === 0 ? performance.now() : started + issued * interval;
    if (slot >= deadline || performance.now() >= deadline) return undefined;
    issued++;
    return slot;
  };
  const worker = async (index: number): Promise<void> => {
    const client = clients[index % clients.length]!;
    for (let slot = nextSlot(); slot !== undefined; slot = nextSlot()) {
      const wait = slot - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      // A call that starts a little early (a wait under 1 ms is not slept) counts from when it starts.
      const begin = Math.max(slot, performance.now());
      let code = 'OK';
      try {
        await client.call(method, params, { timeout: invocation.timeout, headers: Object.keys(invocation.headers).length > 0 ? invocation.headers : undefined });
      } catch (error) {
        code = RpcError.from(error).code;
      }
      histogram.record((performance.now() - begin) * 1000);
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
  };
  try {
    await Promise.all(Array.from({ length: bench.concurrency }, (_, index) => worker(index)));
  } finally {
    if (progress !== undefined) {
      clearInterval(progress);
      process.stderr.write('\n');
    }
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    method,
    concurrency: bench.concurrency,
    connections: bench.connections,
    rps: bench.rps ?? null,
    seconds: round(seconds, 3),
    calls: histogram.count,
    callsPerSecond: round(histogram.count / seconds, 1),
    latencyMs: {
      min: ms(histogram.min),
      mean: ms(histogram.mean),
      p50: ms(histogram.percentile(50)),
      p90: ms(histogram.percentile(90)),
      p99: ms(histogram.percentile(99)),
      p999: ms(histogram.percentile(99.9)),
      max: ms(histogram.max),
    },
    codes: Object.fromEntries([...codes].sort((a, b) => b[1] - a[1])),
  };

}

function ms(us: number): number {
  return round(us / 1000, 3);
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** renderReport is the report for people. @internal */
export function renderReport(report: BenchReport, invocation: Invocation): string {
  const { latencyMs } = report;
  const pace = report.rps === null ? 'closed loop' : `paced at ${report.rps} calls/s`;
  const lines = [
    `${shownText(report.method)} at ${shownText(invocation.url)}: ${report.concurrency} in flight over ${report.connections} tunnel${report.connections === 1 ? '' : 's'}, ${pace}`,
    `  calls      ${report.calls} in ${report.seconds.toFixed(2)} s`,
    `  calls/s    ${report.callsPerSecond.toFixed(1)}`,
    'latency (ms):',
    `  min        ${latencyMs.min.toFixed(3)}`,
    `  mean       ${latencyMs.mean.toFixed(3)}`,
    `  p50        ${latencyMs.p50.toFixed(3)}`,
    `  p90        ${latencyMs.p90.toFixed(3)}`,
    `  p99        ${latencyMs.p99.toFixed(3)}`,
    `  p99.9      ${latencyMs.p999.toFixed(3)}`,
    `  max        ${latencyMs.max.toFixed(3)}`,
    'codes:',
    ...Object.entries(report.codes).map(([code, count]) => `  ${code.padEnd(20)} ${count}`),
  ];
  return lines.join('\n');
}
