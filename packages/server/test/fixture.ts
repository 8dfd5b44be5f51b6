/**
 * The test contract of the server suite: a few methods whose handlers report to a Probe what they saw, so tests
 * can wait for "the handler is running", count concurrent entries, and check that a signal was aborted.
 * (@tunnelrpc/examples is not a dependency of this package, hence a contract of its own.)
 */
import { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { ERROR_CODES, RpcError, defineService } from '@tunnelrpc/protocol';
import type { CallContext, ServiceImpl } from '@tunnelrpc/server';

/** Svc is the contract the tests call as "Svc.<method>". */
export const Svc = defineService('Svc', {
  /** Returns its params unchanged. */
  echo: { input: z.unknown(), output: z.unknown() },
  /** Adds two numbers (strict: extra keys are INVALID_ARGUMENT). */
  add: { input: z.strictObject({ a: z.number(), b: z.number() }), output: z.number() },
  /** Sums an array of numbers. */
  sum: { input: z.array(z.number()).max(200_000), output: z.number() },
  /** Waits `ms`, ending early with the signal's reason; counts how many run at once. */
  slow: { input: z.strictObject({ ms: z.number().int().min(0).max(60_000) }), output: z.object({ slept: z.number() }) },
  /** Waits until the test calls probe.release(), or its signal aborts. */
  hold: { input: z.void(), output: z.string() },
  /** Never settles and ignores its signal. */
  hang: { input: z.void(), output: z.void() },
  /** Throws RpcError(code, message, data). */
  fail: { input: z.strictObject({ code: z.enum(ERROR_CODES), message: z.string(), data: z.unknown() }), output: z.void() },
  /** Throws a plain Error whose text must not reach the caller. */
  crash: { input: z.void(), output: z.void() },
  /** Throws or rejects with a non-Error value. */
  throwValue: { input: z.enum(['string', 'null', 'reject', 'rejectNull', 'undefined']), output: z.void() },
  /** Returns what the handler saw in ctx: headers, auth, method, notification, whether params has own keys. */
  context: { input: z.unknown(), output: z.unknown() },
  /** Returns a string of `size` bytes. */
  big: { input: z.strictObject({ size: z.number().int().min(0) }), output: z.string() },
  /** A notification target that counts what it receives. */
  notify: { input: z.unknown(), output: z.void(), notification: true },
  /** How many notifications `notify` has received. */
  count: { input: z.void(), output: z.number().int() },
});

/** Entry is what a handler reports to the probe when it starts. */
export interface Entry {
  method: string;
  ctx: CallContext;
}

/**
 * Probe records what the handlers did. It emits 'enter' (Entry) whenever a handler starts, so a test can
 * `await once(probe, 'enter')` instead of sleeping.
 */
export class Probe extends EventEmitter<{ enter: [Entry]; notified: [unknown] }> {
  entries: Entry[] = [];
  running = 0;
  maxRunning = 0;
  notifications = 0;
  #holds: (() => void)[] = [];

  enter(method: string, ctx: CallContext): void {
    const entry = { method, ctx };
    this.entries.push(entry);
    this.emit('enter', entry);
  }

  /** entered counts how many times `method` started. */
  entered(method: string): number {
    return this.entries.filter((entry) => entry.method === method).length;
  }

  /** signals returns the signals handed to `method`, in call order. */
  signals(method: string): AbortSignal[] {
    return this.entries.filter((entry) => entry.method === method).map((entry) => entry.ctx.signal);
  }

  /** waitFor resolves with the next entry of `method` (or one already recorded beyond `seen`). */
  async waitFor(method: string, seen = 0): Promise<Entry> {
    for (;;) {
      const done = this.entries.filter((entry) => entry.method === method);
      if (done.length > seen) return done[seen]!;
      await new Promise<void>((resolve) => this.once('enter', () => resolve()));
    }
  }

  hold(): Promise<void> {
    return new Promise((resolve) => this.#holds.push(resolve));
  }

  /** release lets every `hold` running now return. */
  release(): void {
    const holds = this.#holds;
    this.#holds = [];
    for (const resolve of holds) resolve();
  }
}

/** SECRET is the text crash() throws; it must never reach a caller unless exposeInternalErrors is on. */
export const SECRET = 'secret-detail-7f3a: database password is hunter2';

/** createSvc returns the handlers of Svc, reporting to `probe`. */
export function createSvc(probe: Probe): ServiceImpl<typeof Svc> {
  return {
    echo: (value, ctx) => {
      probe.enter('echo', ctx);
      return value;
    },
    add: ({ a, b }, ctx) => {
      probe.enter('add', ctx);
      return a + b;
    },
    sum: (values, ctx) => {
      probe.enter('sum', ctx);
      return values.reduce((total, value) => total + value, 0);
    },
    slow: async ({ ms }, ctx) => {
      probe.enter('slow', ctx);
      probe.running++;
      probe.maxRunning = Math.max(probe.maxRunning, probe.running);
      try {
        // The signal's reason is the RpcError (CANCELLED, DEADLINE_EXCEEDED) the server answers with.
        await delay(ms, undefined, { signal: ctx.signal }).catch(() => {
          throw ctx.signal.reason;
        });
        return { slept: ms };
      } finally {
        probe.running--;
      }
    },
    hold: async (_input, ctx) => {
      probe.enter('hold', ctx);
      await Promise.race([
        probe.hold(),
        new Promise<never>((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })),
      ]);
      return 'released';
    },
    hang: (_input, ctx) => {
      probe.enter('hang', ctx);
      return new Promise<void>(() => {});
    },
    fail: ({ code, message, data }, ctx) => {
      probe.enter('fail', ctx);
      throw new RpcError(code, message, data);
    },
    crash: (_input, ctx) => {
      probe.enter('crash', ctx);
      throw new Error(SECRET);
    },
    throwValue: (kind, ctx) => {
      probe.enter('throwValue', ctx);
      switch (kind) {
        case 'string':
          throw 'x marks the spot';
        case 'null':
          throw null;
        case 'undefined':
          throw undefined;
        case 'reject':
          return Promise.reject(new Error(SECRET));
        case 'rejectNull':
          return Promise.reject(null);
      }
    },
    context: (params, ctx) => {
      probe.enter('context', ctx);
      const own = typeof params === 'object' && params !== null ? Object.keys(params) : [];
      return {
        headers: { ...ctx.headers },
        auth: ctx.auth,
        method: ctx.method,
        notification: ctx.notification,
        deadlineInFuture: ctx.deadline > Date.now(),
        peerAddress: ctx.peer.address,
        keys: own,
        inheritedPolluted: typeof params === 'object' && params !== null ? (params as { polluted?: unknown }).polluted ?? null : null,
      };
    },
    big: ({ size }, ctx) => {
      probe.enter('big', ctx);
      return 'x'.repeat(size);
    },
    notify: (value, ctx) => {
      probe.enter('notify', ctx);
      probe.notifications++;
      probe.emit('notified', value);
    },
    count: (_input, ctx) => {
      probe.enter('count', ctx);
      return probe.notifications;
    },
  };
}
