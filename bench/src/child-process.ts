/**
 * ManagedChild: one server or client process of a run, spoken to in JSON lines over stdio. The orchestrator only
 * ends processes it started, by pid, and never leaves one behind (stopAll on exit and on SIGINT).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** ChildMessage is one JSON object a child printed. */
export type ChildMessage = Record<string, unknown>;

const STDERR_TAIL = 4096;
const live = new Set<ManagedChild>();

/** ManagedChild wraps a spawned process: a queue of its JSON lines, its stderr tail, and a bounded stop. */
export class ManagedChild {
  readonly label: string;
  readonly #process: ChildProcess;
  readonly #messages: ChildMessage[] = [];
  readonly #waiters: { resolve: (message: ChildMessage) => void; reject: (error: Error) => void }[] = [];
  readonly #exited: Promise<number | null>;
  #stderr = '';
  #exitCode: number | null | undefined;

  constructor(label: string, command: string, args: readonly string[], options: { cwd: string; verbose: boolean }) {
    this.label = label;
    this.#process = spawn(command, args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(this);
    this.#process.stdin!.on('error', () => undefined); // EPIPE once the child has gone: its exit reports it
    createInterface({ input: this.#process.stdout! }).on('line', (line) => this.#onLine(line));
    this.#process.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      this.#stderr = (this.#stderr + text).slice(-STDERR_TAIL);
      if (options.verbose) process.stderr.write(text.replace(/^(?=.)/gm, `  [${label}] `));
    });
    this.#exited = new Promise((resolve) => {
      this.#process.on('error', (error) => {
        this.#stderr += `\n${error.message}`;
        this.#exitCode = -1;
        this.#failWaiters();
        resolve(-1);
      });
      // 'close', not 'exit': it comes after stdout has ended, so no last line is lost to a rejected waiter.
      this.#process.on('close', (code) => {
        this.#exitCode = code;
        live.delete(this);
        this.#failWaiters();
        resolve(code);
      });
    });
  }

  /** pid is the process id (used for /proc sampling). */
  get pid(): number {
    return this.#process.pid ?? -1;
  }

  /** running is true until the process has exited. */
  get running(): boolean {
    return this.#exitCode === undefined;
  }

  /** next resolves with the next JSON line, or rejects when the child exits or `timeoutMs` passes first. */
  next(timeoutMs: number): Promise<ChildMessage> {
    const queued = this.#messages.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (!this.running) return Promise.reject(this.#exitError());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.#waiters.indexOf(waiter);
        if (index !== -1) this.#waiters.splice(index, 1);
        reject(new Error(`${this.label}: no answer within ${timeoutMs} ms${this.#stderrHint()}`));
      }, timeoutMs);
      const waiter = {
        resolve: (message: ChildMessage) => {
          clearTimeout(timer);
          resolve(message);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  /** send writes one command line to the child's stdin. */
  send(line: string): void {
    if (this.running && this.#process.stdin!.writable) this.#process.stdin!.write(`${line}\n`);
  }

  /** request sends a command and resolves with the next JSON line. */
  request(line: string, timeoutMs = 10_000): Promise<ChildMessage> {
    this.send(line);
    return this.next(timeoutMs);
  }

  /** waitForExit resolves with the exit code, killing the child (SIGKILL) if it has not exited in `timeoutMs`. */
  async waitForExit(timeoutMs: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const outcome = await Promise.race([this.#exited, timeout]);
    clearTimeout(timer);
    if (outcome !== 'timeout') return outcome;
    this.kill('SIGKILL');
    return this.#exited;
  }

  /** stop asks the child to exit (`exit`, then end of stdin), then SIGTERM after 3 s and SIGKILL after 6 s. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.send('exit');
    this.#process.stdin!.end();
    const graceful = await Promise.race([this.#exited.then(() => true), delay(3000).then(() => false)]);
    if (graceful) return;
    this.kill('SIGTERM');
    await this.waitForExit(3000);
  }

  /** kill signals this child by its pid, if it still runs. */
  kill(signal: NodeJS.Signals): void {
    if (this.running) this.#process.kill(signal);
  }

  /** stderrTail is the last 4 KiB the child wrote to stderr. */
  get stderrTail(): string {
    return this.#stderr;
  }

  #onLine(line: string): void {
    let message: ChildMessage;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      message = parsed as ChildMessage;
    } catch {
      process.stderr.write(`  [${this.label}] ${line}\n`);
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter.resolve(message);
    else this.#messages.push(message);
  }

  #failWaiters(): void {
    const error = this.#exitError();
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }

  #exitError(): Error {
    return new Error(`${this.label} exited (code ${String(this.#exitCode)})${this.#stderrHint()}`);
  }

  #stderrHint(): string {
    const tail = this.#stderr.trim();
    return tail === '' ? '' : `; its stderr ends with:\n${tail.split('\n').slice(-15).join('\n')}`;
  }
}

/** stopAllChildren kills every child still running (on SIGINT, or when a run fails). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...live].map((child) => child.stop()));
}

/** killAllChildrenNow sends SIGKILL to every child still running, synchronously (for process 'exit'). */
export function killAllChildrenNow(): void {
  for (const child of live) child.kill('SIGKILL');
}

/** delay resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
