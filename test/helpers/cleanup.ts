/**
 * Cleanup: a stack of teardown steps that a test pushes as it opens things (servers, clients, sockets, child
 * processes) and that afterEach runs in reverse order, so every test leaves no handle behind.
 */

/** Cleanup collects teardown steps; run() executes them newest first and rethrows the first failure. */
export class Cleanup {
  #steps: Array<() => unknown> = [];

  /** add registers a teardown step and returns `value` so that opening and registering fit on one line. */
  add<T>(value: T, step: (value: T) => unknown): T {
    this.#steps.push(() => step(value));
    return value;
  }

  /** defer registers a teardown step that needs no value. */
  defer(step: () => unknown): void {
    this.#steps.push(step);
  }

  /** run executes every step, newest first, even when one fails; then rethrows the first failure. */
  async run(): Promise<void> {
    const steps = this.#steps.reverse();
    this.#steps = [];
    let first: unknown;
    for (const step of steps) {
      try {
        await step();
      } catch (error) {
        first ??= error;
      }
    }
    if (first !== undefined) throw first;
  }
}
