/**
 * One measurement: a fresh server process, a client process that warms up, then the measured window, with the
 * server's CPU time and RSS sampled right before and right after it.
 */
import { ManagedChild, type ChildMessage } from './child-process.js';
import type { ClientResult } from './closed-loop.js';
import { HAS_PROC, readProcessSample } from './proc-stats.js';
import { clientCommand, serverCommand, type CellSpec, type TargetName } from './targets.js';

/** Measurement is the outcome of one client window against one server. */
export interface Measurement extends ClientResult {
  target: TargetName;
  payload: string;
  bytes: number;
  concurrency: number;
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
  goBinary: string | undefined;
  seconds: number;
  warmup: number;
  verbose: boolean;
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
  const label = `${target} ${cell.payload} C=${cell.concurrency}`;
  const serverCmd = serverCommand(target, cell, context.distDir, context.goBinary);
  const server = new ManagedChild(`${label} server`, serverCmd.command, serverCmd.args, { cwd: context.benchDir, verbose: context.verbose });
  let client: ManagedChild | undefined;
  try {
    const announced = await server.next(START_TIMEOUT_MS);
    const port = announced.port;
    if (typeof port !== 'number') throw new Error(`${server.label} failed to start: ${JSON.stringify(announced)}`);
    const clientCmd = clientCommand(target, cell, port, context, context.distDir, context.goBinary);
    client = new ManagedChild(`${label} client`, clientCmd.command, clientCmd.args, { cwd: context.benchDir, verbose: context.verbose });
    const first = await client.next(START_TIMEOUT_MS + context.warmup * 1000);
    let result: ChildMessage;
    let before: Usage | undefined;
    let after: Usage | undefined;
    let clientBefore: Usage | undefined;
    let clientAfter: Usage | undefined;
    if (first.ready === true) {
      before = await sampleServer(server);
      clientBefore = readProcessSample(client.pid);
      client.send('go');
      result = await client.next(context.seconds * 1000 + SLACK_MS);
      after = await sampleServer(server);
      clientAfter = readProcessSample(client.pid);
    } else {
      result = first; // the client gave up during the warm-up: its result carries the errors
    }
    if (typeof result.calls !== 'number') throw new Error(`${client.label} failed: ${JSON.stringify(result)}`);
    await client.waitForExit(10_000);
    const calls = result.calls;
    const perMillion = (from: Usage | undefined, to: Usage | undefined): number | undefined =>
      from === undefined || to === undefined || calls === 0 ? undefined : ((to.cpuSeconds - from.cpuSeconds) / calls) * 1e6;
    return {
      target,
      payload: cell.payload,
      bytes: cell.bytes,
      concurrency: cell.concurrency,
      run,
      calls,
      seconds: num(result.seconds),
      callsPerSec: num(result.callsPerSec),
      p50us: num(result.p50us),
      p99us: num(result.p99us),
      maxUs: num(result.maxUs),
      errors: num(result.errors),
      ...(typeof result.firstError === 'string' ? { firstError: result.firstError } : {}),
      serverCpuSeconds: before === undefined || after === undefined ? undefined : after.cpuSeconds - before.cpuSeconds,
      serverCpuSPer1M: perMillion(before, after),
      serverRssBytes: after?.rssBytes,
      serverPeakRssBytes: after?.peakRssBytes,
      clientCpuSPer1M: perMillion(clientBefore, clientAfter),
    };
  } finally {
    await client?.stop();
    await server.stop();
  }
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
