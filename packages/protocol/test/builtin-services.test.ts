/**
 * The built-in service contracts and describeMethod: JSON Schemas of params and results, unrepresentable parts
 * marked.
 */
import { expect } from 'chai';
import { z } from 'zod';
import { Health, Reflection, UNREPRESENTABLE_KEY } from '@tunnelrpc/protocol';
import { describeMethod, methodPath } from '@tunnelrpc/protocol/internal';

describe('Health and Reflection contracts', () => {
  it('are named tunnelrpc.Health.check and tunnelrpc.Reflection.list, both idempotent', () => {
    expect(methodPath(Health, 'check')).to.equal('tunnelrpc.Health.check');
    expect(methodPath(Reflection, 'list')).to.equal('tunnelrpc.Reflection.list');
    expect(Health.methods.check.idempotent).to.equal(true);
    expect(Reflection.methods.list.idempotent).to.equal(true);
  });

  it('accept no params, {} and { service } for check', () => {
    for (const params of [undefined, {}, { service: 'Echo' }]) expect(Health.methods.check.input.safeParse(params).success, JSON.stringify(params)).to.equal(true);
    expect(Health.methods.check.input.safeParse({ service: 1 }).success).to.equal(false);
  });
});

describe('describeMethod', () => {
  it('gives the kind, idempotence and JSON Schemas of params and result as they travel (the input side)', () => {
    const described = describeMethod('add', { input: z.object({ a: z.number(), b: z.number().default(0) }), output: z.string().transform((s) => s.length), idempotent: true });
    expect(described.name).to.equal('add');
    expect(described.kind).to.equal('unary');
    expect(described.idempotent).to.equal(true);
    // Input side: b has a default, so the caller may leave it out.
    expect(described.params).to.deep.include({ type: 'object', required: ['a'] });
    // The handler returns the string; the transform runs on the client.
    expect(described.result).to.deep.include({ type: 'string' });
  });

  it('says notification for notification methods', () => {
    expect(describeMethod('ping', { input: z.unknown(), output: z.void(), notification: true }).kind).to.equal('notification');
  });

  it('describes the stream messages both ways, and a method maxTimeout', () => {
    const described = describeMethod('chat', { kind: 'bidiStream', input: z.void(), clientMessage: z.string().max(10), serverMessage: z.number().int(), output: z.void(), maxTimeout: 3_600_000 });
    expect(described.kind).to.equal('bidiStream');
    expect(described.clientMessage).to.deep.include({ type: 'string', maxLength: 10 });
    expect(described.serverMessage).to.deep.include({ type: 'integer' });
    expect(described.maxTimeout).to.equal(3_600_000);
    const unary = describeMethod('add', { input: z.void(), output: z.void() });
    expect(Object.keys(unary)).to.not.include.members(['clientMessage', 'serverMessage', 'maxTimeout']);
  });

  it('marks parts JSON Schema cannot express with the zod type', () => {
    const described = describeMethod('odd', { input: z.object({ when: z.date(), n: z.bigint(), m: z.map(z.string(), z.number()) }), output: z.set(z.number()) });
    const properties = (described.params as { properties: Record<string, unknown> }).properties;
    expect(properties['when']).to.deep.equal({ [UNREPRESENTABLE_KEY]: 'date' });
    expect(properties['n']).to.deep.equal({ [UNREPRESENTABLE_KEY]: 'bigint' });
    expect(properties['m']).to.deep.equal({ [UNREPRESENTABLE_KEY]: 'map' });
    expect(described.result).to.deep.include({ [UNREPRESENTABLE_KEY]: 'set' });
  });
});
