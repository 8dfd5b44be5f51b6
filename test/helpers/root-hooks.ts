/**
 * Root hooks for the whole mocha run (loaded through .mocharc.json `require`). Mocha fails a test on an uncaught
 * exception, but it re-emits an unhandled rejection on `process` and forgets it: a promise callback that throws
 * inside the library would pass silently. Here every unhandled rejection fails the test during which it was seen
 * (or the run, when it comes after the last test), and marks the process as failed whatever else happens.
 */
const seen: unknown[] = [];
// Mocha re-emits each rejection it traps, so the same promise can arrive twice.
const counted = new WeakSet<Promise<unknown>>();

process.on('unhandledRejection', (reason: unknown, promise: Promise<unknown>) => {
  if (counted.has(promise)) return;
  counted.add(promise);
  seen.push(reason);
  process.exitCode = 1;
});

function takeSeen(): Error | undefined {
  if (seen.length === 0) return undefined;
  const reasons = seen.splice(0);
  const described = reasons.map((reason) => (reason instanceof Error ? reason.stack ?? reason.message : String(reason))).join('\n---\n');
  return new Error(`${reasons.length} unhandled rejection(s) during this test:\n${described}`);
}

/** mochaHooks fails the current test when a promise rejection went unhandled while it ran. */
export const mochaHooks = {
  afterEach(): void {
    const failure = takeSeen();
    if (failure !== undefined) throw failure;
  },
  afterAll(): void {
    const failure = takeSeen();
    if (failure !== undefined) throw failure;
  },
};
