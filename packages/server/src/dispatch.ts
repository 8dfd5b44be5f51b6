/**
 * The method table and the mapping of handler outcomes to wire errors (Go's service.call; wire-v1 "Error codes").
 */
import { z } from 'zod';
import {
  RpcError,
  quotePeerText,
  type MethodKind,
  type CallFn,
  type MethodSpec,
  type ObservedMethod,
  type ServiceContract,
} from '@tunnelrpc/protocol';
import {
  callTypeOf,
  observedMethod,
  checkThrownError,
  formatIssues,
  fromWireValue,
  methodPath,
  parseWithSchema,
  toWireValue,
  summarizeIssues,
  isPlainMap,
  methodKind,
} from '@tunnelrpc/protocol/internal';
import type { CallContext, ServiceImpl } from './handler-types.js';
import { streamChain, wrapHandler, type HandlerWrapping } from './intercept.js';
import type { LogEntry } from './log.js';

/** RegisteredMethod is one row of the method table. @internal */
export interface RegisteredMethod {
  readonly path: string;
  readonly spec: MethodSpec;
  readonly kind: MethodKind;
  readonly handler: (input: unknown, ...rest: unknown[]) => unknown;
  /** For a stream method with interceptors: the chain its streams run through (intercept.ts streamChain). */
  readonly streamChain?: CallFn | undefined;
  /** For a stream method: run its handler as the ambient call (ServerOptions.propagateContext). */
  readonly ambient?: boolean;
  /** What observers are told of its calls (a stream's, or a unary method's calls)... */
  readonly observed: ObservedMethod;
  /** ...and of its notifications. */
  readonly observedNotification: ObservedMethod;
}

/**
 * What observers are told of calls to a method nobody registered: one method for every such name, so that a
 * caller's typos cannot grow a series each. @internal
 */
export const UNKNOWN_OBSERVED = observedMethod('unknown.unknown', 'unary', false);
/** UNKNOWN_OBSERVED_NOTIFICATION is UNKNOWN_OBSERVED for notifications. @internal */
export const UNKNOWN_OBSERVED_NOTIFICATION = observedMethod('unknown.unknown', 'notification', false);

/** MethodTable maps wire names to handlers. A Map, so "__proto__" or "toString" is simply not found. @internal */
export class MethodTable {
  readonly #methods = new Map<string, RegisteredMethod>();
  readonly #wrapping: HandlerWrapping;

  /** `wrapping` says what each handler is wrapped in at add() time (interceptors, the ambient call). */
  constructor(wrapping: HandlerWrapping = { interceptors: [], propagateContext: false }) {
    this.#wrapping = wrapping;
  }

  add<C extends ServiceContract>(contract: C, impl: ServiceImpl<C>): void {
    for (const name of Object.keys(contract.methods)) {
      const path = methodPath(contract, name);
      const handler: unknown = (impl as Record<string, unknown>)[name];
      if (typeof handler !== 'function') {
        throw new RpcError('INVALID_ARGUMENT', `register(${contract.name}): no handler function for method ${name}`);
      }
      if (this.#methods.has(path)) {
        throw new RpcError('ALREADY_EXISTS', `method ${path} is registered already; register each service once`);
      }
    }
    for (const [name, spec] of Object.entries(contract.methods)) {
      const path = methodPath(contract, name);
      const kind = methodKind(spec);
      const bound = (impl as Record<string, (input: unknown, ...rest: unknown[]) => unknown>)[name]!.bind(impl);
      const handler = spec.errors === undefined ? bound : checkingDeclaredErrors(bound, spec, path, kind);
      if (kind === 'unary') {
        const run = wrapHandler(path, handler as (input: unknown, ctx: CallContext) => unknown, this.#wrapping) as RegisteredMethod['handler'];
        this.#methods.set(path, { path, spec, kind, handler: run, observed: observedMethod(path, 'unary', true), observedNotification: observedMethod(path, 'notification', true) });
      } else {
        // A stream's handler runs as registered; the same interceptors wrap its whole life (ServerStream.start).
        const observed = observedMethod(path, callTypeOf(kind, false), true);
        this.#methods.set(path, { path, spec, kind, handler, streamChain: streamChain(this.#wrapping), ambient: this.#wrapping.propagateContext, observed, observedNotification: observed });
      }
    }
  }

  get(method: string): RegisteredMethod | undefined {
    return this.#methods.get(method);
  }

  /**
   * unknown returns a method for a request to an unregistered name when interceptors are configured, so that they
   * see (and metrics count) it too; its handler answers UNIMPLEMENTED. Undefined without interceptors: the
   * connection then answers UNIMPLEMENTED itself, at no cost.
   */
  unknown(method: string): RegisteredMethod | undefined {
    if (this.#wrapping.interceptors.length === 0) return undefined;
    const fail = (): never => {
      throw unknownMethod(method);
    };
    return {
      path: method,
      spec: UNKNOWN_SPEC,
      kind: 'unary',
      handler: wrapHandler(method, fail, this.#wrapping, false) as RegisteredMethod['handler'],
      observed: UNKNOWN_OBSERVED,
      observedNotification: UNKNOWN_OBSERVED_NOTIFICATION,
    };
  }

  /** size counts the registered methods. */
  get size(): number {
    return this.#methods.size;
  }

  /** entries lists every registered method, in registration order. */
  entries(): IterableIterator<RegisteredMethod> {
    return this.#methods.values();
  }
}

// Params of a request to an unknown method are taken as they come: the handler only answers UNIMPLEMENTED.
const UNKNOWN_SPEC: MethodSpec = { input: z.unknown(), output: z.unknown() };

/** unknownMethod is the UNIMPLEMENTED answer for a method nobody registered. @internal */
export function unknownMethod(method: string): RpcError {
  const error = new RpcError('UNIMPLEMENTED', `method ${quotePeerText(method, 200)} is not implemented by this server; check the service and method name`, { mayHaveRun: false });
  NOTHING_RAN.add(error);
  return error;
}

// Errors the server made where no handler exists (an unknown method passed through the interceptors): they keep
// mayHaveRun: false when they come back out of the interceptor chain.
const NOTHING_RAN = new WeakSet<RpcError>();

/**
 * parseParams validates params with the method's input schema, after mapping wire forms to the schema's types
 * (parseWithSchema); on failure INVALID_ARGUMENT with capped issues. With `validate` false
 * (ServerOptions.validateParams, trusted peers) they pass unchecked but still mapped, so that a handler typed for
 * a bigint, Set or Map gets one (PROTOCOL.md 4.8).
 */
export function parseParams(method: RegisteredMethod, params: unknown, validate = true): { ok: true; input: unknown } | { ok: false; error: RpcError } {
  if (!validate) {
    try {
      return { ok: true, input: fromWireValue(method.spec.input, params) };
    } catch {
      // A stack overflow on params nested deeper than the schema's walk can go.
      return { ok: false, error: new RpcError('INVALID_ARGUMENT', `invalid params for ${method.path}: value nested too deeply to map`, { mayHaveRun: false }) };
    }
  }
  let result = parseWithSchema(method.spec.input, params);
  // PROTOCOL.md 5.0 rule 6: an empty map is accepted wherever nil is (a caller in another language sends {}, gRPC's
  // Empty, for a method that takes no params).
  if (!result.success && isPlainMap(params) && Object.keys(params).length === 0) {
    const retry = parseWithSchema(method.spec.input, null);
    if (retry.success) result = retry;
  }
  if (result.success) return { ok: true, input: result.data };
  const summary = summarizeIssues(result.issues);
  return {
    ok: false,
    error: new RpcError('INVALID_ARGUMENT', `invalid params for ${method.path}: ${formatIssues(summary.issues)}`, { ...summary, mayHaveRun: false }),
  };
}

/**
 * prepareResult checks a handler's result against the method's output schema (unless `validate` is off) and lays
 * it out in wire form (Maps as pairs, PROTOCOL.md 4.8). A result that does not match is the server's bug, not the
 * caller's: it is logged with the method and the issues, and the caller gets INTERNAL without the values. The
 * result goes out as the handler returned it, not as parsed, so that transforms run once, on the client.
 */
export function prepareResult(method: RegisteredMethod, result: unknown, validate: boolean, log: (entry: LogEntry) => void): { ok: true; value: unknown } | { ok: false; error: RpcError } {
  if (validate) {
    const checked = parseWithSchema(method.spec.output, result);
    if (!checked.success) {
      const summary = summarizeIssues(checked.issues);
      log({ level: 'error', message: `handler returned a result that does not match the contract: ${formatIssues(summary.issues)}`, method: method.path, code: 'INTERNAL' });
      return { ok: false, error: new RpcError('INTERNAL', `the result of ${method.path} does not match its contract; the server logged the details`, { mayHaveRun: true }) };
    }
  }
  try {
    return { ok: true, value: toWireValue(method.spec.output, result) };
  } catch (error) {
    log({ level: 'error', message: 'handler returned a result that cannot be laid out for the wire', method: method.path, code: 'INTERNAL', error });
    return { ok: false, error: new RpcError('INTERNAL', `the result of ${method.path} cannot be sent; the server logged the details`, { mayHaveRun: true }) };
  }
}

/**
 * prepareStreamMessage is prepareResult for one message a stream handler yields: checked against serverMessage
 * (unless `validate` is off) and laid out in wire form. A message that does not match ends the stream INTERNAL.
 */
export function prepareStreamMessage(method: RegisteredMethod, message: unknown, validate: boolean, log: (entry: LogEntry) => void): { ok: true; value: unknown } | { ok: false; error: RpcError } {
  const schema = method.spec.serverMessage!;
  if (validate) {
    const checked = parseWithSchema(schema, message);
    if (!checked.success) {
      const summary = summarizeIssues(checked.issues);
      log({ level: 'error', message: `stream handler yielded a message that does not match the contract: ${formatIssues(summary.issues)}`, method: method.path, code: 'INTERNAL' });
      return { ok: false, error: new RpcError('INTERNAL', `a stream message of ${method.path} does not match its contract; the server logged the details`, { mayHaveRun: true }) };
    }
  }
  try {
    return { ok: true, value: toWireValue(schema, message) };
  } catch (error) {
    log({ level: 'error', message: 'stream handler yielded a message that cannot be laid out for the wire', method: method.path, code: 'INTERNAL', error });
    return { ok: false, error: new RpcError('INTERNAL', `a stream message of ${method.path} cannot be sent; the server logged the details`, { mayHaveRun: true }) };
  }
}

/**
 * checkingDeclaredErrors wraps the handler of a method whose contract declares errors: an RpcError it throws with a
 * declared code has its data checked against that code's schema and laid out for the wire (checkThrownError). A
 * stream handler's iterator is wrapped so that a throw from inside the generator is checked too.
 */
function checkingDeclaredErrors(handler: (input: unknown, ...rest: unknown[]) => unknown, spec: MethodSpec, path: string, kind: MethodKind): (input: unknown, ...rest: unknown[]) => unknown {
  const check = (thrown: unknown): never => {
    throw checkThrownError(spec, path, thrown);
  };
  if (kind === 'serverStream' || kind === 'bidiStream') {
    return (...args) => {
      const iterator = handler(...(args as [unknown, ...unknown[]])) as AsyncIterator<unknown, unknown, undefined>;
      const wrapped: AsyncIterator<unknown, unknown, undefined> = {
        next: () => iterator.next().catch(check),
        ...(iterator.return === undefined ? {} : { return: (value?: unknown) => iterator.return!(value).catch(check) }),
        ...(iterator.throw === undefined ? {} : { throw: (error?: unknown) => iterator.throw!(error).catch(check) }),
      };
      return wrapped;
    };
  }
  return async (...args) => {
    try {
      return await handler(...(args as [unknown, ...unknown[]]));
    } catch (thrown) {
      return check(thrown);
    }
  };
}

/**
 * errorFromHandler maps what a handler threw to the error sent to the caller. RpcError goes as written; anything
 * else becomes INTERNAL with a generic message, and the detail goes to the log only (unless exposed); when the call
 * had ended already (`endedWith`, its signal's reason) nothing is sent, and the throw is logged at debug. Either way
 * the error says `mayHaveRun: true`: the handler ran, so whatever a call it made downstream reported about that
 * other hop (an UNAVAILABLE that "did not run") must not reach our caller as if it were about this call.
 */
export function errorFromHandler(thrown: unknown, method: string, expose: boolean, log: (entry: LogEntry) => void, endedWith?: RpcError): RpcError {
  if (thrown instanceof RpcError) return markMayHaveRun(thrown);
  if (endedWith !== undefined) {
    // The call was over for the caller already (cancel, deadline, disconnect): a handler that obeyed ctx.signal
    // threw its AbortError, nobody gets INTERNAL, and saying so at error level would send readers the wrong way.
    log({ level: 'debug', message: `the call had ended with ${endedWith.code}; the handler's throw after that is ignored`, method, code: endedWith.code, error: thrown });
  } else {
    log({ level: 'error', message: 'handler threw; the caller got INTERNAL', method, code: 'INTERNAL', error: thrown });
  }
  let detail = '';
  if (expose) {
    try {
      detail = thrown instanceof Error ? `: ${thrown.message}` : `: ${String(thrown)}`;
    } catch {
      detail = '';
    }
  }
  return new RpcError('INTERNAL', `internal error in ${method}${detail || '; the server logged the details'}`, { mayHaveRun: true });
}

// The user's data stays as thrown (an array, a string, a map); the flag goes in its own place (toWireError).
function markMayHaveRun(error: RpcError): RpcError {
  if (NOTHING_RAN.has(error) || error.mayHaveRun === true) return error;
  return new RpcError(error.code, error.message, error.data, { cause: error, mayHaveRun: true });
}
