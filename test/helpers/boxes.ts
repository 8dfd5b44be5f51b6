/**
 * Real middle boxes for the deploy tests: HAProxy, nginx, squid and tinyproxy from their Debian
 * packages, each started on 127.0.0.1 with its own config in a fresh temp folder, checked first with the box's own
 * config test, and stopped (and the folder removed) by the test's Cleanup.
 *
 * A box that is not installed skips its tests; the run prints one line naming what it skipped. With
 * TUNNELRPC_REQUIRE_DEPLOY=1 (`pnpm test:deploy`) a missing box fails the test instead.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import type { Cleanup } from './cleanup.js';
import { REPO_ROOT } from './processes.js';

/** BoxName names a daemon the deploy tests start. */
export type BoxName = 'haproxy' | 'nginx' | 'squid' | 'tinyproxy' | 'chromium';

/** REQUIRE_DEPLOY is set by `pnpm test:deploy`: a missing box is a failure, not a skip. */
export const REQUIRE_DEPLOY = process.env['TUNNELRPC_REQUIRE_DEPLOY'] === '1';

const skipped = new Set<BoxName>();

/**
 * findBinary returns the path of `name` on PATH (and the sbin folders, where Debian puts daemons), or undefined.
 * TUNNELRPC_BOX_PATH, when set, is searched instead: the test of the skip line sets it to an empty folder.
 */
export function findBinary(name: BoxName): string | undefined {
  const override = process.env['TUNNELRPC_BOX_PATH'];
  const dirs = override !== undefined ? override.split(delimiter) : [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * needBox returns the binary of `name`, or skips the running test (`ctx.skip()`) when it is not installed and the
 * run does not require the deploy tests. Call it first thing in a `before` or `it`.
 */
export function needBox(ctx: Mocha.Context, name: BoxName): string {
  const binary = findBinary(name);
  if (binary !== undefined) return binary;
  if (REQUIRE_DEPLOY) {
    throw new Error(`${name} is not installed, and TUNNELRPC_REQUIRE_DEPLOY=1 (pnpm test:deploy) requires it: apt-get install haproxy nginx libnginx-mod-stream squid tinyproxy chromium (as .ci/run does)`);
  }
  if (skipped.size === 0) {
    // One line for the whole run, printed as the process exits (mocha runs with --exit).
    process.once('exit', () => {
      process.stdout.write(`deploy tests skipped: ${[...skipped].sort().join(', ')} not installed (pnpm test:deploy requires them; .ci/run installs them)\n`);
    });
  }
  skipped.add(name);
  return ctx.skip();
}

/** freePort asks the kernel for a free port on 127.0.0.1 (the box binds it a moment later). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** readmeRecipe returns the fenced block that follows `<!-- recipe: NAME -->` in README.md: the config a test runs. */
export function readmeRecipe(name: string): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const marker = `<!-- recipe: ${name} -->`;
  const at = readme.indexOf(marker);
  if (at === -1) throw new Error(`README.md has no ${marker}`);
  const open = readme.indexOf('```', at);
  const start = readme.indexOf('\n', open) + 1;
  const end = readme.indexOf('\n```', start);
  return readme.slice(start, end + 1);
}

/**
 * fill replaces each `from` of a recipe with its `to`, failing if `from` does not occur: a recipe edited in the
 * README without the test noticing would otherwise run unchanged addresses.
 */
export function fill(recipe: string, replacements: ReadonlyArray<readonly [string, string]>): string {
  let text = recipe;
  for (const [from, to] of replacements) {
    if (!text.includes(from)) throw new Error(`the recipe has no ${JSON.stringify(from)} to replace:\n${text}`);
    text = text.split(from).join(to);
  }
  return text;
}

/** Box is a running daemon with its temp folder. */
export interface Box {
  readonly name: BoxName;
  readonly dir: string;
  readonly child: ChildProcess;
  /** What the daemon printed on stdout and stderr so far (for failure messages). */
  output(): string;
}

/** BoxSpec says how to check and run one daemon in the foreground with a config written to `dir`. */
export interface BoxSpec {
  name: BoxName;
  /** File name of the config inside the temp folder, and its text (`{dir}` is replaced by the folder). */
  configFile: string;
  config: string;
  /** Arguments of the config test, then of the foreground run; `{config}` and `{dir}` are replaced. */
  checkArgs: string[];
  runArgs: string[];
  /** The port the daemon listens on; startBox waits until it accepts a connection. */
  port: number;
  /** Make the folder writable for a daemon that drops root for another user (squid, tinyproxy). */
  openFolder?: boolean;
}

/** startBox writes the config, runs the config test (failing with its output), starts the daemon and waits for its port. */
export async function startBox(cleanup: Cleanup, binary: string, spec: BoxSpec): Promise<Box> {
  const dir = await mkdtemp(join(tmpdir(), `tunnelrpc-${spec.name}-`));
  cleanup.defer(() => rm(dir, { recursive: true, force: true }));
  if (spec.openFolder === true) await chmod(dir, 0o777);
  const configPath = join(dir, spec.configFile);
  const expand = (arg: string): string => arg.split('{config}').join(configPath).split('{dir}').join(dir);
  await writeFile(configPath, spec.config.split('{dir}').join(dir));
  try {
    await promisify(execFile)(binary, spec.checkArgs.map(expand));
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${spec.name} config test failed:\n${stdout ?? ''}${stderr ?? ''}\nconfig:\n${spec.config}`);
  }
  const child = spawn(binary, spec.runArgs.map(expand), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  cleanup.defer(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    // squid waits shutdown_lifetime, nginx its workers: a second signal makes sure nothing outlives the test.
    const late = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(late);
  });
  const box: Box = { name: spec.name, dir, child, output: () => output };
  await waitForPort(box, spec.port);
  return box;
}

// Tries to connect until the daemon accepts, or fails with its output if it exits first.
async function waitForPort(box: Box, port: number): Promise<void> {
  for (;;) {
    if (box.child.exitCode !== null || box.child.signalCode !== null) {
      throw new Error(`${box.name} exited (code ${box.child.exitCode}) before listening on ${port}:\n${box.output()}`);
    }
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (accepted) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
