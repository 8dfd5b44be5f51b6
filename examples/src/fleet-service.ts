/**
 * The Fleet service: tells which process answered. The example and cluster servers register it beside Echo, so a
 * client can count how its calls spread over replicas (tests, the README's "Scaling out").
 */
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { defineService } from '@tunnelrpc/protocol';
import type { ServiceImpl } from '@tunnelrpc/server';

/** Fleet is the contract of the replica probe. */
export const Fleet = defineService('Fleet', {
  /** Returns the id of the process that ran the handler. Safe to run twice. */
  whoami: { input: z.void(), output: z.object({ pid: z.number().int() }), idempotent: true },
  /** Works for `ms` (a stand-in for a handler with effects: not idempotent), then returns the process id. */
  work: { input: z.strictObject({ ms: z.number().int().min(0).max(60_000) }), output: z.object({ pid: z.number().int() }) },
});

/** createFleetService returns the Fleet handlers of this process. */
export function createFleetService(): ServiceImpl<typeof Fleet> {
  return {
    whoami: () => ({ pid: process.pid }),
    work: async ({ ms }, ctx) => {
      await delay(ms, undefined, { signal: ctx.signal }).catch(() => {
        throw ctx.signal.reason;
      });
      return { pid: process.pid };
    },
  };
}
