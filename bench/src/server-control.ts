/**
 * The control channel of every Node server the orchestrator starts. The server prints `{"port":N,"pid":P}` once
 * it listens, then answers one JSON line per stdin command:
 *   stats   {"cpuUserUs","cpuSystemUs","rssBytes","heapUsedBytes","connections"}   (used where /proc is missing,
 *           and by the idle-tunnel count for `connections`)
 *   gc      {"gc":true|false}   runs a full collection when node was started with --expose-gc
 *   exit    closes the server and exits 0 (so does the end of stdin)
 * Nothing else may write to stdout: the server's own logs go to stderr.
 */
import { createInterface } from 'node:readline';

/** ServerHooks tell the control channel how to count connections and how to close. */
export interface ServerHooks {
  connections?: () => number;
  close: () => Promise<void>;
}

/** serveControl announces the port and serves the stdin commands until exit. */
export function serveControl(port: number, hooks: ServerHooks): void {
  const reply = (value: object): void => {
    process.stdout.write(`${JSON.stringify(value)}\n`);
  };
  let exiting = false;
  const exit = (): void => {
    if (exiting) return;
    exiting = true;
    const hardStop = setTimeout(() => process.exit(0), 3000);
    hardStop.unref();
    hooks.close().then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    switch (line.trim()) {
      case 'stats': {
        const cpu = process.cpuUsage();
        const memory = process.memoryUsage();
        reply({
          cpuUserUs: cpu.user,
          cpuSystemUs: cpu.system,
          rssBytes: memory.rss,
          heapUsedBytes: memory.heapUsed,
          connections: hooks.connections?.() ?? -1,
        });
        break;
      }
      case 'gc': {
        const gc = (globalThis as { gc?: () => void }).gc;
        gc?.();
        reply({ gc: gc !== undefined });
        break;
      }
      case 'exit':
        exit();
        break;
      default:
        reply({ error: `unknown command ${JSON.stringify(line.slice(0, 40))}; use stats, gc or exit` });
    }
  });
  lines.on('close', exit);
  reply({ port, pid: process.pid });
}

/** failServer reports a fatal setup error as JSON and exits non-zero. */
export function failServer(error: unknown): never {
  process.stdout.write(`${JSON.stringify({ fatal: error instanceof Error ? error.message : String(error) })}\n`);
  process.exit(1);
}
