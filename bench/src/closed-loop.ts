/**
 * The client side of every Node peer: N connections (one unless --connections says more), a closed loop of C
 * outstanding echo calls on each, latency into one LatencyHistogram. Each bench/src/clients/<peer>.ts only says
 * how to open one connection and make one call on it.
 *
 * Talks to the orchestrator over stdio, one JSON object a line:
 *   stdout {"ready":true}                   after the warm-up; the loop keeps running
 *   stdin  go                               start the measured window (without --wait-go: at once)
 *   stdout {"calls":…,"seconds":…,…}        the ClientResult, as soon as the window closes; its `histogram`
 *                                           (sparse [bucket, count] pairs) lets the orchestrator merge the
 *                                           latencies of several client processes
 *
 * Arguments: --port N [--host 127.0.0.1] --concurrency C --payload NAME --seconds S [--warmup W] [--wait-go 1]
 * [--connections N].
 */
import { createInterface } from 'node:readline';
import { ChildArgs } from './child-args.js';
import { LatencyHistogram } from './histogram.js';
import { checkEcho, createPayload, isPayloadName, type PayloadName } from './payload.js';

/** ClientSettings are the arguments a peer's open() gets (concurrency is per connection). */
export interface ClientSettings {
  host: string;
  port: number;
  concurrency: number;
  payload: PayloadName;
}

/**
 * EchoDriver makes calls over one open connection. `call` must not settle synchronously in the common case; a
 * synchronous settle is handled (the loop re-issues on the next turn) but costs a setImmediate.
 */
export interface EchoDriver {
  call(payload: unknown, done: (error: unknown, echoed?: unknown) => void): void;
  close(): Promise<void>;
}

/** ClientResult is what a client prints when its measured window closes. */
export interface ClientResult {
  calls: number;
  seconds: number;
  callsPerSec: number;
  p50us: number;
  p99us: number;
  maxUs: number;
  errors: number;
  firstError?: string;
  /** The latency histogram, sparse: [bucket, count] pairs of the non-empty buckets. */
  histogram: [number, number][];
}

// Past this many failed calls the run is hopeless: stop instead of spinning.
const MAX_ERRORS = 1000;
const DRAIN_WAIT_MS = 5000;

/** runClosedLoop parses the arguments, opens the driver, runs warm-up and window, prints the result and exits. */
export async function runClosedLoop(open: (settings: ClientSettings) => Promise<EchoDriver>): Promise<void> {
  const args = new ChildArgs();
  const payloadName = args.string('payload');
  if (!isPayloadName(payloadName)) throw new Error(`--payload ${JSON.stringify(payloadName)} is not a payload`);
  const settings: ClientSettings = {
    host: args.string('host', '127.0.0.1'),
    port: args.number('port'),
    concurrency: args.number('concurrency'),
    payload: payloadName,
  };
  const connections = args.number('connections', 1);
  const seconds = args.number('seconds');
  const warmup = args.number('warmup', 1);
  const waitGo = args.number('wait-go', 0) === 1;
  const payload = createPayload(payloadName);
  const drivers: EchoDriver[] = [];
  for (let i = 0; i < connections; i++) drivers.push(await open(settings));

  const histogram = new LatencyHistogram();
  let measuring = false;
  let running = true;
  let outstanding = 0;
  let errors = 0;
  let firstError: string | undefined;
  let onDrained: (() => void) | undefined;
  let stopEarly: (() => void) | undefined;

  const issue = (driver: EchoDriver): void => {
    outstanding++;
    const started = performance.now();
    let sync = true;
    driver.call(payload, (error, echoed) => {
      const elapsed = performance.now() - started;
      outstanding--;
      const failed = failureOf(error, echoed, payloadName);
      if (failed !== undefined) {
        errors++;
        firstError ??= failed;
        if (errors >= MAX_ERRORS) {
          running = false;
          stopEarly?.();
        }
      } else if (measuring) {
        histogram.record(elapsed * 1e6);
      }
      if (!running) {
        if (outstanding === 0) onDrained?.();
        return;
      }
      // A call that failed or settled at once would otherwise re-issue in a microtask loop that starves timers.
      if (sync || failed !== undefined) setImmediate(issue, driver);
      else issue(driver);
    });
    sync = false;
  };
  for (const driver of drivers) {
    for (let i = 0; i < settings.concurrency; i++) issue(driver);
  }

  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, warmup * 1000);
    stopEarly = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  if (waitGo && running) {
    emit({ ready: true });
    await waitForGo();
  }

  const windowStart = performance.now();
  measuring = running;
  if (running) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, seconds * 1000);
      stopEarly = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  measuring = false;
  running = false;
  const elapsed = (performance.now() - windowStart) / 1000;
  const result: ClientResult = {
    calls: histogram.count,
    seconds: round(elapsed, 4),
    callsPerSec: round(histogram.count / elapsed, 1),
    p50us: round(histogram.percentile(50) / 1000, 1),
    p99us: round(histogram.percentile(99) / 1000, 1),
    maxUs: round(histogram.maxNs / 1000, 1),
    errors,
    ...(firstError === undefined ? {} : { firstError }),
    histogram: histogram.sparse(),
  };
  emit(result);

  if (outstanding > 0) {
    await new Promise<void>((resolve) => {
      onDrained = resolve;
      setTimeout(resolve, DRAIN_WAIT_MS).unref();
    });
  }
  await Promise.race([Promise.all(drivers.map((driver) => driver.close())), new Promise((resolve) => setTimeout(resolve, DRAIN_WAIT_MS).unref())]);
  process.exit(0);
}

function waitForGo(): Promise<void> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: process.stdin });
    lines.on('line', (line) => {
      if (line.trim() === 'go') {
        resolve(); // before close(): close() emits 'close' synchronously
        lines.close();
      }
    });
    lines.on('close', () => reject(new Error('stdin closed before "go"')));
  });
}

/** emit writes one JSON line to stdout for the orchestrator. */
export function emit(value: object): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

// Why a call counts as failed, or undefined when it echoed the payload back (checked by its size, not by value).
function failureOf(error: unknown, echoed: unknown, payload: PayloadName): string | undefined {
  if (error !== undefined && error !== null) return describe(error);
  return checkEcho(payload, echoed);
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${(error as { code?: unknown }).code ?? error.name}: ${error.message}`.slice(0, 300);
  return String(error).slice(0, 300);
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** failClient reports a fatal setup error as JSON and exits non-zero. */
export function failClient(error: unknown): never {
  emit({ fatal: describe(error) });
  process.exit(1);
}
