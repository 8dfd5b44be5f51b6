/**
 * The breaking-change check between two versions of a set of contracts (`tunnelrpc breaking old.js new.js`, and
 * findBreakingChanges for tests). It compares what each method's schemas accept, as JSON Schema (describeMethod):
 *
 *   params   every value the old contract let a client send must still be accepted by the new one, or clients
 *            still on the old contract are refused (a method removed, a param made required or removed from a
 *            strict object, a type narrowed, an enum value removed);
 *   results  every value the new server may return must be accepted by the old contract, or old clients fail to
 *            parse it (a result field removed or made optional, a type widened, an enum value added).
 *
 * Those break old clients and fail the check. The reverse direction, a new client against a server still on the
 * old contract (a new method, a new required result field), is reported as a note: deploy servers first.
 */
import { describeMethod } from './builtin-services.js';
import { methodKind, type ServiceContract } from './contract.js';

/** BreakingChange is one difference between two contract versions. */
export interface BreakingChange {
  /** `Service.method`, or the service name for a service removed. */
  readonly method: string;
  /** Where in the method: `params.items[].sku`, `result.total`, `kind`; empty for the method itself. */
  readonly path: string;
  /** What changed and what it breaks, in one sentence. */
  readonly message: string;
  /** 'old-clients': clients on the old contract fail against the new server (the check fails). 'old-servers': a new client fails against an old server until servers are upgraded (a note). */
  readonly breaks: 'old-clients' | 'old-servers';
}

type Schema = Record<string, unknown>;

/**
 * findBreakingChanges compares two versions of a set of contracts (matched by service name) and returns every
 * difference that breaks old clients ('old-clients') or that needs servers upgraded before clients
 * ('old-servers'). Additive changes (a new method, a new optional param, a new result field, an enum value added
 * to params, a limit relaxed) return nothing for old clients.
 */
export function findBreakingChanges(before: readonly ServiceContract[], after: readonly ServiceContract[]): BreakingChange[] {
  const changes: BreakingChange[] = [];
  const afterByName = new Map(after.map((contract) => [contract.name, contract]));
  const beforeNames = new Set(before.map((contract) => contract.name));
  for (const old of before) {
    const current = afterByName.get(old.name);
    if (current === undefined) {
      changes.push({ method: old.name, path: '', message: `service ${old.name} was removed: old clients calling it get UNIMPLEMENTED`, breaks: 'old-clients' });
      continue;
    }
    for (const [name, oldSpec] of Object.entries(old.methods)) {
      const method = `${old.name}.${name}`;
      const newSpec = Object.hasOwn(current.methods, name) ? current.methods[name] : undefined;
      if (newSpec === undefined) {
        changes.push({ method, path: '', message: `${method} was removed: old clients calling it get UNIMPLEMENTED`, breaks: 'old-clients' });
        continue;
      }
      const oldKind = oldSpec.notification === true ? 'notification' : methodKind(oldSpec);
      const newKind = newSpec.notification === true ? 'notification' : methodKind(newSpec);
      if (oldKind !== newKind) {
        changes.push({ method, path: 'kind', message: `${method} changed from ${oldKind} to ${newKind}: old clients call it the old way`, breaks: 'old-clients' });
        continue;
      }
      if (oldSpec.idempotent === true && newSpec.idempotent !== true) {
        changes.push({ method, path: 'idempotent', message: `${method} is no longer idempotent: old clients still retry it after a lost connection, so it may run twice`, breaks: 'old-clients' });
      }
      const oldDescription = describeMethod(name, oldSpec);
      const newDescription = describeMethod(name, newSpec);
      const report = (breaks: BreakingChange['breaks']) => (path: string, message: string): void => {
        // The messages word the old-clients direction; the reverse is a note with one wording.
        const text = breaks === 'old-clients' ? message.split('{who}').join('old clients') : 'differs in a way new clients may fail on against servers still on the old contract; upgrade servers first';
        if (changes.some((each) => each.breaks === breaks && each.method === method && each.path === path && breaks === 'old-servers')) return;
        changes.push({ method, path, message: `${method} ${path}: ${text}`, breaks });
      };
      // Params: the new server must accept what old clients send; old servers must accept what new clients send.
      compare(asSchema(newDescription.params), asSchema(oldDescription.params), 'params', 'params', report('old-clients'));
      compare(asSchema(oldDescription.params), asSchema(newDescription.params), 'params', 'params', report('old-servers'));
      // Results: old clients must accept what the new server returns; new clients what old servers return.
      compare(asSchema(oldDescription.result), asSchema(newDescription.result), 'result', 'result', report('old-clients'));
      compare(asSchema(newDescription.result), asSchema(oldDescription.result), 'result', 'result', report('old-servers'));
      for (const [side, key] of [['client messages', 'clientMessage'], ['server messages', 'serverMessage']] as const) {
        const oldMessage = oldSpec[key];
        const newMessage = newSpec[key];
        if (oldMessage === undefined || newMessage === undefined) continue;
        const oldSchema = asSchema(describeMethod(name, { input: oldMessage, output: oldMessage }).params);
        const newSchema = asSchema(describeMethod(name, { input: newMessage, output: newMessage }).params);
        // Client messages travel as params do, server messages as results do.
        if (key === 'clientMessage') compare(newSchema, oldSchema, side, 'params', report('old-clients'));
        else compare(oldSchema, newSchema, side, 'result', report('old-clients'));
      }
    }
    for (const name of Object.keys(current.methods)) {
      if (!Object.hasOwn(old.methods, name)) {
        changes.push({ method: `${old.name}.${name}`, path: '', message: `${old.name}.${name} is new: old servers answer it UNIMPLEMENTED`, breaks: 'old-servers' });
      }
    }
  }
  for (const contract of after) {
    if (!beforeNames.has(contract.name)) changes.push({ method: contract.name, path: '', message: `service ${contract.name} is new: old servers answer it UNIMPLEMENTED`, breaks: 'old-servers' });
  }
  return changes;
}

function asSchema(value: unknown): Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Schema) : {};
}

type Side = 'params' | 'result';
type Report = (path: string, message: string) => void;

// The branches of a union (anyOf / oneOf), or the schema itself.
function branches(schema: Schema): Schema[] {
  const union = (schema['anyOf'] ?? schema['oneOf']) as unknown;
  return Array.isArray(union) ? union.map(asSchema).flatMap(branches) : [schema];
}

function typesOf(schema: Schema): Set<string> | undefined {
  const type = schema['type'];
  if (typeof type === 'string') return new Set(type === 'integer' ? ['integer'] : [type]);
  if (Array.isArray(type)) return new Set(type.filter((each): each is string => typeof each === 'string'));
  const values = enumOf(schema);
  if (values !== undefined) return new Set(values.map(jsonType));
  return undefined;
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function enumOf(schema: Schema): unknown[] | undefined {
  if (Array.isArray(schema['enum'])) return schema['enum'] as unknown[];
  if ('const' in schema) return [schema['const']];
  return undefined;
}

// An "integer" is a kind of "number": the outer side accepts it if it takes numbers.
function typeAccepted(outer: Set<string>, type: string): boolean {
  return outer.has(type) || (type === 'integer' && outer.has('number'));
}

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function isAny(schema: Schema): boolean {
  return Object.keys(schema).filter((key) => key !== '$schema' && key !== 'description').length === 0;
}

/**
 * compare reports where `inner` accepts a value `outer` refuses: for params, outer is the receiving side (the
 * server), inner the sending side; for results the same with roles swapped. `side` words the messages.
 */
function compare(outer: Schema, inner: Schema, path: string, side: Side, report: Report): void {
  if (isAny(outer)) return;
  const innerBranches = branches(inner);
  const outerBranches = branches(outer);
  if (innerBranches.length > 1 || outerBranches.length > 1) {
    for (const branch of innerBranches) {
      const match = bestBranch(outerBranches, branch);
      if (match === undefined) {
        const type = [...(typesOf(branch) ?? new Set(['a value']))].join(' or ');
        report(path, side === 'params' ? `no longer accepts ${type}: {who} sending one are refused` : `may now be ${type}, which {who} refuse`);
      } else {
        compare(match, branch, path, side, report);
      }
    }
    return;
  }
  const marker = 'x-tunnelrpc-unrepresentable';
  if (outer[marker] !== undefined || inner[marker] !== undefined) {
    if (outer[marker] !== inner[marker]) report(path, `changed from ${show(inner[marker] ?? inner['type'])} to ${show(outer[marker] ?? outer['type'])}`);
    return;
  }
  const outerTypes = typesOf(outer);
  const innerTypes = typesOf(inner);
  if (outerTypes !== undefined) {
    const lost = innerTypes === undefined ? ['any type'] : [...innerTypes].filter((type) => !typeAccepted(outerTypes, type));
    if (lost.length > 0) {
      report(path, side === 'params'
        ? `type narrowed from ${[...(innerTypes ?? ['any'])].join(' or ')} to ${[...outerTypes].join(' or ')}: {who} sending ${lost.join(' or ')} are refused`
        : `type changed from ${[...outerTypes].join(' or ')} to ${[...(innerTypes ?? ['any'])].join(' or ')}: {who} refuse ${lost.join(' or ')}`);
      return;
    }
  }
  compareEnums(outer, inner, path, side, report);
  compareBounds(outer, inner, path, side, report);
  if (innerTypes?.has('object') === true || outerTypes?.has('object') === true) compareObjects(outer, inner, path, side, report);
  if (innerTypes?.has('array') === true || outerTypes?.has('array') === true) compareArrays(outer, inner, path, side, report);
}

// The outer branch that shares a JSON type with the inner one (a nullable's null branch, a union's object branch).
function bestBranch(outer: Schema[], inner: Schema): Schema | undefined {
  const innerTypes = typesOf(inner);
  const any = outer.find(isAny);
  if (any !== undefined) return any;
  if (innerTypes === undefined) return outer.length === 1 ? outer[0] : undefined;
  return outer.find((branch) => {
    const types = typesOf(branch);
    return types !== undefined && [...innerTypes].every((type) => typeAccepted(types, type));
  });
}

function compareEnums(outer: Schema, inner: Schema, path: string, side: Side, report: Report): void {
  const outerValues = enumOf(outer);
  if (outerValues === undefined) return;
  const innerValues = enumOf(inner);
  if (innerValues === undefined) {
    report(path, side === 'params' ? `narrowed to ${outerValues.map(show).join(', ')}: {who} sending other values are refused` : `was ${outerValues.map(show).join(', ')} and may now be any value, which {who} refuse`);
    return;
  }
  const known = new Set(outerValues.map(show));
  for (const value of innerValues) {
    if (known.has(show(value))) continue;
    report(path, side === 'params' ? `enum value ${show(value)} was removed: {who} sending it are refused` : `enum value ${show(value)} was added: {who} refuse it`);
  }
}

const LOWER_BOUNDS = ['minimum', 'exclusiveMinimum', 'minLength', 'minItems', 'minProperties'] as const;
const UPPER_BOUNDS = ['maximum', 'exclusiveMaximum', 'maxLength', 'maxItems', 'maxProperties'] as const;

function compareBounds(outer: Schema, inner: Schema, path: string, side: Side, report: Report): void {
  const tighter = (key: string, stricter: (a: number, b: number) => boolean): void => {
    const limit = outer[key];
    if (typeof limit !== 'number') return;
    const given = inner[key];
    if (typeof given === 'number' && !stricter(limit, given)) return;
    report(path, side === 'params'
      ? `${key} tightened from ${typeof given === 'number' ? given : 'none'} to ${limit}: {who} sending values past it are refused`
      : `${key} relaxed from ${limit} to ${typeof given === 'number' ? given : 'none'}: {who} refuse values past ${limit}`);
  };
  for (const key of LOWER_BOUNDS) tighter(key, (limit, given) => limit > given);
  for (const key of UPPER_BOUNDS) tighter(key, (limit, given) => limit < given);
  for (const key of ['pattern', 'format'] as const) {
    if (outer[key] !== undefined && outer[key] !== inner[key]) {
      report(path, side === 'params' ? `${key} ${show(outer[key])} was added or changed: {who} sending other strings are refused` : `${key} ${show(outer[key])} was dropped or changed: {who} refuse strings that break it`);
    }
  }
}

function compareObjects(outer: Schema, inner: Schema, path: string, side: Side, report: Report): void {
  const outerProps = asSchema(outer['properties']);
  const innerProps = asSchema(inner['properties']);
  const outerRequired = new Set(Array.isArray(outer['required']) ? (outer['required'] as string[]) : []);
  const innerRequired = new Set(Array.isArray(inner['required']) ? (inner['required'] as string[]) : []);
  for (const key of outerRequired) {
    if (innerRequired.has(key)) continue;
    const at = `${path}.${key}`;
    if (side === 'params') report(at, Object.hasOwn(innerProps, key) ? 'was made required: {who} that leave it out are refused' : 'is a new required param: {who} do not send it and are refused');
    else report(at, Object.hasOwn(innerProps, key) ? 'was made optional: {who} that expect it fail when it is missing' : 'was removed: {who} expect it and fail without it');
  }
  for (const [key, schema] of Object.entries(innerProps)) {
    const at = `${path}.${key}`;
    if (Object.hasOwn(outerProps, key)) {
      compare(asSchema(outerProps[key]), asSchema(schema), at, side, report);
    } else if (outer['additionalProperties'] === false) {
      report(at, side === 'params' ? 'was removed from a strict object: {who} sending it are refused' : 'was added, and the old strict object refuses unknown keys');
    } else if (typeof outer['additionalProperties'] === 'object') {
      compare(asSchema(outer['additionalProperties']), asSchema(schema), at, side, report);
    }
  }
  if (typeof outer['additionalProperties'] === 'object' && typeof inner['additionalProperties'] === 'object') {
    compare(asSchema(outer['additionalProperties']), asSchema(inner['additionalProperties']), `${path}[key]`, side, report);
  }
}

function compareArrays(outer: Schema, inner: Schema, path: string, side: Side, report: Report): void {
  if (typeof outer['items'] === 'object' && outer['items'] !== null) {
    compare(asSchema(outer['items']), asSchema(inner['items']), `${path}[]`, side, report);
  }
  const outerTuple = outer['prefixItems'];
  const innerTuple = inner['prefixItems'];
  if (Array.isArray(outerTuple) && Array.isArray(innerTuple)) {
    outerTuple.forEach((each, index) => compare(asSchema(each), asSchema(innerTuple[index]), `${path}[${index}]`, side, report));
  }
}
