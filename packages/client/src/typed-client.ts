/**
 * createClient: a typed view of an RpcClient for one contract. Params and results are typed from the zod schemas;
 * results are checked against the output schema, so a server that breaks the contract is caught at the call.
 */
import {
  RpcError,
  formatIssues,
  methodPath,
  parseWithSchema,
  summarizeIssues,
  toWireValue,
  type InputOf,
  type MethodSpec,
  type OutputOf,
  type ServiceContract,
} from '@tunnelrpc/protocol';
import type { CallOptions, NotifyOptions, RpcClient } from './client.js';

/**
 * MethodCaller is one typed method: a call, or a notification for methods marked `notification: true` (it resolves
 * once written; see RpcClient.notify).
 */
export type MethodCaller<M extends MethodSpec> = M extends { readonly notification: true }
  ? undefined extends InputOf<M>
    ? (input?: InputOf<M>, options?: NotifyOptions) => Promise<void>
    : (input: InputOf<M>, options?: NotifyOptions) => Promise<void>
  : undefined extends InputOf<M>
    ? (input?: InputOf<M>, options?: CallOptions) => Promise<OutputOf<M>>
    : (input: InputOf<M>, options?: CallOptions) => Promise<OutputOf<M>>;

/** TypedClient has one typed method per contract method. */
export type TypedClient<C extends ServiceContract> = { readonly [K in keyof C['methods']]: MethodCaller<C['methods'][K]> };

/**
 * createClient returns a typed client for `contract` over `client`: `await echo.add({ a: 1, b: 2 })`.
 * Wrong params are a compile error; a result that breaks the output schema rejects with INTERNAL.
 */
export function createClient<C extends ServiceContract>(contract: C, client: RpcClient): TypedClient<C> {
  const methods: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(contract.methods)) {
    const path = methodPath(contract, name);
    // Maps travel as [key, value] pairs, which only the schema can ask for (PROTOCOL.md "Values and zod types").
    const input = spec.input;
    methods[name] = spec.notification === true
      ? async (params?: unknown, options?: NotifyOptions): Promise<void> => client.notify(path, toWireValue(input, params), options)
      : async (params?: unknown, options?: CallOptions): Promise<unknown> =>
          checkResult(spec, path, await client.call(path, toWireValue(input, params), spec.idempotent === true ? { ...options, idempotent: true } : options));
  }
  return Object.freeze(methods) as TypedClient<C>;
}

function checkResult(spec: MethodSpec, path: string, result: unknown): unknown {
  const parsed = parseWithSchema(spec.output, result);
  if (parsed.success) return parsed.data;
  const summary = summarizeIssues(parsed.issues);
  throw new RpcError('INTERNAL', `the result of ${path} does not match the contract (${formatIssues(summary.issues)}); client and server disagree on the schema`, summary);
}
