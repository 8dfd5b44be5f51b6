import { expect } from 'chai';
import { z } from 'zod';
import {
  decodeMessage,
  encodeMessage,
  findWireProblem,
  fromWireValue,
  hasWireMapping,
  parseWithSchema,
  toWireValue,
} from '@tunnelrpc/protocol/internal';
import { hex, toHex } from '@tunnelrpc/test-kit';

/** params decodes the params of a literal request `94 00 01 a1 6d <params>` (id 1, method "m"). */
function params(paramsHex: string): unknown {
  const message = decodeMessage(hex('94 00 01 a1 6d' + paramsHex));
  if (message.type !== 0) throw new Error('not a request');
  return message.params;
}

/** parsed runs parseWithSchema and returns the data, failing the test with the issues otherwise. */
function parsed(schema: z.ZodType, value: unknown): unknown {
  const result = parseWithSchema(schema, value);
  if (!result.success) expect.fail(`parse failed: ${JSON.stringify(result.issues.map((issue) => issue.message))}`);
  return result.data;
}

/** wire encodes a value as the params of a request and returns the params' bytes as hex. */
function wire(schema: z.ZodType, value: unknown): string {
  const frame = encodeMessage({ type: 0, id: 1, method: 'm', params: toWireValue(schema, value) });
  return toHex(frame.subarray(4 + 5)); // after the length and 94 00 01 a1 6d
}

describe('parseWithSchema wire mapping', () => {
  describe('bigint', () => {
    it('reads a positive fixint (05) as 5n for z.bigint()', () => {
      expect(parsed(z.bigint(), params('05'))).to.equal(5n);
    });

    it('reads an int 64 of a small value (d3 00 00 00 00 00 00 00 05), which decodes as a number, as 5n', () => {
      expect(parsed(z.bigint(), params('d3 00 00 00 00 00 00 00 05'))).to.equal(5n);
    });

    it('reads a negative fixint (fb) as -5n and an int 64 below -2^53 as that bigint', () => {
      expect(parsed(z.bigint(), params('fb'))).to.equal(-5n);
      expect(parsed(z.bigint(), params('d3 ff df ff ff ff ff ff ff'))).to.equal(-(2n ** 53n) - 1n);
    });

    it('reads a uint 64 of 2^64-1 (cf ff ff ff ff ff ff ff ff) as 18446744073709551615n', () => {
      expect(parsed(z.bigint(), params('cf ff ff ff ff ff ff ff ff'))).to.equal(2n ** 64n - 1n);
    });

    it('reads integers as bigints inside objects, arrays, tuples, records and bigint literals', () => {
      const schema = z.object({
        list: z.array(z.bigint()),
        pair: z.tuple([z.string(), z.bigint()]),
        byName: z.record(z.string(), z.bigint()),
        one: z.literal(1n),
      });
      const value = { list: [1, 2], pair: ['a', 3], byName: { x: 4 }, one: 1 };
      expect(parsed(schema, value)).to.deep.equal({ list: [1n, 2n], pair: ['a', 3n], byName: { x: 4n }, one: 1n });
    });

    it('leaves a float (1.5) for zod to refuse: a bigint has no fraction', () => {
      const result = parseWithSchema(z.bigint(), params('cb 3f f8 00 00 00 00 00 00'));
      expect(result.success).to.equal(false);
    });

    it('keeps numbers numbers for z.number()', () => {
      expect(parsed(z.object({ n: z.number() }), params('81 a1 6e 05'))).to.deep.equal({ n: 5 });
    });
  });

  describe('Set and Map', () => {
    it('reads an array (93 01 02 01) as a Set for z.set()', () => {
      expect(parsed(z.set(z.number()), params('93 01 02 01'))).to.deep.equal(new Set([1, 2]));
    });

    it('reads an array of [key, value] pairs (92 92 01 a1 61 92 02 a1 62) as a Map', () => {
      expect(parsed(z.map(z.number(), z.string()), params('92 92 01 a1 61 92 02 a1 62'))).to.deep.equal(new Map([[1, 'a'], [2, 'b']]));
    });

    it('reads a MessagePack map (81 a1 61 01) as a Map with string keys, as a peer in another language may send it', () => {
      expect(parsed(z.map(z.string(), z.number()), params('81 a1 61 01'))).to.deep.equal(new Map([['a', 1]]));
    });

    it('reads the string keys of a MessagePack map back as numbers or bigints when the key schema asks', () => {
      expect(parsed(z.map(z.number(), z.string()), params('81 01 a1 61'))).to.deep.equal(new Map([[1, 'a']]));
      expect(parsed(z.map(z.bigint(), z.string()), params('81 01 a1 61'))).to.deep.equal(new Map([[1n, 'a']]));
    });

    it('leaves an array that is not all pairs for zod to refuse', () => {
      expect(parseWithSchema(z.map(z.number(), z.string()), params('92 92 01 a1 61 91 02')).success).to.equal(false);
    });

    it('maps keys and values of a Map and elements of a Set by their schemas', () => {
      const schema = z.map(z.bigint(), z.set(z.bigint()));
      expect(parsed(schema, [[1, [2, 3]]])).to.deep.equal(new Map([[1n, new Set([2n, 3n])]]));
    });
  });

  describe('nil and undefined', () => {
    it('reads nil as undefined in an array of optional elements (92 a1 61 c0)', () => {
      expect(parsed(z.array(z.string().optional()), params('92 a1 61 c0'))).to.deep.equal(['a', undefined]);
    });

    it('reads nil as undefined where a default applies, so the default fills it', () => {
      expect(parsed(z.array(z.string().default('x')), [null, 'y'])).to.deep.equal(['x', 'y']);
    });

    it('keeps nil as null where the schema takes null (nullable, nullish, z.unknown())', () => {
      expect(parsed(z.array(z.string().nullable()), [null])).to.deep.equal([null]);
      expect(parsed(z.array(z.string().nullish()), [null])).to.deep.equal([null]);
      expect(parsed(z.array(z.unknown()), [null])).to.deep.equal([null]);
    });

    it('keeps a nil property as null: an undefined property is left out, so a nil one is a null the peer sent', () => {
      const result = parseWithSchema(z.object({ cursor: z.string().optional() }), params('81 a6 63 75 72 73 6f 72 c0'));
      expect(result.success).to.equal(false);
      expect(parsed(z.object({ cursor: z.string().optional() }), params('80'))).to.deep.equal({});
    });

    it('puts back a property that zod requires although its schema takes undefined (z.unknown(), z.undefined())', () => {
      const schema = z.object({ data: z.unknown(), none: z.undefined(), maybe: z.union([z.string(), z.undefined()]) });
      expect(parsed(schema, params('80'))).to.deep.equal({ data: undefined, none: undefined, maybe: undefined });
    });

    it('reads a top-level nil as undefined for z.void() and optional params', () => {
      expect(parsed(z.void(), params('c0'))).to.equal(undefined);
      expect(parsed(z.object({ a: z.number() }).optional(), params('c0'))).to.equal(undefined);
    });
  });

  describe('wrappers', () => {
    it('maps through optional, nullable, default, catch, readonly, brand, pipe and lazy to the input side', () => {
      const schema = z.object({
        a: z.bigint().optional(),
        b: z.bigint().nullable(),
        c: z.bigint().default(9n),
        d: z.bigint().catch(0n),
        e: z.bigint().readonly(),
        f: z.bigint().brand('Cents'),
        g: z.bigint().transform((n) => n * 2n),
        h: z.lazy(() => z.bigint()),
      });
      const value = { a: 1, b: null, d: 4, e: 5, f: 6, g: 7, h: 8 };
      expect(parsed(schema, value)).to.deep.equal({ a: 1n, b: null, c: 9n, d: 4n, e: 5n, f: 6n, g: 14n, h: 8n });
    });

    it('picks the union option whose schema takes the mapped value', () => {
      const schema = z.union([z.object({ kind: z.literal('n'), n: z.bigint() }), z.object({ kind: z.literal('s'), s: z.set(z.string()) })]);
      expect(parsed(schema, { kind: 's', s: ['x'] })).to.deep.equal({ kind: 's', s: new Set(['x']) });
      expect(parsed(schema, { kind: 'n', n: 3 })).to.deep.equal({ kind: 'n', n: 3n });
    });

    it('maps both sides of an intersection', () => {
      const schema = z.intersection(z.object({ a: z.bigint() }), z.object({ b: z.set(z.number()) }));
      expect(parsed(schema, { a: 1, b: [2] })).to.deep.equal({ a: 1n, b: new Set([2]) });
    });

    it('maps recursive schemas, written with z.lazy or with a getter', () => {
      type Tree = { value: bigint; children: Tree[] };
      const lazyTree: z.ZodType<Tree> = z.lazy(() => z.object({ value: z.bigint(), children: z.array(lazyTree) }));
      const getterTree = z.object({
        value: z.bigint(),
        get children(): z.ZodArray<typeof getterTree> {
          return z.array(getterTree);
        },
      });
      const wire = { value: 1, children: [{ value: 2, children: [] }] };
      const expected = { value: 1n, children: [{ value: 2n, children: [] }] };
      expect(parsed(lazyTree, wire)).to.deep.equal(expected);
      expect(parsed(getterTree, wire)).to.deep.equal(expected);
    });

    it('applies the nil rule through a recursive reference: an optional node in an array reads nil as undefined', () => {
      type Node = { kids: Array<Node | undefined> };
      const node: z.ZodType<Node> = z.object({ kids: z.array(z.lazy(() => node.optional())) });
      expect(parsed(node, { kids: [null, { kids: [] }] })).to.deep.equal({ kids: [undefined, { kids: [] }] });
    });

    it('maps the catchall of an object and leaves strictObject and looseObject extras alone', () => {
      expect(parsed(z.object({ a: z.string() }).catchall(z.bigint()), { a: 'x', b: 2 })).to.deep.equal({ a: 'x', b: 2n });
      expect(parsed(z.looseObject({ a: z.bigint() }), { a: 1, b: 2 })).to.deep.equal({ a: 1n, b: 2 });
    });
  });

  it('keeps an own "__proto__" key of a record a property of the copy, never its prototype', () => {
    const value = JSON.parse('{"__proto__": 1, "b": 2}') as Record<string, unknown>;
    const result = fromWireValue(z.record(z.string(), z.bigint()), value) as Record<string, unknown>;
    expect(Object.getPrototypeOf(result)).to.equal(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(result, '__proto__')?.value).to.equal(1n);
    expect(result['b']).to.equal(2n);
  });

  it('accepts values already in their schema form (a Map, a Set, a bigint), as a server checking a handler result sees them', () => {
    const schema = z.object({ m: z.map(z.string(), z.bigint()), s: z.set(z.number()), n: z.bigint() });
    const value = { m: new Map([['a', 1n]]), s: new Set([1]), n: 5n };
    expect(fromWireValue(schema, value)).to.equal(value);
    expect(parsed(schema, value)).to.deep.equal(value);
  });

  it('never changes the value it is given: it copies what it maps', () => {
    const value = { n: 1, list: [1, 2], keep: { deep: 'x' } };
    const schema = z.object({ n: z.bigint(), list: z.array(z.bigint()), keep: z.object({ deep: z.string() }) });
    const result = fromWireValue(schema, value) as typeof value;
    expect(value).to.deep.equal({ n: 1, list: [1, 2], keep: { deep: 'x' } });
    expect(result.keep).to.equal(value.keep);
  });
});

describe('hasWireMapping', () => {
  it('is false both ways for schemas without bigint, Set, Map or undefined-only parts: no walk at all', () => {
    for (const schema of [
      z.object({ id: z.string(), note: z.string().optional(), tag: z.string().nullish(), n: z.number().default(0) }),
      z.object({ a: z.number(), b: z.string(), c: z.array(z.boolean()), d: z.date(), e: z.instanceof(Uint8Array) }),
      z.string().nullable(),
      z.record(z.string(), z.number()),
      z.unknown(),
      z.string().transform((text) => text.length),
    ]) {
      expect(hasWireMapping(schema)).to.deep.equal({ decode: false, encode: false });
    }
  });

  it('maps for encoding only schemas that hold a z.map()', () => {
    expect(hasWireMapping(z.object({ n: z.bigint(), s: z.set(z.string()) })).encode).to.equal(false);
    expect(hasWireMapping(z.object({ m: z.array(z.map(z.string(), z.number())) })).encode).to.equal(true);
  });
});

describe('toWireValue', () => {
  it('writes a Map as an array of [key, value] pairs (92 92 01 a1 61 92 02 a1 62)', () => {
    expect(wire(z.map(z.number(), z.string()), new Map([[1, 'a'], [2, 'b']]))).to.equal('92 92 01 a1 61 92 02 a1 62');
  });

  it('writes Map keys of any type, such as objects and "__proto__", which a MessagePack map could not keep', () => {
    const schema = z.map(z.union([z.string(), z.object({ id: z.number() })]), z.number());
    const value = new Map<string | { id: number }, number>([['__proto__', 1], [{ id: 7 }, 2]]);
    const decoded = decodeMessage(encodeMessage({ type: 6, data: toWireValue(schema, value) }).subarray(4));
    if (decoded.type !== 6) throw new Error('not a ping');
    expect(parsed(schema, decoded.data)).to.deep.equal(value);
  });

  it('writes Maps nested in objects, arrays, Sets, records, unions and other Maps', () => {
    const schema = z.object({
      list: z.array(z.map(z.string(), z.map(z.string(), z.number()))),
      set: z.set(z.map(z.string(), z.number())),
      byName: z.record(z.string(), z.map(z.string(), z.number())),
      either: z.union([z.string(), z.map(z.string(), z.number())]),
    });
    const inner = new Map([['k', 1]]);
    const value = { list: [new Map([['a', inner]])], set: new Set([inner]), byName: { x: inner }, either: inner };
    expect(toWireValue(schema, value)).to.deep.equal({
      list: [[['a', [['k', 1]]]]],
      set: [[['k', 1]]],
      byName: { x: [['k', 1]] },
      either: [['k', 1]],
    });
    expect(parsed(schema, toWireValue(schema, value))).to.deep.equal(value);
  });

  it('returns the value itself when the schema holds no Map', () => {
    const value = { n: 1n, s: new Set([1]) };
    expect(toWireValue(z.object({ n: z.bigint(), s: z.set(z.number()) }), value)).to.equal(value);
  });
});

describe('findWireProblem', () => {
  it('returns undefined for a schema whose every value round-trips', () => {
    expect(findWireProblem(z.object({ m: z.map(z.date(), z.set(z.bigint())) }))).to.equal(undefined);
  });

  it('returns the path, the type and the reason of the first part the wire cannot carry', () => {
    expect(findWireProblem(z.object({ a: z.array(z.map(z.string(), z.symbol())) }))).to.deep.equal({
      path: ['a', '[]', '<value>'],
      type: 'z.symbol()',
      reason: 'a symbol has no MessagePack form; use z.string() or z.enum()',
    });
  });
});
