/**
 * The contracts of the services every RpcServer serves unless told not to: health (after grpc.health.v1) and
 * reflection (every service and method with the JSON Schema of its params and result). They live here so that the
 * server implements them and the client and CLI call them from one definition.
 */
import { z } from 'zod';
import { defineService, methodKind, type MethodSpec } from './contract.js';

/** SERVING_STATUSES are the answers of tunnelrpc.Health.check. */
export const SERVING_STATUSES = ['SERVING', 'NOT_SERVING', 'NOT_FOUND'] as const;

/** ServingStatus is one of SERVING_STATUSES. */
export type ServingStatus = (typeof SERVING_STATUSES)[number];

/**
 * Health is `tunnelrpc.Health`: `check({ service })` answers SERVING or NOT_SERVING for the server (no service, or
 * "") or for a registered service, and NOT_FOUND for a service the server does not have.
 */
export const Health = defineService('tunnelrpc.Health', {
  check: {
    input: z.strictObject({ service: z.string().max(200).optional() }).optional(),
    output: z.object({ status: z.enum(SERVING_STATUSES) }),
    idempotent: true,
  },
});

/** UNREPRESENTABLE_KEY marks, in a JSON Schema from reflection, a part JSON Schema cannot express; its value names the zod type. */
export const UNREPRESENTABLE_KEY = 'x-tunnelrpc-unrepresentable';

const methodDescription = z.object({
  /** Method name, without the service. */
  name: z.string(),
  /** `unary` (a call with an answer), `notification` (no answer), or the stream kind. */
  kind: z.enum(['unary', 'notification', 'serverStream', 'clientStream', 'bidiStream']),
  idempotent: z.boolean(),
  /** JSON Schema (draft 2020-12) of the params, as the caller sends them. */
  params: z.unknown(),
  /** JSON Schema of the result, as the handler returns it. */
  result: z.unknown(),
  /** JSON Schema of each stream message the client sends (clientStream, bidiStream); what `--stdin` takes. */
  clientMessage: z.unknown().optional(),
  /** JSON Schema of each stream message the server sends (serverStream, bidiStream). */
  serverMessage: z.unknown().optional(),
  /** The method's own longest deadline in ms, when its contract declares one. */
  maxTimeout: z.number().int().optional(),
});

/** MethodDescription is one method as Reflection.list describes it. */
export type MethodDescription = z.output<typeof methodDescription>;

const serviceDescription = z.object({ name: z.string(), methods: z.array(methodDescription) });

/** ServiceDescription is one service as Reflection.list describes it. */
export type ServiceDescription = z.output<typeof serviceDescription>;

/** Reflection is `tunnelrpc.Reflection`: `list()` describes every service and method the server has. */
export const Reflection = defineService('tunnelrpc.Reflection', {
  list: { input: z.void(), output: z.object({ services: z.array(serviceDescription) }), idempotent: true },
});

/**
 * describeMethod gives a method's reflection entry: its kind and the JSON Schemas of params and result as they
 * travel (the input side of each schema: what callers send and handlers return), from zod's toJSONSchema. Parts JSON Schema cannot express (bigint, Date, Map, Set, …)
 * become `{ "x-tunnelrpc-unrepresentable": "<zod type>" }`; a schema zod cannot convert at all becomes that alone.
 */
export function describeMethod(name: string, spec: MethodSpec): MethodDescription {
  return {
    name,
    kind: spec.notification === true ? 'notification' : methodKind(spec),
    idempotent: spec.idempotent === true,
    params: jsonSchemaOf(spec.input, 'input'),
    // What travels is what the handler returns, the input side of the output schema; the client then parses it.
    result: jsonSchemaOf(spec.output, 'input'),
    ...(spec.clientMessage === undefined ? {} : { clientMessage: jsonSchemaOf(spec.clientMessage, 'input') }),
    ...(spec.serverMessage === undefined ? {} : { serverMessage: jsonSchemaOf(spec.serverMessage, 'input') }),
    ...(spec.maxTimeout === undefined ? {} : { maxTimeout: spec.maxTimeout }),
  };
}

function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): unknown {
  try {
    return z.toJSONSchema(schema, {
      io,
      unrepresentable: (ctx) => ({ [UNREPRESENTABLE_KEY]: (ctx.zodSchema as { _zod: { def: { type: string } } })._zod.def.type }),
    });
  } catch (error) {
    return { [UNREPRESENTABLE_KEY]: 'schema', description: error instanceof Error ? error.message.slice(0, 200) : 'not convertible' };
  }
}
