/**
 * Typed errors per method: a contract may declare, per method, the error codes it fails with and a zod schema for
 * each one's data (`errors: { FAILED_PRECONDITION: z.object({ available: z.number() }) }`). The server checks the
 * data a handler throws against it before sending; the typed client checks what arrives and marks the error, so
 * that `error.is(Stock.methods.reserve, 'FAILED_PRECONDITION')` narrows `error.data` to the declared type. Codes a
 * method does not declare stay plain RpcErrors, as before.
 */
import type { z } from 'zod';
import { RpcError, markDeclared, type ErrorCode } from './errors.js';
import { formatIssues, parseWithSchema, summarizeIssues } from './contract.js';
import type { MethodSpec } from './method-spec.js';
import { toWireValue } from './wire-values.js';

export type { DeclaredErrors } from './method-spec.js';
export type { DeclaredCodeOf, DeclaredRpcError, ErrorDataOf, MethodErrorOf } from './errors.js';

// The server adds mayHaveRun to object data (the handler ran); it is transport bookkeeping, not the method's data.
function withoutMayHaveRun(data: unknown): { data: unknown; mayHaveRun: unknown } {
  if (typeof data !== 'object' || data === null || Array.isArray(data) || !('mayHaveRun' in data)) return { data, mayHaveRun: undefined };
  const { mayHaveRun, ...rest } = data as Record<string, unknown>;
  return { data: rest, mayHaveRun };
}

function schemaFor(spec: MethodSpec, code: ErrorCode): z.ZodType | undefined {
  const errors = spec.errors;
  return errors !== undefined && Object.hasOwn(errors, code) ? errors[code] : undefined;
}

/**
 * checkThrownError checks, on the server, the data of an RpcError a handler threw with a declared code, and lays it
 * out for the wire. Data that breaks the declared schema becomes INTERNAL (the handler broke the contract; the
 * caller could not have read it). Anything else passes unchanged. @internal
 */
export function checkThrownError(spec: MethodSpec, path: string, thrown: unknown): unknown {
  if (!(thrown instanceof RpcError)) return thrown;
  const schema = schemaFor(spec, thrown.code);
  if (schema === undefined) return thrown;
  const parsed = schema.safeParse(thrown.data);
  if (!parsed.success) {
    const { issues } = summarizeIssues(parsed.error.issues);
    return new RpcError('INTERNAL', `the handler of ${path} failed with ${thrown.code}, but its data does not match the contract's errors.${thrown.code} schema (${formatIssues(issues)}); fix the handler or the contract`, { mayHaveRun: true }, { cause: thrown });
  }
  return new RpcError(thrown.code, thrown.message, toWireValue(schema, thrown.data), { cause: thrown });
}

/**
 * checkReceivedError checks, on the typed client, the data of an error of a declared code: on success the error
 * comes back with its data parsed and marked as declared by `spec` (RpcError.is then narrows it); data that breaks
 * the schema becomes INTERNAL, as a result that breaks the output schema does. Other errors pass unchanged. @internal
 */
export function checkReceivedError(spec: MethodSpec, path: string, received: unknown): unknown {
  if (!(received instanceof RpcError)) return received;
  const schema = schemaFor(spec, received.code);
  if (schema === undefined) return received;
  const { data, mayHaveRun } = withoutMayHaveRun(received.data);
  const parsed = parseWithSchema(schema, data);
  if (!parsed.success) {
    const summary = summarizeIssues(parsed.issues);
    return new RpcError('INTERNAL', `${path} failed with ${received.code}, but its data does not match the contract's errors.${received.code} schema (${formatIssues(summary.issues)}); client and server disagree on the schema`, { ...summary, mayHaveRun: mayHaveRun ?? true }, { cause: received });
  }
  const value = parsed.data;
  const keep = mayHaveRun !== undefined && typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Map) && !(value instanceof Set) && !(value instanceof Date);
  const error = new RpcError(received.code, received.message, keep ? { ...(value as Record<string, unknown>), mayHaveRun } : value, { cause: received });
  markDeclared(error, spec);
  return error;
}
