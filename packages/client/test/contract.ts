/** Shop: the contract the typed-client tests call. Defined here so the client tests depend on no other package. */
import { z } from 'zod';
import { defineService } from '@tunnelrpc/protocol';

/** Shop has one method of each kind createClient distinguishes. */
export const Shop = defineService('Shop', {
  /** A call with a strict object input and an object output (unknown keys are stripped on the client). */
  price: { input: z.strictObject({ sku: z.string(), qty: z.number().int() }), output: z.object({ cents: z.number().int() }) },
  /** A call with no input. */
  ping: { input: z.void(), output: z.literal('pong') },
  /** A call with no input and no result (the server answers nil). */
  clear: { input: z.void(), output: z.void() },
  /** A call whose output schema transforms the wire value. */
  length: { input: z.string(), output: z.string().transform((text) => text.length) },
  /** A notification. */
  log: { input: z.object({ line: z.string() }), output: z.void(), notification: true },
  /** A notification with no input. */
  tick: { input: z.void(), output: z.void(), notification: true },
});
