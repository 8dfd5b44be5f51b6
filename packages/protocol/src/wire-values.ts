/**
 * Schema-directed value mapping (PROTOCOL.md "Values and zod types"). MessagePack has fewer types than zod: one
 * nil for null and undefined, one integer family for number and bigint, arrays for Sets, and maps whose keys our
 * decoder turns into strings. So the receiver walks its schema alongside the decoded value and turns each wire
 * form into the value the schema's input side expects, before zod parses it; the sender turns each Map into an
 * array of [key, value] pairs, the one form that keeps keys of every type.
 *
 *   zod type (input side)           wire form                        read back as
 *   z.bigint(), bigint literal      int (int 64 / uint 64)           bigint (the decoder gives a number up to 2^53)
 *   z.set(T)                        array                            Set
 *   z.map(K, V)                     array of [key, value] arrays     Map (a map with string keys is accepted too)
 *   accepts undefined, not null     absent property                  absent (zod's default or undefined)
 *                                   nil (array element, top level)   undefined
 *   z.instanceof(Buffer)            bin                              Buffer
 *
 * The plan for a schema is built once and cached; a schema with none of these parts gets no walk at all. The same
 * walk finds what the wire cannot carry (symbols, functions, promises, files, custom classes, unions whose members
 * look the same on the wire), which defineService refuses.
 *
 * Over 400 lines: one recursive plan builder over zod's types, whose plans call each other (arrays of maps of
 * unions); split, each part would import all the others.
 */
import type { z } from 'zod';
import { RpcError } from './errors.js';

type Schema = z.core.$ZodType;
type Mapper = (value: unknown) => unknown;

/** The def fields this module reads; zod 4 documents `_zod.def` for tools that walk schemas. */
interface Def {
  readonly type: string;
  readonly [field: string]: unknown;
}

// What a value of a schema looks like once decoded, for telling union members apart on the wire.
const NUMBER = 1;
const BIGINT = 2;
const ARRAY = 4;
const SET = 8;
const MAP = 16;
const UNKNOWN = 32;
const OBJECT = 64;

/** WireProblem is a part of a schema the wire cannot carry: where it is, what it is, and what to use instead. */
export interface WireProblem {
  /** Path inside the schema: property names, `[]` for elements, `<key>` and `<value>` for maps, `|n` for options. */
  readonly path: readonly string[];
  /** The zod type, as written: `z.symbol()`, `z.instanceof(Foo)`. */
  readonly type: string;
  /** Why it cannot cross, and what to use instead. */
  readonly reason: string;
}

interface Plan {
  /** Wire form -> schema input form; undefined when the value passes as decoded. */
  readonly decode: Mapper | undefined;
  /** Schema input form -> wire form; undefined when msgpackr writes the value as it is. */
  readonly encode: Mapper | undefined;
  readonly acceptsNull: boolean;
  readonly acceptsUndefined: boolean;
  /** Set bits: the decoded shapes a value of this schema can take (NUMBER, BIGINT, ...). */
  readonly kinds: number;
  readonly problem: WireProblem | undefined;
}

const plans = new WeakMap<Schema, Plan>();
// Schemas whose plan is being built: meeting one again means recursion (z.lazy, or a getter in a shape).
const building = new Set<Schema>();

function defOf(schema: Schema): Def {
  return schema._zod.def as unknown as Def;
}

/** planOf returns the cached plan of a schema, building it (and the plans of its parts) on first use. */
function planOf(schema: Schema): Plan {
  const cached = plans.get(schema);
  if (cached !== undefined) return cached;
  if (building.has(schema)) return recursivePlan(schema);
  building.add(schema);
  try {
    const plan = withNilRule(build(schema));
    plans.set(schema, plan);
    return plan;
  } finally {
    building.delete(schema);
  }
}

// A reference back into a schema still being built: it maps through the finished plan at call time. What it
// accepts is read from the schema's shape alone (traitsOf), so the nil rule of a wrapper around it still applies.
function recursivePlan(schema: Schema): Plan {
  const traits = traitsOf(schema, new Set());
  return {
    decode: (value) => {
      const decode = plans.get(schema)?.decode;
      return decode === undefined ? value : decode(value);
    },
    encode: (value) => {
      const encode = plans.get(schema)?.encode;
      return encode === undefined ? value : encode(value);
    },
    ...traits,
    problem: undefined,
  };
}

interface Traits {
  readonly acceptsNull: boolean;
  readonly acceptsUndefined: boolean;
  readonly kinds: number;
}

// The accepts-null, accepts-undefined and kinds of a schema without building its mappers, for recursion.
function traitsOf(schema: Schema, seen: Set<Schema>): Traits {
  const none: Traits = { acceptsNull: false, acceptsUndefined: false, kinds: 0 };
  if (seen.has(schema)) return none;
  seen.add(schema);
  const def = defOf(schema);
  const inner = (field: string): Traits => traitsOf(def[field] as Schema, seen);
  switch (def.type) {
    case 'number':
    case 'nan':
      return { ...none, kinds: NUMBER };
    case 'bigint':
      return { ...none, kinds: BIGINT };
    case 'null':
      return { ...none, acceptsNull: true };
    case 'undefined':
    case 'void':
      return { ...none, acceptsUndefined: true };
    case 'any':
    case 'unknown':
    case 'transform':
      return { acceptsNull: true, acceptsUndefined: true, kinds: UNKNOWN };
    case 'literal': {
      const values = def['values'] as readonly unknown[];
      return { acceptsNull: values.includes(null), acceptsUndefined: values.includes(undefined), kinds: literalPlan(values).kinds };
    }
    case 'array':
    case 'tuple':
      return { ...none, kinds: ARRAY };
    case 'set':
      return { ...none, kinds: SET };
    case 'map':
      return { ...none, kinds: MAP };
    case 'object':
    case 'record':
      return { ...none, kinds: OBJECT };
    case 'optional':
    case 'default':
    case 'prefault':
      return { ...inner('innerType'), acceptsUndefined: true };
    case 'nullable':
      return { ...inner('innerType'), acceptsNull: true };
    case 'nonoptional':
      return { ...inner('innerType'), acceptsUndefined: false };
    case 'catch':
    case 'readonly':
    case 'success':
      return inner('innerType');
    case 'pipe':
      return inner('in');
    case 'lazy':
      return traitsOf((schema._zod as { innerType?: Schema }).innerType ?? (def['getter'] as () => Schema)(), seen);
    case 'union': {
      const options = (def['options'] as readonly Schema[]).map((option) => traitsOf(option, seen));
      return {
        acceptsNull: options.some((option) => option.acceptsNull),
        acceptsUndefined: options.some((option) => option.acceptsUndefined),
        kinds: options.reduce((bits, option) => bits | option.kinds, 0),
      };
    }
    case 'intersection': {
      const left = inner('left');
      const right = inner('right');
      return { acceptsNull: left.acceptsNull && right.acceptsNull, acceptsUndefined: left.acceptsUndefined && right.acceptsUndefined, kinds: left.kinds | right.kinds };
    }
    case 'enum':
      return { ...none, kinds: Object.values(def['entries'] as object).some((entry) => typeof entry === 'number') ? NUMBER : 0 };
    case 'string':
    case 'boolean':
    case 'date':
    case 'template_literal':
    case 'never':
    case 'symbol':
    case 'function':
    case 'promise':
    case 'file':
    case 'custom':
      return none;
    default:
      // As in build: a zod type newer than this module is taken to accept anything.
      return { acceptsNull: true, acceptsUndefined: true, kinds: UNKNOWN };
  }
}

// Adds the nil rule: MessagePack's one nil reads as undefined where the schema takes undefined but not null.
function withNilRule(plan: Plan): Plan {
  if (!plan.acceptsUndefined || plan.acceptsNull) return plan;
  const inner = plan.decode;
  const decode: Mapper = inner === undefined ? nilToUndefined : (value) => (value === null ? undefined : inner(value));
  withoutNilRule.set(decode, inner ?? null);
  return { ...plan, decode };
}

function nilToUndefined(value: unknown): unknown {
  return value === null ? undefined : value;
}

// A property can be absent, so a nil property is a null the peer sent, not an undefined: objects map their
// properties without the nil rule, which also leaves objects with only optional fields unwalked.
const withoutNilRule = new WeakMap<Mapper, Mapper | null>();

function propertyMapper(decode: Mapper | undefined): Mapper | undefined {
  let map = decode;
  // Wrappers stack nil rules (z.string().default('x').optional()): take them all off.
  while (map !== undefined && withoutNilRule.has(map)) map = withoutNilRule.get(map) ?? undefined;
  return map;
}

function leaf(kinds: number, acceptsNull = false, acceptsUndefined = false): Plan {
  return { decode: undefined, encode: undefined, acceptsNull, acceptsUndefined, kinds, problem: undefined };
}

function refused(type: string, reason: string): Plan {
  return { ...leaf(0), problem: { path: [], type, reason } };
}

function within(segment: string, problem: WireProblem | undefined): WireProblem | undefined {
  return problem === undefined ? undefined : { ...problem, path: [segment, ...problem.path] };
}

function firstProblem(...problems: Array<WireProblem | undefined>): WireProblem | undefined {
  return problems.find((problem) => problem !== undefined);
}

function build(schema: Schema): Plan {
  const def = defOf(schema);
  switch (def.type) {
    case 'string':
    case 'boolean':
    case 'date':
    case 'template_literal':
    case 'never':
      return leaf(0);
    case 'number':
    case 'nan':
      return leaf(NUMBER);
    case 'enum':
      return leaf(Object.values(def['entries'] as object).some((entry) => typeof entry === 'number') ? NUMBER : 0);
    case 'null':
      return leaf(0, true);
    case 'undefined':
    case 'void':
      return leaf(0, false, true);
    case 'any':
    case 'unknown':
      return leaf(UNKNOWN, true, true);
    case 'bigint':
      return { ...leaf(BIGINT), decode: toBigInt };
    case 'literal':
      return literalPlan(def['values'] as readonly unknown[]);
    case 'symbol':
      return refused('z.symbol()', 'a symbol has no MessagePack form; use z.string() or z.enum()');
    case 'function':
      return refused('z.function()', 'a function cannot be sent; expose it as another method');
    case 'promise':
      return refused('z.promise()', 'a promise cannot be sent; handlers may be async, so return the value itself');
    case 'file':
      return refused('z.file()', 'a File has no MessagePack form; send its bytes (z.instanceof(Uint8Array)) and its name as a string');
    case 'custom':
      return customPlan(schema);
    case 'array':
      return arrayPlan(planOf(def['element'] as Schema));
    case 'set':
      return setPlan(planOf(def['valueType'] as Schema));
    case 'map':
      return mapPlan(planOf(def['keyType'] as Schema), planOf(def['valueType'] as Schema));
    case 'tuple':
      return tuplePlan(def['items'] as readonly Schema[], def['rest'] as Schema | null | undefined);
    case 'object':
      return objectPlan(def['shape'] as Record<string, Schema>, def['catchall'] as Schema | undefined);
    case 'record': {
      const values = planOf(def['valueType'] as Schema);
      const problem = firstProblem(within('<key>', planOf(def['keyType'] as Schema).problem), within('<value>', values.problem));
      return { ...leaf(OBJECT), decode: recordMapper(propertyMapper(values.decode)), encode: recordMapper(values.encode), problem };
    }
    case 'union':
      return unionPlan(def['options'] as readonly Schema[]);
    case 'intersection':
      return intersectionPlan(planOf(def['left'] as Schema), planOf(def['right'] as Schema));
    case 'optional':
      return { ...planOf(def['innerType'] as Schema), acceptsUndefined: true };
    case 'nullable':
      return nullablePlan(planOf(def['innerType'] as Schema));
    case 'default':
    case 'prefault':
      return { ...planOf(def['innerType'] as Schema), acceptsUndefined: true };
    case 'nonoptional':
      return { ...planOf(def['innerType'] as Schema), acceptsUndefined: false };
    case 'catch':
    case 'readonly':
    case 'success':
      return planOf(def['innerType'] as Schema);
    case 'pipe':
      // The wire carries what the sender holds: the input of the pipe (a transform's input, a codec's input).
      return planOf(def['in'] as Schema);
    case 'lazy':
      // zod caches the getter's schema as innerType; a getter that builds a new schema per call would otherwise
      // give this plan a different one than zod parses with.
      return planOf((schema._zod as { innerType?: Schema }).innerType ?? (def['getter'] as () => Schema)());
    case 'transform':
      // A bare z.transform() takes any value.
      return leaf(UNKNOWN, true, true);
    default:
      // A zod type newer than this module: passed as decoded, and not refused.
      return leaf(UNKNOWN, true, true);
  }
}

function toBigInt(value: unknown): unknown {
  return typeof value === 'number' && Number.isInteger(value) ? BigInt(value) : value;
}

function literalPlan(values: readonly unknown[]): Plan {
  const hasBigint = values.some((value) => typeof value === 'bigint');
  const hasNumber = values.some((value) => typeof value === 'number');
  const plan = leaf((hasBigint ? BIGINT : 0) | (hasNumber ? NUMBER : 0), values.includes(null), values.includes(undefined));
  if (hasBigint && hasNumber) {
    return { ...plan, problem: { path: [], type: 'z.literal()', reason: 'a number and a bigint literal are the same integer on the wire; use one of them' } };
  }
  return hasBigint ? { ...plan, decode: toBigInt } : plan;
}

function customPlan(schema: Schema): Plan {
  const bag = schema._zod.bag as { Class?: unknown };
  const Class = bag.Class;
  if (Class === Date) return leaf(0);
  if (Class === Uint8Array) return leaf(0);
  if (Class === Buffer) {
    // A peer's bin decodes as a Buffer unless it is a view; either way make it one, since z.instanceof(Buffer) asks.
    return { ...leaf(0), decode: (value) => (value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value) };
  }
  if (typeof Class === 'function') {
    const name = (Class as { name?: string }).name ?? 'a class';
    return refused(`z.instanceof(${name})`, `${name} instances have no MessagePack form; z.instanceof supports Date, Uint8Array and Buffer, otherwise use a z.object() of the fields`);
  }
  return refused('z.custom()', 'the wire form of a z.custom() value is unknown; use a zod type that says it (z.string().refine(...), z.object(...))');
}

// Copy-on-write over an array: decoded values may be the caller's own (a handler's result), never change them.
function mapArray(values: readonly unknown[], map: Mapper): unknown[] | undefined {
  let out: unknown[] | undefined;
  for (let i = 0; i < values.length; i++) {
    const before = values[i];
    const after = map(before);
    if (after !== before) (out ??= values.slice())[i] = after;
  }
  return out;
}

function arrayPlan(element: Plan): Plan {
  const lift = (map: Mapper | undefined): Mapper | undefined =>
    map === undefined ? undefined : (value) => (Array.isArray(value) ? mapArray(value, map) ?? value : value);
  return { ...leaf(ARRAY), decode: lift(element.decode), encode: lift(element.encode), problem: within('[]', element.problem) };
}

function setPlan(element: Plan): Plan {
  const map = element.decode;
  const decode: Mapper = (value) => (Array.isArray(value) ? new Set(map === undefined ? value : value.map(map)) : value);
  const write = element.encode;
  // msgpackr writes a Set as an array of its elements; only elements that need mapping need us.
  const encode: Mapper | undefined = write === undefined ? undefined : (value) => (value instanceof Set ? Array.from(value, write) : value);
  return { ...leaf(SET), decode, encode, problem: within('<element>', element.problem) };
}

function mapPlan(keys: Plan, values: Plan): Plan {
  const readKey = keys.decode ?? identity;
  const readValue = values.decode ?? identity;
  // A peer that writes a MessagePack map reaches us with string keys: read them back as the key schema's numbers.
  const keyFromString: (key: string) => unknown =
    (keys.kinds & BIGINT) !== 0 ? (key) => (/^-?\d+$/.test(key) ? BigInt(key) : key)
    : (keys.kinds & NUMBER) !== 0 ? (key) => (String(Number(key)) === key ? Number(key) : key)
    : (key) => key;
  const decode: Mapper = (value) => {
    if (Array.isArray(value)) {
      const entries: Array<[unknown, unknown]> = [];
      for (const pair of value) {
        if (!Array.isArray(pair) || pair.length !== 2) return value;
        entries.push([readKey(pair[0]), readValue(pair[1])]);
      }
      return new Map(entries);
    }
    if (isPlainObject(value)) return new Map(Object.keys(value).map((key) => [readKey(keyFromString(key)), readValue(value[key])]));
    return value;
  };
  const writeKey = keys.encode ?? identity;
  const writeValue = values.encode ?? identity;
  const encode: Mapper = (value) => (value instanceof Map ? Array.from(value, ([key, entry]: [unknown, unknown]) => [writeKey(key), writeValue(entry)]) : value);
  return { ...leaf(MAP), decode, encode, problem: firstProblem(within('<key>', keys.problem), within('<value>', values.problem)) };
}

function tuplePlan(items: readonly Schema[], rest: Schema | null | undefined): Plan {
  const itemPlans = items.map((item) => planOf(item));
  const restPlan = rest === null || rest === undefined ? undefined : planOf(rest);
  const problem = firstProblem(...itemPlans.map((plan, i) => within(`[${i}]`, plan.problem)), within('[...]', restPlan?.problem));
  const lift = (pick: (plan: Plan) => Mapper | undefined): Mapper | undefined => {
    const maps = itemPlans.map(pick);
    const restMap = restPlan === undefined ? undefined : pick(restPlan);
    if (maps.every((map) => map === undefined) && restMap === undefined) return undefined;
    return (value) => {
      if (!Array.isArray(value)) return value;
      let out: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const map = i < maps.length ? maps[i] : restMap;
        if (map === undefined) continue;
        const after = map(value[i]);
        if (after !== value[i]) (out ??= value.slice())[i] = after;
      }
      return out ?? value;
    };
  };
  return { ...leaf(ARRAY), decode: lift((plan) => plan.decode), encode: lift((plan) => plan.encode), problem };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  // Decoded maps are plain objects: one prototype check settles them, the instanceof chain is for anything else.
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) return true;
  return !Array.isArray(value) && !(value instanceof Date) && !(value instanceof Uint8Array) && !(value instanceof Map) && !(value instanceof Set);
}

interface Field {
  readonly key: string;
  readonly map: Mapper | undefined;
  /** zod requires the key although its schema takes undefined (z.unknown(), z.undefined()): put it back. */
  readonly present: boolean;
}

function objectMapper(fields: readonly Field[], known: ReadonlySet<string>, rest: Mapper | undefined): Mapper | undefined {
  if (fields.length === 0 && rest === undefined) return undefined;
  return (value) => {
    if (!isPlainObject(value)) return value;
    let out: Record<string, unknown> | undefined;
    for (const field of fields) {
      const before = value[field.key];
      if (before === undefined) {
        if (field.present && !Object.hasOwn(value, field.key)) (out ??= { ...value })[field.key] = undefined;
        continue;
      }
      if (field.map === undefined) continue;
      const after = field.map(before);
      if (after !== before) (out ??= { ...value })[field.key] = after;
    }
    if (rest !== undefined) {
      for (const key of Object.keys(value)) {
        if (known.has(key)) continue;
        const before = value[key];
        const after = rest(before);
        if (after !== before) putOwn((out ??= { ...value }), key, after);
      }
    }
    return out ?? value;
  };
}

function objectPlan(shape: Record<string, Schema>, catchall: Schema | undefined): Plan {
  const known = new Set(Object.keys(shape));
  const decodeFields: Field[] = [];
  const encodeFields: Field[] = [];
  let problem: WireProblem | undefined;
  for (const key of known) {
    const schema = shape[key]!;
    const plan = planOf(schema);
    problem ??= within(key, plan.problem);
    // Properties holding undefined are left out on the wire; zod wants the key back unless it is optional.
    const present = plan.acceptsUndefined && schema._zod.optin === undefined;
    const map = propertyMapper(plan.decode);
    if (map !== undefined || present) decodeFields.push({ key, map, present });
    if (plan.encode !== undefined) encodeFields.push({ key, map: plan.encode, present: false });
  }
  // z.strictObject's catchall is z.never() and z.looseObject's z.unknown(): neither maps anything.
  const rest = catchall === undefined ? undefined : planOf(catchall);
  problem ??= within('[*]', rest?.problem);
  return {
    ...leaf(OBJECT),
    decode: objectMapper(decodeFields, known, propertyMapper(rest?.decode)),
    encode: objectMapper(encodeFields, known, rest?.encode),
    problem,
  };
}

function recordMapper(map: Mapper | undefined): Mapper | undefined {
  if (map === undefined) return undefined;
  return (value) => {
    if (!isPlainObject(value)) return value;
    let out: Record<string, unknown> | undefined;
    for (const key of Object.keys(value)) {
      const before = value[key];
      const after = map(before);
      if (after !== before) putOwn((out ??= { ...value }), key, after);
    }
    return out ?? value;
  };
}

// Keys of records and catchalls come from the value: an own "__proto__" key must stay a property, not become the
// copy's prototype.
function putOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  else target[key] = value;
}

function popcount(bits: number): number {
  let count = 0;
  for (let rest = bits; rest !== 0; rest &= rest - 1) count++;
  return count;
}

// Members that the wire cannot tell apart: the first would always win, whatever the sender held.
function unionConflict(kinds: number): string | undefined {
  if ((kinds & NUMBER) !== 0 && (kinds & BIGINT) !== 0) return 'a number and a bigint are the same integer on the wire';
  if (popcount(kinds & (ARRAY | SET | MAP)) > 1) return 'arrays, Sets and Maps are all arrays on the wire';
  if ((kinds & MAP) !== 0 && (kinds & OBJECT) !== 0) return 'a Map and an object can both arrive as a MessagePack map';
  if ((kinds & UNKNOWN) !== 0 && (kinds & (BIGINT | SET | MAP)) !== 0) return 'z.unknown() or z.any() takes the wire form of a bigint, Set or Map as it is';
  return undefined;
}

function unionPlan(options: readonly Schema[]): Plan {
  const members = options.map((option) => ({ schema: option, plan: planOf(option) }));
  const kinds = members.reduce((bits, member) => bits | member.plan.kinds, 0);
  const conflict = unionConflict(kinds);
  const problem = conflict !== undefined
    ? { path: [], type: 'z.union()', reason: `its options cannot be told apart: ${conflict}; keep one of them, or wrap each in a z.object() with a tag` }
    : firstProblem(...members.map((member, i) => within(`|${i}`, member.plan.problem)));
  // Members are tried in order, as zod does. Reading, the first whose schema takes the mapped value gives it;
  // writing, the first whose schema takes the value as held maps it.
  const lift = (pick: (plan: Plan) => Mapper | undefined, check: 'mapped' | 'held'): Mapper | undefined => {
    if (members.every((member) => pick(member.plan) === undefined)) return undefined;
    return (value) => {
      for (const member of members) {
        const map = pick(member.plan);
        if (check === 'held') {
          if (safeParses(member.schema, value)) return map === undefined ? value : map(value);
          continue;
        }
        const candidate = map === undefined ? value : map(value);
        if (safeParses(member.schema, candidate)) return candidate;
      }
      return value;
    };
  };
  return {
    decode: lift((plan) => plan.decode, 'mapped'),
    encode: lift((plan) => plan.encode, 'held'),
    acceptsNull: members.some((member) => member.plan.acceptsNull),
    acceptsUndefined: members.some((member) => member.plan.acceptsUndefined),
    kinds,
    problem,
  };
}

function safeParses(schema: Schema, value: unknown): boolean {
  try {
    return (schema as z.ZodType).safeParse(value).success;
  } catch {
    return false;
  }
}

function intersectionPlan(left: Plan, right: Plan): Plan {
  const both = (a: Mapper | undefined, b: Mapper | undefined): Mapper | undefined =>
    a === undefined ? b : b === undefined ? a : (value) => b(a(value));
  return {
    decode: both(left.decode, right.decode),
    encode: both(left.encode, right.encode),
    acceptsNull: left.acceptsNull && right.acceptsNull,
    acceptsUndefined: left.acceptsUndefined && right.acceptsUndefined,
    kinds: left.kinds | right.kinds,
    problem: firstProblem(within('&0', left.problem), within('&1', right.problem)),
  };
}

function nullablePlan(inner: Plan): Plan {
  const map = inner.decode;
  return { ...inner, acceptsNull: true, decode: map === undefined ? undefined : (value) => (value === null ? null : map(value)) };
}

function identity(value: unknown): unknown {
  return value;
}

/**
 * findWireProblem returns the first part of a schema that the wire cannot carry, or undefined when every value of
 * the schema's input type round-trips. defineService refuses contracts with such a part.
 */
export function findWireProblem(schema: z.ZodType): WireProblem | undefined {
  return planOf(schema).problem;
}

/**
 * fromWireValue turns a decoded value into what the schema's input side expects (numbers into bigints, arrays into
 * Sets and Maps, nil into undefined), ready for zod. It returns the value itself when nothing needs mapping and
 * never changes it: it copies what it maps. parseWithSchema calls it; it is exported for tests and other tools.
 */
export function fromWireValue(schema: z.ZodType, value: unknown): unknown {
  const decode = planOf(schema).decode;
  return decode === undefined ? value : decode(value);
}

/**
 * toWireValue turns a value of the schema's input type into what the wire carries: each Map becomes an array of
 * [key, value] pairs. Everything else msgpackr writes as it is (a Set as an array, a bigint as an integer, a
 * property holding undefined left out). It returns the value itself when the schema holds no z.map(), and copies
 * what it maps. Throws RpcError INVALID_ARGUMENT for a value nested too deeply to walk. Senders call it: the typed
 * client on params, the server on results.
 */
export function toWireValue(schema: z.ZodType, value: unknown): unknown {
  const encode = planOf(schema).encode;
  if (encode === undefined) return value;
  try {
    return encode(value);
  } catch (error) {
    throw new RpcError('INVALID_ARGUMENT', 'value cannot be encoded as MessagePack: it is nested too deeply (or holds a cycle); send a flatter value', undefined, { cause: error });
  }
}

/** hasWireMapping tells whether a schema needs fromWireValue or toWireValue at all (for tests and benchmarks). */
export function hasWireMapping(schema: z.ZodType): { decode: boolean; encode: boolean } {
  const plan = planOf(schema);
  return { decode: plan.decode !== undefined, encode: plan.encode !== undefined };
}
