/**
 * What the CLI learns from the server's tunnelrpc.Reflection: whether a method exists (with the nearest names when
 * it does not), and the JSON Schema its params must meet, checked before anything is sent.
 */
import { z } from 'zod';
import { RpcError, UNREPRESENTABLE_KEY, escapePeerText, type MethodDescription, type ServiceDescription } from '@tunnelrpc/protocol';
import { editDistance } from '@tunnelrpc/protocol/internal';

/** findMethod returns the description of `path` (Service.method), or undefined. @internal */
export function findMethod(services: readonly ServiceDescription[], path: string): MethodDescription | undefined {
  const dot = path.lastIndexOf('.');
  const service = services.find((each) => each.name === path.slice(0, dot));
  return service?.methods.find((each) => each.name === path.slice(dot + 1));
}

/**
 * unknownMethod is the error every subcommand gives for a method the server does not have: UNIMPLEMENTED (the code
 * the server itself answers), with up to three names close to the one given. @internal
 */
export function unknownMethod(services: readonly ServiceDescription[], path: string, url: string): RpcError {
  const names = services.flatMap((service) => service.methods.map((method) => `${service.name}.${method.name}`));
  const near = nearestNames(path, names);
  const hint = near.length > 0 ? `; did you mean ${near.map((name) => escapePeerText(name, 200)).join(', ')}?` : '';
  return new RpcError('UNIMPLEMENTED', `${url} has no method ${escapePeerText(path, 200)}${hint} (tunnelrpc list ${url} shows every method)`, { mayHaveRun: false });
}

/** nearestNames returns up to three of `names` within a small edit distance of `wanted`, nearest first. @internal */
export function nearestNames(wanted: string, names: readonly string[]): string[] {
  const lower = wanted.toLowerCase();
  // Allow about one typo in four characters: "Stock.reserv" finds "Stock.reserve", "Foo.bar" finds nothing.
  const limit = Math.max(2, Math.floor(wanted.length / 4));
  return names
    .map((name) => ({ name, distance: boundedEditDistance(lower, name.toLowerCase()) }))
    .filter((each) => each.distance <= limit)
    .sort((a, b) => a.distance - b.distance || a.name.localeCompare(b.name))
    .slice(0, 3)
    .map((each) => each.name);
}

// The names come from the server: their length bounds the cost (a method name is at most a few hundred characters).
function boundedEditDistance(a: string, b: string): number {
  return a.length > 400 || b.length > 400 ? Number.POSITIVE_INFINITY : editDistance(a, b);
}

/**
 * checkParams checks `params` against a described params schema (JSON Schema from the server) and returns the
 * INVALID_ARGUMENT error the server would give, or undefined when they pass or the schema cannot be checked here
 * (it holds parts JSON cannot express, or zod cannot read it: the server still checks). @internal
 */
export function checkParams(path: string, schema: unknown, params: unknown): RpcError | undefined {
  if (typeof schema !== 'object' || schema === null || JSON.stringify(schema).includes(UNREPRESENTABLE_KEY)) return undefined;
  let validator: z.ZodType;
  try {
    validator = z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
  } catch {
    return undefined;
  }
  // JSON has no undefined: a method without params ("no JSON given") is sent nil, which the server reads as absent.
  const result = validator.safeParse(params === null && !validator.safeParse(null).success ? undefined : params);
  if (result.success) return undefined;
  const issues = result.error.issues.slice(0, 10).map((issue) => ({ path: issue.path.map((key) => (typeof key === 'number' ? key : escapePeerText(String(key), 64))), message: issue.message }));
  const lines = issues.map((issue) => `${issue.path.length === 0 ? '(params)' : issue.path.join('.')}: ${issue.message}`);
  return new RpcError('INVALID_ARGUMENT', `the params do not match the schema ${escapePeerText(path, 200)} describes, so nothing was sent: ${lines.join('; ')} (tunnelrpc describe shows the schema; --no-validate sends anyway)`, { mayHaveRun: false, issues });
}
