/**
 * createClient: a typed view of an RpcClient for one contract. Params and results are typed from the zod schemas;
 * results are checked against the output schema, so a server that breaks the contract is caught at the call.
 */
import {
  RpcError,
  type ClientMessageOf,
  type InputOf,
  type MethodSpec,
  type OutputOf,
  type ParsedServerMessageOf,
  type ServiceContract,
} from '@tunnelrpc/protocol';
import {
  checkReceivedError,
  formatIssues,
  methodPath,
  parseWithSchema,
  summarizeIssues,
  toWireValue,
} from '@tunnelrpc/protocol/internal';
import type { CallOptions, NotifyOptions, StreamOptions } from './call-options.js';
import type { RpcClient } from './client.js';
import type { BidiStreamCall, ServerStreamCall, StreamCall } from './stream.js';

/** StreamSource is what a client or bidi stream's messages may come from. */
export type StreamSource<T> = AsyncIterable<T> | Iterable<T>;

/**
 * StreamCaller is one typed stream method (PROTOCOL.md 12):
 * - serverStream: `(params, options?)` returns a ServerStreamCall: `for await` its messages (`break` cancels), then
 *   `await call.result`;
 * - clientStream: `(params, messages, options?)` sends the messages as the server grants credit and resolves with
 *   the result;
 * - bidiStream: `(params, messages?, options?)` returns a BidiStreamCall: iterate it, and feed it with `messages`,
 *   or with send() / end(), or pipe through duplex().
 */
export type StreamCaller<M extends MethodSpec> = M extends { readonly kind: 'serverStream' }
  ? undefined extends InputOf<M>
    ? (input?: InputOf<M>, options?: StreamOptions) => ServerStreamCall<ParsedServerMessageOf<M>, OutputOf<M>>
    : (input: InputOf<M>, options?: StreamOptions) => ServerStreamCall<ParsedServerMessageOf<M>, OutputOf<M>>
  : M extends { readonly kind: 'clientStream' }
    ? (input: InputOf<M>, messages: StreamSource<ClientMessageOf<M>>, options?: StreamOptions) => Promise<OutputOf<M>>
    : (input: InputOf<M>, messages?: StreamSource<ClientMessageOf<M>>, options?: StreamOptions) => BidiStreamCall<ClientMessageOf<M>, ParsedServerMessageOf<M>, OutputOf<M>>;

/**
 * MethodCaller is one typed method: a call, or a notification for methods marked `notification: true` (it resolves
 * once written; see RpcClient.notify).
 */
export type MethodCaller<M extends MethodSpec> = M extends { readonly kind: 'serverStream' | 'clientStream' | 'bidiStream' }
  ? StreamCaller<M>
  : M extends { readonly notification: true }
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
    const kind = spec.kind ?? 'unary';
    if (kind !== 'unary') {
      const schemas = { clientMessage: spec.clientMessage, serverMessage: spec.serverMessage };
      const open = (params: unknown, source: StreamSource<unknown> | undefined, options: StreamOptions | undefined): StreamCall => {
        const call = client.stream(path, toWireValue(input, params), kind, options, source, schemas);
        const result = call.result.then(
          (value) => checkResult(spec, path, value),
          (error: unknown) => {
            throw checkReceivedError(spec, path, error);
          },
        );
        // As StreamCall's own: a caller that only iterates sees the error there.
        result.catch(() => {});
        return Object.defineProperty(call, 'result', { value: result });
      };
      methods[name] =
        kind === 'serverStream'
          ? (params?: unknown, options?: StreamOptions) => open(params, undefined, options)
          : kind === 'clientStream'
            ? (params: unknown, messages: StreamSource<unknown>, options?: StreamOptions) => open(params, messages, options).result
            : (params: unknown, messages?: StreamSource<unknown>, options?: StreamOptions) => open(params, messages, options);
      continue;
    }
    methods[name] = spec.notification === true
      ? async (params?: unknown, options?: NotifyOptions): Promise<void> => client.notify(path, toWireValue(input, params), options)
      : spec.errors === undefined
        ? async (params?: unknown, options?: CallOptions): Promise<unknown> =>
            checkResult(spec, path, await client.call(path, toWireValue(input, params), spec.idempotent === true ? { ...options, idempotent: true } : options))
        : async (params?: unknown, options?: CallOptions): Promise<unknown> => {
            let result: unknown;
            try {
              result = await client.call(path, toWireValue(input, params), spec.idempotent === true ? { ...options, idempotent: true } : options);
            } catch (error) {
              // A declared code's data is checked and typed; RpcError.is() then narrows it.
              throw checkReceivedError(spec, path, error);
            }
            return checkResult(spec, path, result);
          };
  }
  return Object.freeze(methods) as TypedClient<C>;
}

function checkResult(spec: MethodSpec, path: string, result: unknown): unknown {
  const parsed = parseWithSchema(spec.output, result);
  if (parsed.success) return parsed.data;
  const summary = summarizeIssues(parsed.issues);
  throw new RpcError('INTERNAL', `the result of ${path} does not match the contract (${formatIssues(summary.issues)}): the server's handler returned a wrong value, or client and server run different versions of the contract (the server's validateResults option tells which)`, summary);
}
