/**
 * The Go package (go/) as a peer of the cross-language tests: `go` from the PATH builds the example Echo server
 * and the interop client once per run, offline, from Debian's msgpack sources (go/vendor-debian.sh). Without `go`
 * the tests skip, and the run prints one line naming what it skipped; `.ci/run` installs it, so CI runs them.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import type { Cleanup } from './cleanup.js';
import { REPO_ROOT, waitForLine } from './processes.js';

const run = promisify(execFile);

/** GoBinaries are the built Go programs the tests run. */
export interface GoBinaries {
  readonly echoServer: string;
  readonly interop: string;
}

/** GO_SKIP_LINE is what the run prints once when Go is missing. */
export const GO_SKIP_LINE = 'Go interop tests skipped: no `go` on the PATH (apt-get install golang-go golang-github-vmihailenco-msgpack.v5-dev, as .ci/run does)';

/** findGo returns the path of `go` on PATH (TUNNELRPC_GO_PATH, when set, is searched instead), or undefined. */
export function findGo(): string | undefined {
  const override = process.env['TUNNELRPC_GO_PATH'];
  const dirs = override ?? process.env['PATH'] ?? '';
  for (const dir of dirs.split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, 'go'), constants.X_OK);
      return join(dir, 'go');
    } catch {
      // not here
    }
  }
  return undefined;
}

let built: Promise<GoBinaries> | undefined;
let skipLinePrinted = false;

/** goBuildEnv builds with nothing but the local toolchain and the vendored Debian sources: no proxy, no download. */
export function goBuildEnv(): NodeJS.ProcessEnv {
  return { ...process.env, GOFLAGS: '-mod=vendor', GOPROXY: 'off', GOTOOLCHAIN: 'local', CGO_ENABLED: '0' };
}

async function build(goBinary: string): Promise<GoBinaries> {
  const dir = join(REPO_ROOT, 'go');
  await run('sh', [join(dir, 'vendor-debian.sh')], { cwd: dir });
  const binaries = { echoServer: join(dir, 'bin', 'echo-server'), interop: join(dir, 'bin', 'interop') };
  const env = goBuildEnv();
  await run(goBinary, ['build', '-o', binaries.echoServer, './examples/echo-server'], { cwd: dir, env });
  await run(goBinary, ['build', '-o', binaries.interop, './internal/interop'], { cwd: dir, env });
  return binaries;
}

/**
 * needGo builds the Go programs (once per run) and returns them, or skips the running test when `go` is not on
 * the PATH. Call it first thing in a `before`; give that hook time for a first compile.
 */
export async function needGo(ctx: Mocha.Context): Promise<GoBinaries> {
  const goBinary = findGo();
  if (goBinary === undefined) {
    if (!skipLinePrinted) {
      skipLinePrinted = true;
      process.once('exit', () => process.stdout.write(`${GO_SKIP_LINE}\n`));
    }
    ctx.skip();
  }
  built ??= build(goBinary!);
  return built;
}

/** GoServer is a running Go example server. */
export interface GoServer {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  /** address is host:port, what the Go client dials. */
  readonly address: string;
}

/** startGoServer starts the Go example Echo server on a free port and waits for its `listening` line. */
export async function startGoServer(cleanup: Cleanup, binaries: GoBinaries): Promise<GoServer> {
  const child = cleanup.add(spawn(binaries.echoServer, ['-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] }), stopChild);
  const [, url] = await waitForLine(child, /^listening (\S+)/);
  child.stdout?.resume();
  child.stderr?.resume();
  const parsed = new URL(url!);
  return { child, url: url!, port: Number(parsed.port), address: parsed.host };
}

/** stopChild kills a child that is still running and waits for its exit. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** GoClientRun is the interop client running one scenario: its JSON lines as they come, and stdin for commands. */
export class GoClientRun {
  readonly child: ChildProcess;
  readonly #lines: unknown[] = [];
  #waiters: Array<() => void> = [];
  #stderr = '';
  #exited = false;

  constructor(cleanup: Cleanup, binaries: GoBinaries, address: string, scenario: string) {
    this.child = cleanup.add(spawn(binaries.interop, ['-addr', address, '-scenario', scenario], { stdio: ['pipe', 'pipe', 'pipe'] }), stopChild);
    let buffered = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        this.#lines.push(JSON.parse(buffered.slice(0, newline)));
        buffered = buffered.slice(newline + 1);
      }
      this.#wake();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.#stderr += chunk.toString('utf8')));
    this.child.once('exit', () => {
      this.#exited = true;
      this.#wake();
    });
  }

  /** line resolves with the next JSON line the client printed. */
  async line<T = Record<string, unknown>>(): Promise<T> {
    for (;;) {
      const next = this.#lines.shift();
      if (next !== undefined) return next as T;
      if (this.#exited) throw new Error(`the Go client exited without another line; stderr: ${this.#stderr}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** send writes one command line to the client's stdin. */
  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

/** runGoTest runs `go test ./...` in go/ (after needGo built the vendor folder) and collects its output. */
export async function runGoTest(): Promise<{ code: number | null; output: string }> {
  const child = spawn(findGo()!, ['test', './...'], { cwd: join(REPO_ROOT, 'go'), env: goBuildEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, output };
}

/** buildGo builds the Go package `target` (a path inside go/) to `output`, offline. */
export async function buildGo(target: string, output: string): Promise<void> {
  await run(findGo()!, ['build', '-o', output, target], { cwd: join(REPO_ROOT, 'go'), env: goBuildEnv() });
}
