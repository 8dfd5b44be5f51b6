/**
 * Load: closed-loop callers of the Fleet service that record how every call ended (answered by which process, or
 * failed with which code and whether it may have run), tagged with the phase of the test it ended in. Figures are
 * counts, never times.
 */
import { createClient, RpcError, type RpcClient, type TypedClient } from '@tunnelrpc/client';
import { Fleet } from '@tunnelrpc/examples/fleet';
import { Counter } from './servers.js';

/** Outcome is how one call ended. */
export interface Outcome {
  readonly method: 'whoami' | 'work';
  readonly phase: string;
  /** The process that answered, for a result. */
  readonly pid?: number;
  /** The error code, for a failure. */
  readonly code?: string;
  readonly mayHaveRun?: boolean;
  /** ms from the call to its outcome (logged and bounded generously, never compared tightly). */
  readonly ms: number;
}

/** Load runs `concurrency` callers over one client until stop(), alternating whoami (idempotent) and work (not). */
export class Load {
  readonly outcomes: Outcome[] = [];
  phase = 'before';
  #started = 0;
  #stopped = false;
  readonly #answered = new Counter();
  readonly #loops: Promise<void>[] = [];

  constructor(client: RpcClient, concurrency: number) {
    const fleet = createClient(Fleet, client);
    for (let i = 0; i < concurrency; i++) this.#loops.push(this.#loop(fleet, i));
  }

  /** started counts calls made so far. */
  get started(): number {
    return this.#started;
  }

  /** answered resolves once `count` more calls have been answered from now. */
  answered(count: number): Promise<void> {
    return this.#answered.reach(this.#answered.value + count);
  }

  /** stop lets every caller finish its call in flight, then resolves. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#loops);
  }

  /** pidsIn counts answers per process in `phase`. */
  pidsIn(phase: string): Map<number, number> {
    const counts = new Map<number, number>();
    for (const outcome of this.outcomes) {
      if (outcome.phase === phase && outcome.pid !== undefined) counts.set(outcome.pid, (counts.get(outcome.pid) ?? 0) + 1);
    }
    return counts;
  }

  /** tally counts outcomes as `method ok` or `method CODE mayHaveRun=…`. */
  tally(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const outcome of this.outcomes) {
      const key = outcome.code === undefined ? `${outcome.method} ok` : `${outcome.method} ${outcome.code} mayHaveRun=${String(outcome.mayHaveRun)}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  async #loop(fleet: TypedClient<typeof Fleet>, seed: number): Promise<void> {
    for (let i = seed; !this.#stopped; i++) {
      const method = i % 2 === 0 ? 'whoami' : 'work';
      this.#started++;
      const started = performance.now();
      try {
        const { pid } = method === 'whoami' ? await fleet.whoami(undefined, { timeout: 20_000 }) : await fleet.work({ ms: 1 }, { timeout: 20_000 });
        this.outcomes.push({ method, phase: this.phase, pid, ms: performance.now() - started });
        this.#answered.increment();
      } catch (error) {
        const rpc = error instanceof RpcError ? error : RpcError.from(error);
        this.outcomes.push({ method, phase: this.phase, code: rpc.code, mayHaveRun: (rpc.data as { mayHaveRun?: boolean } | undefined)?.mayHaveRun, ms: performance.now() - started });
      }
    }
  }
}

/** until polls `condition` every few ms until it holds (the test's own timeout bounds the wait). */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}
