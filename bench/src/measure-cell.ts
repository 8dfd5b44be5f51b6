/**
 * One measurement: a fresh server process, the cell's client processes (one, or P for a many-clients cell) that
 * warm up, then the measured window, opened for all of them at once, with the server's CPU time and RSS sampled
 * right before and right after it. The clients' latency histograms are merged; calls/s is the sum.
 */
import { ManagedChild, type ChildMessage } from './child-process.js';
import type { ClientResult } from './closed-loop.js';
import { LatencyHistogram } from './histogram.js';
import { HAS_PROC, readProcessSample } from './proc-stats.js';
import { cellKey, clientCommand, serverCommand, type CellSpec, type TargetName } from './targets.js';

/** CellPlace says which peer ran which cell: what a measurement and a summary of measurements both carry. */
export interface CellPlace {
  target: TargetName;
  payload: string;
  bytes: number;
  concurrency: number;
  tunnels: number;
  processes: number;
  /** cellKey of the cell, e.g. `small:256` or `small:4:16x4`. */
  cell: string;
}

/** cellPlace is the CellPlace of `target` on `cell`. */
export function cellPlace(target: TargetName, cell: CellSpec): CellPlace {
  return {
    target,
    payload: cell.payload,
    bytes: cell.bytes,
    concurrency: cell.concurrency,
    tunnels: cell.tunnels,
    processes: cell.processes,
    cell: cellKey(cell),
  };
}

/** Measurement is the outcome of one window of the cell's clients against one server. */
export interface Measurement extends Omit<ClientResult, 'histogram'>, CellPlace {
  run: number;
  /** Server CPU seconds (user + system) over the window. */
  serverCpuSeconds: number | undefined;
  /** Server CPU seconds per million calls. */
  serverCpuSPer1M: number | undefined;
  /** Server RSS at the end of the window, bytes. */
  serverRssBytes: number | undefined;
  /** Server peak RSS (VmHWM) at the end of the window, bytes. */
  serverPeakRssBytes: number | undefined;
  /** Client CPU seconds per million calls (for context; the client differs per peer). */
  clientCpuSPer1M: number | undefined;
}

/** MeasureContext is what every measurement shares. */
export interface MeasureContext {
  benchDir: string;
  distDir: string;
  /** The bench/dist of the --baseline worktree, when there is one. */
  baselineDistDir?: string | undefined;
  goBinary: string | undefined;
  /** The Go package's bench peer (go-wire, go-to-node, node-to-go), when built. */
  goWireBinary?: string | undefined;
  seconds: number;
  warmup: number;
  verbose: boolean;
  /** Extra node options for every Node server and client (e.g. --cpu-prof). */
  nodeOptions: readonly string[];
}

interface Usage {
  cpuSeconds: number;
  rssBytes: number;
  peakRssBytes: number | undefined;
}

const START_TIMEOUT_MS = 15_000;
const SLACK_MS = 30_000;

/** measureCell runs one target on one cell once. Throws when a process fails; never leaves one running. */
export async function measureCell(target: TargetName, cell: CellSpec, run: number, context: MeasureContext): Promise<Measurement> {
  const label = `${target} ${cellKey(cell)}`;
  const distDir = target === 'baseline' ? context.baselineDistDir : context.distDir;
  if (distDir === undefined) throw new Error('the baseline was not built; pass --baseline REV');
  const serverCmd = serverCommand(target, cell, distDir, context.goBinary, context.nodeOptions, context.goWireBinary);
  const server = new ManagedChild(`${label} server`, serverCmd.command, serverCmd.args, { cwd: context.benchDir, verbose: context.verbose });
  const clients: ManagedChild[] = [];
  try {
    const announced = await server.next(START_TIMEOUT_MS);
    const port = announced.port;
    if (typeof port !== 'number') throw new Error(`${server.label} failed to start: ${JSON.stringify(announced)}`);
    const clientCmd = clientCommand(target, cell, port, context, distDir, context.goBinary, context.nodeOptions, context.goWireBinary);
    for (let i = 0; i < cell.processes; i++) {
      const name = cell.processes === 1 ? `${label} client` : `${label} client ${i + 1}/${cell.processes}`;
      clients.push(new ManagedChild(name, clientCmd.command, clientCmd.args, { cwd: context.benchDir, verbose: context.verbose }));
    }
    const firsts = await Promise.all(clients.map((client) => client.next(START_TIMEOUT_MS + context.warmup * 1000)));
    let results: ChildMessage[];
    let before: Usage | undefined;
    let after: Usage | undefined;
    let clientBefore: number | undefined;
    let clientAfter: number | undefined;
    if (firsts.every((first) => first.ready === true)) {
      before = await sampleServer(server);
      clientBefore = sumCpu(clients);
      for (const client of clients) client.send('go');
      results = await Promise.all(clients.map((client) => client.next(context.seconds * 1000 + SLACK_MS)));
      after = await sampleServer(server);
      clientAfter = sumCpu(clients);
    } else {
      // A client gave up during the warm-up: its result carries the errors.
      results = firsts.filter((first) => first.ready !== true);
    }
    results.forEach((result, i) => {
      if (typeof result.calls !== 'number') throw new Error(`${clients[i]?.label ?? 'a client'} failed: ${JSON.stringify(result)}`);
    });
    await Promise.all(clients.map((client) => client.waitForExit(10_000)));
    const merged = mergeResults(results);
    const calls = merged.calls;
    const perMillion = (from: number | undefined, to: number | undefined): number | undefined =>
      from === undefined || to === undefined || calls === 0 ? undefined : ((to - from) / calls) * 1e6;
    return {
      ...cellPlace(target, cell),
      run,
      ...merged,
      serverCpuSeconds: before === undefined || after === undefined ? undefined : after.cpuSeconds - before.cpuSeconds,
      serverCpuSPer1M: perMillion(before?.cpuSeconds, after?.cpuSeconds),
      serverRssBytes: after?.rssBytes,
      serverPeakRssBytes: after?.peakRssBytes,
      clientCpuSPer1M: perMillion(clientBefore, clientAfter),
    };
  } finally {
    await Promise.all(clients.map((client) => client.stop()));
    await server.stop();
  }
}

// One client's result as it is; several clients' summed (calls, calls/s) and merged (latency histograms).
function mergeResults(results: readonly ChildMessage[]): Omit<ClientResult, 'histogram'> {
  const first = results.find((result) => typeof result.firstError === 'string')?.firstError as string | undefined;
  const common = {
    calls: results.reduce((sum, result) => sum + num(result.calls), 0),
    errors: results.reduce((sum, result) => sum + num(result.errors), 0),
    ...(first === undefined ? {} : { firstError: first }),
  };
  if (results.length === 1) {
    const [result] = results as [ChildMessage];
    return { ...common, seconds: num(result.seconds), callsPerSec: num(result.callsPerSec), p50us: num(result.p50us), p99us: num(result.p99us), maxUs: num(result.maxUs) };
  }
  const histogram = new LatencyHistogram();
  for (const result of results) {
    if (!Array.isArray(result.histogram)) throw new Error('a client result has no histogram to merge');
    histogram.merge(result.histogram as [number, number][], num(result.maxUs) * 1000);
  }
  const seconds = Math.max(...results.map((result) => num(result.seconds)));
  return {
    ...common,
    seconds,
    callsPerSec: results.reduce((sum, result) => sum + num(result.callsPerSec), 0),
    p50us: histogram.percentile(50) / 1000,
    p99us: histogram.percentile(99) / 1000,
    maxUs: histogram.maxNs / 1000,
  };
}

function sumCpu(clients: readonly ManagedChild[]): number | undefined {
  let total = 0;
  for (const client of clients) {
    const sample = readProcessSample(client.pid);
    if (sample === undefined) return undefined;
    total += sample.cpuSeconds;
  }
  return total;
}

// /proc costs the server nothing; the control channel is the fallback where there is no /proc.
async function sampleServer(server: ManagedChild): Promise<Usage | undefined> {
  if (HAS_PROC) return readProcessSample(server.pid);
  const stats = await server.request('stats');
  if (typeof stats.cpuUserUs !== 'number' || typeof stats.cpuSystemUs !== 'number' || typeof stats.rssBytes !== 'number') return undefined;
  return { cpuSeconds: (stats.cpuUserUs + stats.cpuSystemUs) / 1e6, rssBytes: stats.rssBytes, peakRssBytes: undefined };
}

function num(value: unknown): number {
  return typeof value === 'number' ? value : Number.NaN;
}
