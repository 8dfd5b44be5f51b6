/**
 * Service contracts: one shared definition, written with zod, from which both the server's handler types and the
 * client's call types are inferred.
 */
import type { z } from 'zod';
import { RpcError } from './errors.js';
import { escapePeerText, quotePeerText } from './peer-text.js';
import { findWireProblem, fromWireValue, type WireProblem } from './wire-values.js';
import { isErrorCode } from './errors.js';

import type { MethodKind, MethodSpec } from './method-spec.js';
import { editDistance } from './edit-distance.js';

export type { MethodKind, MethodSpec } from './method-spec.js';

const METHOD_KINDS: readonly MethodKind[] = ['unary', 'serverStream', 'clientStream', 'bidiStream'];

/** methodKind is a spec's kind, 'unary' when unset. */
export function methodKind(spec: MethodSpec): MethodKind {
  return spec.kind ?? 'unary';
}

/** ServiceMethods maps method names to their specs. */
export type ServiceMethods = { readonly [method: string]: MethodSpec };

/** ServiceContract is what defineService returns: a service name and its methods, shared by client and server. */
export interface ServiceContract<Name extends string = string, Methods extends ServiceMethods = ServiceMethods> {
  readonly name: Name;
  readonly methods: Methods;
}

/** InputOf is the params type a caller passes to a method (before zod transforms). */
export type InputOf<M extends MethodSpec> = z.input<M['input']>;
/** ParsedInputOf is the params type a handler receives (after zod parsing). */
export type ParsedInputOf<M extends MethodSpec> = z.output<M['input']>;
/** OutputOf is the result type a caller receives (after zod parsing). */
export type OutputOf<M extends MethodSpec> = z.output<M['output']>;
/** ReturnOf is the result type a handler returns (before zod parsing on the client). */
export type ReturnOf<M extends MethodSpec> = z.input<M['output']>;
/** ClientMessageOf is a client-to-server stream message as the client sends it (before zod parsing). */
export type ClientMessageOf<M extends MethodSpec> = M extends { readonly clientMessage: infer S extends z.ZodType } ? z.input<S> : never;
/** ParsedClientMessageOf is a client-to-server stream message as the handler receives it (after zod parsing). */
export type ParsedClientMessageOf<M extends MethodSpec> = M extends { readonly clientMessage: infer S extends z.ZodType } ? z.output<S> : never;
/** ServerMessageOf is a server-to-client stream message as the handler yields it (before zod parsing). */
export type ServerMessageOf<M extends MethodSpec> = M extends { readonly serverMessage: infer S extends z.ZodType } ? z.input<S> : never;
/** ParsedServerMessageOf is a server-to-client stream message as the client receives it (after zod parsing). */
export type ParsedServerMessageOf<M extends MethodSpec> = M extends { readonly serverMessage: infer S extends z.ZodType } ? z.output<S> : never;

/**
 * ExactMethods makes a method spec exact: a key that MethodSpec does not have (a misspelt `idempotant: true`) becomes
 * a type error instead of being ignored, which would silently change retry behaviour.
 */
export type ExactMethods<Methods> = {
  readonly [K in keyof Methods]: Methods[K] & { readonly [Key in Exclude<keyof Methods[K], keyof MethodSpec>]: never };
};

const SERVICE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const METHOD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SPEC_KEYS: readonly string[] = ['input', 'output', 'idempotent', 'notification', 'kind', 'clientMessage', 'serverMessage', 'maxTimeout', 'errors'] satisfies ReadonlyArray<keyof MethodSpec>;

/**
 * defineService declares a service contract. Methods are called on the wire as `"<name>.<method>"`. It throws
 * RpcError INVALID_ARGUMENT for a bad name, a method spec with a key MethodSpec does not have or without zod
 * schemas, and a schema holding a part the wire cannot carry (PROTOCOL.md "Values and zod types"): z.symbol(),
 * z.function(), z.promise(), z.file(), z.custom() and z.instanceof() of classes other than Date, Uint8Array and
 * Buffer, and unions whose options look the same on the wire (number and bigint; array, Set and Map).
 *
 * @example
 * const Echo = defineService('Echo', {
 *   add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
 * });
 */
export function defineService<const Name extends string, const Methods extends ServiceMethods>(
  name: Name,
  methods: Methods & ExactMethods<Methods>,
): ServiceContract<Name, Methods> {
  if (!SERVICE_NAME.test(name)) {
    throw new RpcError('INVALID_ARGUMENT', `service name ${JSON.stringify(name)} must be dot-separated identifiers, like "Echo" or "billing.Invoices"`);
  }
  for (const method of Object.keys(methods)) {
    // "__proto__" would set the prototype of the typed client's method table instead of adding a method.
    if (!METHOD_NAME.test(method) || method === '__proto__') {
      throw new RpcError('INVALID_ARGUMENT', `method name ${JSON.stringify(method)} of service ${name} must be an identifier (letters, digits, _)`);
    }
    checkMethodSpec(`${name}.${method}`, methods[method]);
    checkKind(name, method, methods[method]!);
  }
  return Object.freeze({ name, methods });
}

function checkKind(service: string, method: string, spec: MethodSpec): void {
  const kind = spec.kind ?? 'unary';
  const where = `method ${service}.${method}`;
  if (!METHOD_KINDS.includes(kind)) {
    throw new RpcError('INVALID_ARGUMENT', `${where} has kind ${JSON.stringify(kind)}; use one of ${METHOD_KINDS.join(', ')}`);
  }
  const needsClient = kind === 'clientStream' || kind === 'bidiStream';
  const needsServer = kind === 'serverStream' || kind === 'bidiStream';
  if (needsClient !== (spec.clientMessage !== undefined) || (needsClient && typeof spec.clientMessage?.safeParse !== 'function')) {
    throw new RpcError('INVALID_ARGUMENT', needsClient ? `${where} is a ${kind}: give clientMessage a zod schema` : `${where} is ${kind}: remove clientMessage, the client sends no stream messages`);
  }
  if (needsServer !== (spec.serverMessage !== undefined) || (needsServer && typeof spec.serverMessage?.safeParse !== 'function')) {
    throw new RpcError('INVALID_ARGUMENT', needsServer ? `${where} is a ${kind}: give serverMessage a zod schema` : `${where} is ${kind}: remove serverMessage, the server sends no stream messages`);
  }
  if (kind !== 'unary' && spec.notification === true) {
    throw new RpcError('INVALID_ARGUMENT', `${where} is a ${kind}, which cannot be a notification; remove notification: true`);
  }
}

function checkMethodSpec(path: string, spec: unknown): void {
  if (typeof spec !== 'object' || spec === null) {
    throw new RpcError('INVALID_ARGUMENT', `method ${path} needs zod schemas in both input and output; its spec is not an object`);
  }
  for (const key of Object.keys(spec)) {
    if (SPEC_KEYS.includes(key)) continue;
    const guess = closest(key, SPEC_KEYS);
    throw new RpcError(
      'INVALID_ARGUMENT',
      `method ${path} has the unknown key ${JSON.stringify(key)}${guess === undefined ? '' : ` (did you mean "${guess}"?)`}; a method spec takes ${SPEC_KEYS.join(', ')}`,
      { method: path, key },
    );
  }
  const { input, output, idempotent, notification, clientMessage, serverMessage, maxTimeout } = spec as Record<string, unknown>;
  if (maxTimeout !== undefined && !(typeof maxTimeout === 'number' && Number.isInteger(maxTimeout) && maxTimeout >= 1 && maxTimeout <= 2_147_483_647)) {
    throw new RpcError('INVALID_ARGUMENT', `method ${path} has maxTimeout ${String(maxTimeout).slice(0, 40)}; it must be a whole number of ms from 1 to 2147483647, or left out`, { method: path, key: 'maxTimeout' });
  }
  for (const [side, schema] of [['input', input], ['output', output]] as const) {
    if (!isZodSchema(schema)) {
      throw new RpcError('INVALID_ARGUMENT', `method ${path} needs zod schemas in both input and output; its ${side} is not a zod 4 schema`);
    }
    const problem = findWireProblem(schema);
    if (problem !== undefined) throw wireProblemError(path, side, problem);
  }
  // Stream message schemas, when given, obey the same wire mapping (checkKind says which a kind needs).
  for (const [side, schema] of [['clientMessage', clientMessage], ['serverMessage', serverMessage]] as const) {
    if (schema === undefined || !isZodSchema(schema)) continue;
    const problem = findWireProblem(schema);
    if (problem !== undefined) throw wireProblemError(path, side, problem);
  }
  checkDeclaredErrors(path, (spec as { errors?: unknown }).errors);
  for (const [key, flag] of [['idempotent', idempotent], ['notification', notification]] as const) {
    if (flag !== undefined && typeof flag !== 'boolean') {
      throw new RpcError('INVALID_ARGUMENT', `method ${path} has ${key}: ${typeof flag}; it must be true, false or left out`, { method: path, key });
    }
  }
}

function checkDeclaredErrors(path: string, errors: unknown): void {
  if (errors === undefined) return;
  if (typeof errors !== 'object' || errors === null || Array.isArray(errors)) {
    throw new RpcError('INVALID_ARGUMENT', `method ${path} has errors that are not an object; give { CODE: zod schema of its data }`, { method: path, key: 'errors' });
  }
  for (const [code, schema] of Object.entries(errors)) {
    if (!isErrorCode(code)) {
      throw new RpcError('INVALID_ARGUMENT', `method ${path} declares the error ${JSON.stringify(code)}, which is not an error code; use one of the codes in PROTOCOL.md 6, such as FAILED_PRECONDITION`, { method: path, key: 'errors', code });
    }
    if (!isZodSchema(schema)) {
      throw new RpcError('INVALID_ARGUMENT', `method ${path} declares the error ${code} without a zod 4 schema of its data (z.void() for none)`, { method: path, key: 'errors', code });
    }
    const problem = findWireProblem(schema);
    if (problem !== undefined) throw wireProblemError(path, `errors.${code}`, problem);
  }
}

// zod 4 schemas carry their definition in `_zod`; a zod 3 schema has safeParse but none of what the wire mapping reads.
function isZodSchema(value: unknown): value is z.ZodType {
  return typeof value === 'object' && value !== null && '_zod' in value && typeof (value as { safeParse?: unknown }).safeParse === 'function';
}

function wireProblemError(method: string, side: string, problem: WireProblem): RpcError {
  const where = side + problem.path.map((segment) => (/^[[<|&]/.test(segment) ? segment : `.${segment}`)).join('');
  return new RpcError(
    'INVALID_ARGUMENT',
    `method ${method}: ${problem.type} at ${where} cannot cross the wire: ${problem.reason}`,
    { method, side, path: [...problem.path], type: problem.type },
  );
}

// The known key one or two edits away from a misspelt one, to name in the error.
function closest(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** methodPath is the wire name of a contract method: `"Service.method"`. */
export function methodPath(contract: ServiceContract, method: string): string {
  return `${contract.name}.${method}`;
}

/**
 * parseWithSchema maps a decoded value to the schema's input form (fromWireValue: integers to bigints, arrays to
 * Sets and Maps, nil to undefined where the schema takes undefined but not null), runs the zod schema, and returns
 * its issues on failure. Params (server) and results (client) both go through it. A nil that the schema still
 * refuses is tried once more as undefined. A schema that throws (a stack overflow on deep input) is reported as a
 * failure, not thrown.
 */
export function parseWithSchema(
  schema: z.ZodType,
  value: unknown,
): { success: true; data: unknown } | { success: false; issues: z.core.$ZodIssue[] } {
  try {
    let result = schema.safeParse(fromWireValue(schema, value));
    if (!result.success && value === null) {
      const retry = schema.safeParse(undefined);
      if (retry.success) result = retry;
    }
    return result.success ? { success: true, data: result.data } : { success: false, issues: result.error.issues };
  } catch (error) {
    const message = error instanceof RangeError ? 'value nested too deeply to validate' : 'schema threw while validating';
    return { success: false, issues: [{ code: 'custom', path: [], message, input: undefined }] };
  }
}

// Bounds on the issues an INVALID_ARGUMENT carries: a million wrong elements must not become a 16 MB error
// (SECURITY.md, case T15).
const MAX_ISSUES = 10;
const MAX_ISSUES_BYTES = 4096;

/** WireIssue is one validation issue as sent in INVALID_ARGUMENT data. */
export interface WireIssue { path: (string | number)[]; code: string; message: string }

/**
 * summarizeIssues keeps the first 10 issues, at most 4 KiB of them, in a plain form fit for the wire. Peer input
 * is never echoed: only paths, codes and zod's messages.
 */
export function summarizeIssues(issues: readonly z.core.$ZodIssue[]): { issues: WireIssue[]; total: number } {
  const out: WireIssue[] = [];
  let bytes = 0;
  for (const issue of issues) {
    if (out.length >= MAX_ISSUES) break;
    // Paths and zod's messages can hold the peer's own keys (an unrecognized key is quoted raw): bound and escape
    // them, since they reach the caller and the server's log.
    const wire: WireIssue = {
      path: issue.path.slice(0, 16).map((key) => (typeof key === 'number' ? key : escapePeerText(String(key), 64))),
      code: issue.code,
      message: issue.code === 'unrecognized_keys' ? unrecognizedKeys(issue.keys) : escapePeerText(issue.message, 200),
    };
    bytes += Buffer.byteLength(JSON.stringify(wire));
    if (bytes > MAX_ISSUES_BYTES) break;
    out.push(wire);
  }
  return { issues: out, total: issues.length };
}

function unrecognizedKeys(keys: readonly string[]): string {
  const shown = keys.slice(0, 5).map((key) => quotePeerText(key, 64)).join(', ');
  return `unrecognized key${keys.length === 1 ? '' : 's'}: ${shown}${keys.length > 5 ? ` and ${keys.length - 5} more` : ''}`;
}

/** formatIssues renders issues as one line: `a: Expected number, received string; b: Required`. */
export function formatIssues(issues: readonly WireIssue[]): string {
  return issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`).join('; ');
}
