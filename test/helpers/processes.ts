/**
 * Child processes for the tests that run the shipped entry points: the example server and the tunnelrpc CLI,
 * started with the current node binary from the repository root.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** REPO_ROOT is the workspace root (this file runs from test/dist/helpers). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** ProcessResult is how a finished process ended and what it printed. */
export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** spawnNode starts `node ...args` in the repository root with piped output (and piped input when `stdin`). */
export function spawnNode(args: readonly string[], stdin = false): ChildProcess {
  return spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
}

/**
 * waitForLine resolves with the match of the first stdout line of `child` that matches `pattern`. Rejects if the
 * process exits first, quoting what it printed on stderr.
 */
export function waitForLine(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    const onStderr = (chunk: Buffer): void => {
      stderr += chunk.toString('utf8');
    };
    child.stderr?.on('data', onStderr);
    const lines = createInterface({ input: child.stdout! });
    const finish = (): void => {
      lines.close();
      // Keep draining stdout so a chatty child never blocks on a full pipe.
      child.stdout?.resume();
      child.stderr?.off('data', onStderr);
      child.off('exit', onExit);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      finish();
      reject(new Error(`process exited (code ${code}, signal ${signal}) before printing a line matching ${pattern}; stderr: ${stderr}`));
    };
    lines.on('line', (line) => {
      const match = pattern.exec(line);
      if (match === null) return;
      finish();
      resolve(match);
    });
    child.once('exit', onExit);
  });
}

/** runNode runs `node ...args` in the repository root to completion, with `input` on stdin, and collects its output. */
export async function runNode(args: readonly string[], input?: string): Promise<ProcessResult> {
  const child = spawnNode(args, input !== undefined);
  if (input !== undefined) child.stdin!.end(input);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stdout, stderr };
}

/** exitOf resolves with the exit code and signal of a running child (or at once if it has exited already). */
export async function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal };
}
