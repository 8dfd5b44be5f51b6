import { expect } from 'chai';
import { z } from 'zod';
import { defineService, type WireIssue } from '@tunnelrpc/protocol';
import { formatIssues, methodPath, parseWithSchema, summarizeIssues } from '@tunnelrpc/protocol/internal';
import { expectThrows } from '@tunnelrpc/test-kit';

const echoMethod = { input: z.object({ text: z.string() }), output: z.string() };

/** customIssue builds a zod issue by hand, so the sizes summarizeIssues counts are known exactly. */
function customIssue(path: PropertyKey[], message: string): z.core.$ZodIssue {
  return { code: 'custom', path, message, input: undefined };
}

/** wireLength is what summarizeIssues counts for one issue: the length of its JSON. */
function wireLength(issue: WireIssue): number {
  return JSON.stringify(issue).length;
}

describe('defineService', () => {
  it('returns the name and the methods, frozen', () => {
    const methods = { echo: echoMethod };
    const contract = defineService('Echo', methods);
    expect(contract.name).to.equal('Echo');
    expect(contract.methods).to.equal(methods);
    expect(Object.isFrozen(contract)).to.equal(true);
  });

  it('accepts dot-separated identifier names', () => {
    for (const name of ['Echo', 'billing.Invoices', '_private', 'a1.b2.c3', 'A_B']) {
      expect(defineService(name, { echo: echoMethod }).name).to.equal(name);
    }
  });

  it('refuses service names that are not dot-separated identifiers, naming the name', () => {
    for (const name of ['', '1Echo', 'Echo.', '.Echo', 'a..b', 'Echo Svc', 'Echo/x', 'Echo-x', 'Écho', 'Echo\r\n']) {
      expectThrows(() => defineService(name, { echo: echoMethod }), 'INVALID_ARGUMENT', JSON.stringify(name));
    }
  });

  it('refuses method names that are not identifiers, naming the method and the service', () => {
    for (const method of ['', 'do-it', '1a', 'a.b', 'a b', 'x\n']) {
      const error = expectThrows(() => defineService('Echo', { [method]: echoMethod }), 'INVALID_ARGUMENT', JSON.stringify(method));
      expect(error.message).to.include('Echo');
    }
  });

  it('refuses a method without zod schemas in both input and output', () => {
    const specs = [
      { input: z.string() },
      { output: z.string() },
      { input: {}, output: z.string() },
      { input: z.string(), output: 'string' },
    ];
    for (const spec of specs) {
      expectThrows(
        () => defineService('Echo', { echo: spec as unknown as typeof echoMethod }),
        'INVALID_ARGUMENT',
        'Echo.echo needs zod schemas',
      );
    }
  });

  it('accepts a service with no methods', () => {
    expect(defineService('Empty', {}).methods).to.deep.equal({});
  });
});

describe('methodPath', () => {
  it('joins the service name and the method with a dot', () => {
    expect(methodPath(defineService('billing.Invoices', { get: echoMethod }), 'get')).to.equal('billing.Invoices.get');
  });
});

describe('parseWithSchema', () => {
  it('returns the parsed data on success, transforms applied', () => {
    expect(parseWithSchema(z.string().transform((s) => s.length), 'abc')).to.deep.equal({ success: true, data: 3 });
  });

  it('returns zod issues on failure', () => {
    const result = parseWithSchema(z.object({ a: z.number() }), { a: 'x' });
    expect(result.success).to.equal(false);
    if (result.success) return;
    expect(result.issues.length).to.equal(1);
    expect(result.issues[0]?.path).to.deep.equal(['a']);
    expect(result.issues[0]?.code).to.equal('invalid_type');
  });

  it('accepts nil (null) for z.void() by retrying it as undefined', () => {
    expect(parseWithSchema(z.void(), null)).to.deep.equal({ success: true, data: undefined });
  });

  it('accepts nil (null) for an optional schema by retrying it as undefined', () => {
    expect(parseWithSchema(z.number().optional(), null)).to.deep.equal({ success: true, data: undefined });
  });

  it('keeps null for a schema that takes null, without the retry', () => {
    expect(parseWithSchema(z.null(), null)).to.deep.equal({ success: true, data: null });
    expect(parseWithSchema(z.number().nullable().default(5), null)).to.deep.equal({ success: true, data: null });
  });

  it('reports the original failure when neither null nor undefined passes', () => {
    const result = parseWithSchema(z.number(), null);
    expect(result.success).to.equal(false);
    if (result.success) return;
    expect(result.issues[0]?.code).to.equal('invalid_type');
  });

  it('retries only nil: a wrong non-nil value for z.void() still fails', () => {
    expect(parseWithSchema(z.void(), 0).success).to.equal(false);
    expect(parseWithSchema(z.void(), false).success).to.equal(false);
  });

  it('reports a schema that throws as a failure instead of throwing', () => {
    const throwing = z.string().transform(() => {
      throw new Error('secret detail');
    });
    const result = parseWithSchema(throwing, 'x');
    expect(result).to.deep.equal({
      success: false,
      issues: [{ code: 'custom', path: [], message: 'schema threw while validating', input: undefined }],
    });
  });

  it('reports a stack overflow on deep input as "nested too deeply"', () => {
    type Tree = Tree[];
    const tree: z.ZodType<Tree> = z.lazy(() => z.array(tree));
    let deep: Tree = [];
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const result = parseWithSchema(tree, deep);
    expect(result.success).to.equal(false);
    if (result.success) return;
    expect(result.issues).to.deep.equal([{ code: 'custom', path: [], message: 'value nested too deeply to validate', input: undefined }]);
  });

  it('reports an async refinement, which safeParse cannot run, as a failure', () => {
    const result = parseWithSchema(z.string().refine(async () => true), 'x');
    expect(result.success).to.equal(false);
  });
});

describe('summarizeIssues', () => {
  it('keeps the first 10 of 100000 issues from a z.array(z.number()) of strings, under 4 KiB', () => {
    const result = parseWithSchema(z.array(z.number()), Array.from({ length: 100_000 }, () => 'x'));
    expect(result.success).to.equal(false);
    if (result.success) return;
    const summary = summarizeIssues(result.issues);
    expect(summary.total).to.equal(100_000);
    expect(summary.issues.length).to.equal(10);
    expect(JSON.stringify(summary.issues).length).to.be.at.most(4096);
    expect(summary.issues.map((issue) => issue.path)).to.deep.equal([[0], [1], [2], [3], [4], [5], [6], [7], [8], [9]]);
    expect(summary.issues[0]?.code).to.equal('invalid_type');
    expect(summary.issues[0]).to.have.all.keys('path', 'code', 'message');
  });

  it('keeps issues up to exactly 4096 bytes of JSON and drops the one that would pass it', () => {
    // Path keys are cut to 64 characters and messages to 200, so a 1024-byte issue needs a path of 16 keys.
    const keysFor = (size: number): string[] => {
      let left = size - wireLength({ path: Array.from({ length: 16 }, () => ''), code: 'custom', message: 'm' });
      return Array.from({ length: 16 }, () => {
        const key = 'k'.repeat(Math.min(64, left));
        left -= key.length;
        return key;
      });
    };
    const keys = keysFor(1024);
    const issues = Array.from({ length: 6 }, () => customIssue(keys, 'm'));
    expect(wireLength({ path: keys, code: 'custom', message: 'm' })).to.equal(1024);
    const summary = summarizeIssues(issues);
    expect(summary.issues.length).to.equal(4);
    expect(summary.total).to.equal(6);
    // One more character in the first issue pushes the fourth past 4096.
    const longer = [customIssue(keysFor(1025), 'm'), ...issues.slice(1)];
    expect(summarizeIssues(longer).issues.length).to.equal(3);
  });

  it('bounds every issue well under 4 KiB, however long the peer made its keys', () => {
    const summary = summarizeIssues([customIssue(Array.from({ length: 20 }, () => 'k'.repeat(5000)), 'm'), customIssue([], 'short')]);
    expect(summary.issues).to.have.length(2);
    expect(summary.issues[0]?.path).to.have.length(16);
    expect(summary.issues[0]?.path[0]).to.equal(`${'k'.repeat(64)}…(5000 chars)`);
    expect(wireLength(summary.issues[0]!)).to.be.below(2048);
  });

  it('cuts each message to 200 characters, marking the cut, and each path to 16 elements', () => {
    const path = Array.from({ length: 20 }, (_, i) => i);
    const [wire] = summarizeIssues([customIssue(path, 'm'.repeat(500))]).issues;
    expect(wire?.message).to.equal(`${'m'.repeat(200)}…(500 chars)`);
    expect(wire?.path).to.deep.equal(path.slice(0, 16));
  });

  it('escapes control characters in keys and messages, and quotes unrecognized keys escaped (no forged log lines)', () => {
    const result = z.strictObject({}).safeParse({ 'evil\n\u001b[31mFAKE': 1 });
    expect(result.success).to.equal(false);
    const [wire] = summarizeIssues(result.error!.issues).issues;
    expect(wire?.message).to.equal('unrecognized key: "evil\\u000a\\u001b[31mFAKE"');
    expect(wire?.message).to.not.match(/[\u0000-\u001f]/);
    const [nested] = summarizeIssues([customIssue(['a\r\nb'], 'bad\u202evalue')]).issues;
    expect(nested?.path).to.deep.equal(['a\\u000d\\u000ab']);
    expect(nested?.message).to.equal('bad\\u202evalue');
  });

  it('writes symbol path keys as strings and keeps numbers as numbers', () => {
    const [wire] = summarizeIssues([customIssue([Symbol('s'), 3, 'a'], 'm')]).issues;
    expect(wire?.path).to.deep.equal(['Symbol(s)', 3, 'a']);
  });

  it('does not copy the input value of an issue', () => {
    const issue: z.core.$ZodIssue = { code: 'custom', path: ['a'], message: 'bad', input: 'peer secret' };
    const summary = summarizeIssues([issue]);
    expect(JSON.stringify(summary)).to.not.include('peer secret');
  });

  it('returns nothing for no issues', () => {
    expect(summarizeIssues([])).to.deep.equal({ issues: [], total: 0 });
  });
});

describe('formatIssues', () => {
  it('renders issues as one line: dotted path, colon, message, separated by semicolons', () => {
    const line = formatIssues([
      { path: ['a', 'b'], code: 'invalid_type', message: 'Expected number, received string' },
      { path: [], code: 'custom', message: 'Required' },
      { path: [0, 'x'], code: 'too_big', message: 'Too big' },
    ]);
    expect(line).to.equal('a.b: Expected number, received string; (root): Required; 0.x: Too big');
  });

  it('renders no issues as an empty string', () => {
    expect(formatIssues([])).to.equal('');
  });
});

describe('defineService method specs', () => {
  it('is a type error and an INVALID_ARGUMENT to misspell a key (idempotant), naming the key and the likely one', () => {
    const error = expectThrows(
      // @ts-expect-error: a method spec is exact; idempotant is not a key of MethodSpec.
      () => defineService('billing.Invoices', { create: { input: z.string(), output: z.string(), idempotant: true } }),
      'INVALID_ARGUMENT',
      'method billing.Invoices.create has the unknown key "idempotant" (did you mean "idempotent"?)',
    );
    expect(error.message).to.include('a method spec takes input, output, idempotent, notification');
    expect(error.data).to.deep.equal({ method: 'billing.Invoices.create', key: 'idempotant' });
  });

  it('names no likely key when none is close', () => {
    const error = expectThrows(
      // @ts-expect-error: retries is not a key of MethodSpec.
      () => defineService('Echo', { echo: { ...echoMethod, retries: 3 } }),
      'INVALID_ARGUMENT',
      'unknown key "retries";',
    );
    expect(error.message).to.not.include('did you mean');
  });

  it('accepts every key MethodSpec has', () => {
    const contract = defineService('Echo', { echo: { ...echoMethod, idempotent: true }, log: { ...echoMethod, notification: false } });
    expect(Object.keys(contract.methods)).to.deep.equal(['echo', 'log']);
  });

  it('refuses idempotent or notification that is not a boolean', () => {
    for (const key of ['idempotent', 'notification']) {
      const spec = { ...echoMethod, [key]: 'yes' } as unknown as typeof echoMethod;
      expectThrows(() => defineService('Echo', { echo: spec }), 'INVALID_ARGUMENT', `method Echo.echo has ${key}: string`);
    }
  });

  it('refuses a schema-like object that is not a zod 4 schema (a zod 3 schema has safeParse but no _zod)', () => {
    const zod3Like = { safeParse: (value: unknown) => ({ success: true, data: value }) };
    const spec = { input: zod3Like, output: z.string() } as unknown as typeof echoMethod;
    expectThrows(() => defineService('Echo', { echo: spec }), 'INVALID_ARGUMENT', 'its input is not a zod 4 schema');
  });

  it('refuses a spec that is not an object', () => {
    expectThrows(() => defineService('Echo', { echo: null as unknown as typeof echoMethod }), 'INVALID_ARGUMENT', 'Echo.echo needs zod schemas');
  });
});

describe('defineService wire check', () => {
  class Point {
    constructor(readonly x: number) {}
  }
  const refused: Array<[string, z.ZodType, string, string]> = [
    ['z.symbol()', z.symbol(), 'z.symbol()', 'input'],
    ['z.function() inside an array property', z.object({ hooks: z.array(z.function()) }), 'z.function()', 'input.hooks[]'],
    ['z.promise()', z.promise(z.string()), 'z.promise()', 'input'],
    ['z.file()', z.file(), 'z.file()', 'input'],
    ['z.custom()', z.custom<string>((value) => typeof value === 'string'), 'z.custom()', 'input'],
    ['z.instanceof of a class', z.instanceof(Point), 'z.instanceof(Point)', 'input'],
    ['z.instanceof(Float64Array)', z.instanceof(Float64Array), 'z.instanceof(Float64Array)', 'input'],
    ['a symbol map key', z.map(z.symbol(), z.string()), 'z.symbol()', 'input<key>'],
    ['a symbol record key', z.record(z.symbol(), z.string()), 'z.symbol()', 'input<key>'],
    ['a set of functions', z.set(z.function()), 'z.function()', 'input<element>'],
    ['a union of number and bigint', z.object({ n: z.union([z.number(), z.bigint()]) }), 'z.union()', 'input.n'],
    ['number | bigint literals', z.literal([1, 1n]), 'z.literal()', 'input'],
    ['a union of an array and a Set', z.union([z.array(z.string()), z.set(z.string())]), 'z.union()', 'input'],
    ['a union of a Map and a record', z.union([z.map(z.string(), z.string()), z.record(z.string(), z.string())]), 'z.union()', 'input'],
    ['a union of z.unknown() and a bigint', z.union([z.bigint(), z.unknown()]), 'z.union()', 'input'],
    ['a tuple item', z.tuple([z.string(), z.symbol()]), 'z.symbol()', 'input[1]'],
    ['a union option', z.union([z.string(), z.object({ s: z.symbol() })]), 'z.symbol()', 'input|1.s'],
    ['a strictObject catchall', z.object({}).catchall(z.symbol()), 'z.symbol()', 'input[*]'],
  ];
  for (const [name, schema, type, where] of refused) {
    it(`refuses ${name}, naming the method, the path and the type`, () => {
      const error = expectThrows(() => defineService('Shapes', { put: { input: schema, output: z.void() } }), 'INVALID_ARGUMENT', `method Shapes.put: ${type} at ${where} cannot cross the wire`);
      expect((error.data as { type: string }).type).to.equal(type);
    });
  }

  it('checks the output schema too', () => {
    expectThrows(() => defineService('Shapes', { get: { input: z.void(), output: z.object({ at: z.symbol() }) } }), 'INVALID_ARGUMENT', 'z.symbol() at output.at');
  });

  it('accepts every zod type that has a wire form', () => {
    type Tree = { value: bigint; children: Tree[] };
    const tree: z.ZodType<Tree> = z.lazy(() => z.object({ value: z.bigint(), children: z.array(tree) }));
    const schemas: z.ZodType[] = [
      z.object({ a: z.string().optional(), b: z.number().nullable(), c: z.string().nullish(), d: z.boolean().default(false) }),
      z.strictObject({ n: z.bigint(), m: z.map(z.object({ k: z.number() }), z.set(z.date())) }),
      z.looseObject({ bytes: z.instanceof(Uint8Array), buffer: z.instanceof(Buffer), when: z.instanceof(Date) }),
      z.discriminatedUnion('kind', [z.object({ kind: z.literal('a'), n: z.bigint() }), z.object({ kind: z.literal('b'), s: z.set(z.string()) })]),
      z.intersection(z.object({ a: z.bigint() }), z.object({ b: z.string() })),
      z.tuple([z.string(), z.bigint()], z.number()),
      z.record(z.string(), z.array(z.bigint().optional())),
      z.string().transform((text) => text.length).pipe(z.number()),
      z.bigint().catch(0n).readonly().brand('Cents'),
      z.union([z.string(), z.number(), z.null()]),
      z.nan(),
      z.int64(),
      z.unknown(),
      tree,
    ];
    for (const schema of schemas) defineService('Shapes', { put: { input: schema, output: schema } });
  });
});
