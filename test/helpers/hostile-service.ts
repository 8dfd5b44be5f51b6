/**
 * Hostile: a second service next to the Echo fixture for the reliability cases (SECURITY.md, hostile cases).
 * Its handlers report what they were given (prototypes, inherited properties), count how many run at once, throw
 * every kind of value, and answer large results, so a test can see from the outside what a hostile input did.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { RpcError, defineService } from '@tunnelrpc/protocol';
import type { CallContext, ServiceImpl } from '@tunnelrpc/server';
import { Counter } from './servers.js';

/** THROW_KINDS lists what Hostile.throws can do instead of returning (SECURITY.md case T23). */
export const THROW_KINDS = ['rpc', 'error', 'string', 'null', 'getter', 'rejected', 'rejectedUndefined', 'hang', 'late'] as const;

/** Inspection is what Hostile.inspect reports about the params it was handed. */
export const Inspection = z.strictObject({
  /** Object.prototype.toString of the params: "[object Object]", "[object Date]", … */
  kind: z.string(),
  /** Own keys of the params when it is an object. */
  keys: z.array(z.string()),
  /** Every object in the params has Object.prototype, Array.prototype (or Date, Uint8Array) as its prototype. */
  plainPrototypes: z.boolean(),
  /** Some object in the params answers `.polluted` without owning it (an inherited property). */
  inheritsPolluted: z.boolean(),
  /** `({}).polluted` inside the handler. */
  globalPolluted: z.boolean(),
});

/** Hostile is the contract of the reliability fixture. */
export const Hostile = defineService('Hostile', {
  /** Reports prototypes and inherited properties of its params; never fails. */
  inspect: { input: z.unknown(), output: Inspection },
  /** A stripping (non-strict) object schema: unknown keys are dropped, `name` is returned. */
  strip: { input: z.object({ name: z.string().max(100) }), output: Inspection },
  /** Numbers with no length cap, so zod checks every element (T15): returns how many it got. */
  numbers: { input: z.array(z.number()), output: z.number() },
  /** Waits `ms` while counting the calls running at once (T17); `pad` is held meanwhile (the memory cases). */
  pace: { input: z.strictObject({ ms: z.number().int().min(0).max(60_000), pad: z.string().max(16 * 1024 * 1024).optional() }), output: z.number() },
  /** Returns `bytes` bytes of 0x61 as bin (T18). */
  blob: { input: z.strictObject({ bytes: z.number().int().min(0).max(16 * 1024 * 1024) }), output: z.instanceof(Uint8Array) },
  /** Ends the way `kind` says instead of returning (T23). */
  throws: { input: z.strictObject({ kind: z.enum(THROW_KINDS) }), output: z.null() },
});

/** HostileState is what the Hostile handlers saw, for assertions. */
export interface HostileState {
  /** Calls that reached a handler, by method name. */
  readonly calls: Record<string, number>;
  /** pace handlers running now, and the most that ever ran at once. */
  running: number;
  mostRunning: number;
  /** Reasons the signals of `throws` handlers were aborted with (hang and late). */
  readonly aborted: unknown[];
  /** Resolves once `count` `throws` signals in total have been aborted. */
  abortedCount(count: number): Promise<void>;
  /** Resolves once `count` pace handlers in total have started. */
  paceStarted(count: number): Promise<void>;
  /** Resolves once `count` `late` handlers in total are about to reject (after their deadline answered them). */
  lateRejected(count: number): Promise<void>;
}

/** inspectValue walks a decoded value and reports what a handler would meet in it. */
export function inspectValue(value: unknown): z.infer<typeof Inspection> {
  let plainPrototypes = true;
  let inheritsPolluted = false;
  const allowed = new Set<unknown>([Object.prototype, Array.prototype, Date.prototype, Uint8Array.prototype, Buffer.prototype]);
  const seen = new Set<object>();
  const walk = (node: unknown, depth: number): void => {
    if (typeof node !== 'object' || node === null || seen.has(node) || depth > 64) return;
    seen.add(node);
    if (!allowed.has(Object.getPrototypeOf(node))) plainPrototypes = false;
    const record = node as Record<string, unknown>;
    if (!Object.hasOwn(record, 'polluted') && record['polluted'] !== undefined) inheritsPolluted = true;
    if (node instanceof Uint8Array || node instanceof Date) return;
    for (const key of Object.keys(record)) walk(record[key], depth + 1);
  };
  walk(value, 0);
  return {
    kind: Object.prototype.toString.call(value),
    keys: typeof value === 'object' && value !== null ? Object.keys(value) : [],
    plainPrototypes,
    inheritsPolluted,
    globalPolluted: ({} as Record<string, unknown>)['polluted'] !== undefined,
  };
}

/** createHostileService returns the Hostile handlers and the state they record. */
export function createHostileService(): { impl: ServiceImpl<typeof Hostile>; state: HostileState } {
  const aborts = new Counter();
  const paces = new Counter();
  const lates = new Counter();
  const state: HostileState = {
    calls: {},
    running: 0,
    mostRunning: 0,
    aborted: [],
    abortedCount: (count) => aborts.reach(count),
    paceStarted: (count) => paces.reach(count),
    lateRejected: (count) => lates.reach(count),
  };
  const count = (method: string): void => {
    state.calls[method] = (state.calls[method] ?? 0) + 1;
  };
  const watch = (ctx: CallContext): void => {
    ctx.signal.addEventListener(
      'abort',
      () => {
        state.aborted.push(ctx.signal.reason);
        aborts.increment();
      },
      { once: true },
    );
  };
  const impl: ServiceImpl<typeof Hostile> = {
    inspect: (input) => {
      count('inspect');
      return inspectValue(input);
    },
    strip: (input) => {
      count('strip');
      return inspectValue(input);
    },
    numbers: (input) => {
      count('numbers');
      return input.length;
    },
    pace: async ({ ms }, ctx) => {
      count('pace');
      state.running++;
      state.mostRunning = Math.max(state.mostRunning, state.running);
      paces.increment();
      try {
        await delay(ms, undefined, { signal: ctx.signal });
        return ms;
      } finally {
        state.running--;
      }
    },
    blob: ({ bytes }) => {
      count('blob');
      return Buffer.alloc(bytes, 0x61);
    },
    // Not async: the first five kinds throw synchronously out of the handler, the rest return promises.
    throws: ({ kind }, ctx) => {
      count('throws');
      switch (kind) {
        case 'rpc':
          throw new RpcError('FAILED_PRECONDITION', 'the widget is not ready; call prepare first', { widget: 7 });
        case 'error':
          throw new Error('secret detail: password=hunter2');
        case 'string':
          throw 'x';
        case 'null':
          throw null;
        case 'getter':
          throw {
            get message(): string {
              throw new Error('getter threw');
            },
            get stack(): string {
              throw new Error('getter threw');
            },
            toString(): string {
              throw new Error('toString threw');
            },
          };
        case 'rejected':
          return Promise.reject(new Error('secret detail: rejected'));
        case 'rejectedUndefined':
          return Promise.reject(undefined);
        case 'hang':
          watch(ctx);
          return new Promise<null>(() => undefined);
        case 'late':
          // Rejects after the deadline has answered the call: that rejection must be swallowed, not unhandled.
          watch(ctx);
          return (async () => {
            await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
            await delay(20);
            lates.increment();
            throw new Error('late failure after the deadline');
          })();
      }
    },
  };
  return { impl, state };
}
