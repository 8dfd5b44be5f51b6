/**
 * The Echo fixture: the contract and handlers the example server registers. Other-language suites test their
 * peers against it (PROTOCOL.md "The Echo test fixture").
 */
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { ERROR_CODES, RpcError, defineService } from '@tunnelrpc/protocol';
import type { ServiceImpl } from '@tunnelrpc/server';

/** Echo is the contract of the test fixture. */
export const Echo = defineService('Echo', {
  /** Returns its params unchanged. */
  echo: { input: z.unknown(), output: z.unknown(), idempotent: true },
  /** Adds two numbers. */
  add: { input: z.strictObject({ a: z.number(), b: z.number() }), output: z.number(), idempotent: true },
  /** Waits `ms`, ending early with CANCELLED or DEADLINE_EXCEEDED. */
  sleep: { input: z.strictObject({ ms: z.number().int().min(0).max(300_000) }), output: z.object({ slept: z.number() }) },
  /** Fails with the given code and message. */
  fail: { input: z.strictObject({ code: z.enum(ERROR_CODES), message: z.string().max(1000) }), output: z.void() },
  /** Throws a plain Error whose text must never reach the caller. */
  crash: { input: z.void(), output: z.void() },
  /** A notification target that counts what it receives. */
  notify: { input: z.unknown(), output: z.void(), notification: true },
  /** How many notifications `notify` has received. */
  count: { input: z.void(), output: z.number().int(), idempotent: true },
  /** A server stream of the integers 0 … n-1, `ms` apart (default 0); the result is how many were sent. */
  ticks: {
    kind: 'serverStream',
    input: z.strictObject({ n: z.number().int().min(0).max(1_000_000_000), ms: z.number().int().min(0).max(60_000).optional() }),
    serverMessage: z.number().int(),
    output: z.object({ sent: z.number().int() }),
  },
  /** A client stream of numbers; the result is their total. */
  sum: { kind: 'clientStream', input: z.void(), clientMessage: z.number(), output: z.number() },
  /** A bidirectional stream: each message is echoed back as it arrives; the result is how many were echoed. */
  chat: { kind: 'bidiStream', input: z.void(), clientMessage: z.unknown(), serverMessage: z.unknown(), output: z.object({ echoed: z.number().int() }) },
});

/** createEchoService returns the Echo handlers with a fresh notification counter. */
export function createEchoService(): ServiceImpl<typeof Echo> {
  let received = 0;
  return {
    echo: (value) => value,
    add: ({ a, b }) => a + b,
    sleep: async ({ ms }, ctx) => {
      // The signal's reason is the RpcError (CANCELLED or DEADLINE_EXCEEDED) the server answers with.
      await delay(ms, undefined, { signal: ctx.signal }).catch(() => {
        throw ctx.signal.reason;
      });
      return { slept: ms };
    },
    fail: ({ code, message }) => {
      throw new RpcError(code, message);
    },
    crash: () => {
      throw new Error('crash(): secret internal detail that must stay on the server');
    },
    notify: () => {
      received++;
    },
    count: () => received,
    ticks: async function* ({ n, ms = 0 }, ctx) {
      for (let i = 0; i < n; i++) {
        if (ms > 0 && i > 0) {
          await delay(ms, undefined, { signal: ctx.signal }).catch(() => {
            throw ctx.signal.reason;
          });
        }
        yield i;
      }
      return { sent: n };
    },
    sum: async (_params, numbers) => {
      let total = 0;
      for await (const value of numbers) total += value;
      return total;
    },
    chat: async function* (_params, messages) {
      let echoed = 0;
      for await (const message of messages) {
        yield message;
        echoed++;
      }
      return { echoed };
    },
  };
}
