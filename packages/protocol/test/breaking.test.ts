import { expect } from 'chai';
import { z } from 'zod';
import { defineService, findBreakingChanges, type MethodSpec, type ServiceContract } from '@tunnelrpc/protocol';

const item = z.object({ sku: z.string().max(20), qty: z.number().int().min(1).max(100) });
const status = z.enum(['open', 'paid', 'void']);

// Version 1 of a service: every case below changes one thing in it.
function v1(overrides: Record<string, MethodSpec> = {}) {
  return defineService('shop.Orders', {
    place: { input: z.object({ items: z.array(item).max(50), note: z.string().max(200).optional(), status }), output: z.object({ id: z.string(), total: z.number(), status }) },
    get: { input: z.object({ id: z.string() }), output: z.object({ id: z.string() }), idempotent: true },
    ...overrides,
  });
}

function breaking(after: ServiceContract, before: ServiceContract = v1()) {
  return findBreakingChanges([before], [after]).filter((change) => change.breaks === 'old-clients').map((change) => change.message);
}

describe('findBreakingChanges', () => {
  it('finds nothing between a contract and itself', () => {
    expect(findBreakingChanges([v1()], [v1()])).to.deep.equal([]);
  });

  describe('breaking changes (old clients fail against the new server)', () => {
    it('reports a method removed', () => {
      const after = defineService('shop.Orders', { place: v1().methods.place });
      expect(breaking(after)).to.deep.equal(['shop.Orders.get was removed: old clients calling it get UNIMPLEMENTED']);
    });

    it('reports a service removed', () => {
      expect(findBreakingChanges([v1()], []).map((change) => change.message)).to.deep.equal(['service shop.Orders was removed: old clients calling it get UNIMPLEMENTED']);
    });

    it('reports a param made required', () => {
      const after = v1({ place: { ...v1().methods.place, input: z.object({ items: z.array(item).max(50), note: z.string().max(200), status }) } });
      expect(breaking(after)).to.deep.equal(['shop.Orders.place params.note: was made required: old clients that leave it out are refused']);
    });

    it('reports a new required param', () => {
      const after = v1({ get: { ...v1().methods.get, input: z.object({ id: z.string(), tenant: z.string() }) } });
      expect(breaking(after)).to.deep.equal(['shop.Orders.get params.tenant: is a new required param: old clients do not send it and are refused']);
    });

    it('reports a type narrowed: number to integer, a tighter max, string to number', () => {
      const narrowed = z.object({ sku: z.string().max(10), qty: z.number().int().min(1).max(100) });
      const after = v1({ place: { ...v1().methods.place, input: z.object({ items: z.array(narrowed).max(50), note: z.string().max(200).optional(), status }) } });
      expect(breaking(after)).to.deep.equal(['shop.Orders.place params.items[].sku: maxLength tightened from 20 to 10: old clients sending values past it are refused']);
      const retyped = v1({ get: { ...v1().methods.get, input: z.object({ id: z.number() }) } });
      expect(breaking(retyped)).to.deep.equal(['shop.Orders.get params.id: type narrowed from string to number: old clients sending string are refused']);
      const integer = defineService('S', { m: { input: z.object({ n: z.number().int() }), output: z.void() } });
      expect(breaking(integer, defineService('S', { m: { input: z.object({ n: z.number() }), output: z.void() } }))).to.have.length(1);
    });

    it('reports an enum value removed from params', () => {
      const after = v1({ place: { ...v1().methods.place, input: z.object({ items: z.array(item).max(50), note: z.string().max(200).optional(), status: z.enum(['open', 'paid']) }) } });
      expect(breaking(after)).to.deep.equal(['shop.Orders.place params.status: enum value "void" was removed: old clients sending it are refused']);
    });

    it('reports a result field removed, and one made optional', () => {
      const removed = v1({ place: { ...v1().methods.place, output: z.object({ id: z.string(), status }) } });
      expect(breaking(removed)).to.deep.equal(['shop.Orders.place result.total: was removed: old clients expect it and fail without it']);
      const optional = v1({ place: { ...v1().methods.place, output: z.object({ id: z.string(), total: z.number().optional(), status }) } });
      expect(breaking(optional)).to.deep.equal(['shop.Orders.place result.total: was made optional: old clients that expect it fail when it is missing']);
    });

    it('reports an enum value added to a result, which old clients cannot parse', () => {
      const after = v1({ place: { ...v1().methods.place, output: z.object({ id: z.string(), total: z.number(), status: z.enum(['open', 'paid', 'void', 'refunded']) }) } });
      expect(breaking(after)).to.deep.equal(['shop.Orders.place result.status: enum value "refunded" was added: old clients refuse it']);
    });

    it('reports a kind changed and idempotent dropped', () => {
      const stream = v1({ get: { kind: 'serverStream', input: z.object({ id: z.string() }), serverMessage: z.string(), output: z.object({ id: z.string() }) } });
      expect(breaking(stream)).to.deep.equal(['shop.Orders.get changed from unary to serverStream: old clients call it the old way']);
      const retried = v1({ get: { input: z.object({ id: z.string() }), output: z.object({ id: z.string() }) } });
      expect(breaking(retried)).to.deep.equal(['shop.Orders.get is no longer idempotent: old clients still retry it after a lost connection, so it may run twice']);
    });
  });

  describe('additive changes (old clients keep working)', () => {
    const cases: [string, ServiceContract][] = [
      ['a new method', defineService('shop.Orders', { ...v1().methods, cancel: { input: z.object({ id: z.string() }), output: z.void() } })],
      ['a new optional param', v1({ get: { ...v1().methods.get, input: z.object({ id: z.string(), expand: z.boolean().optional() }) } })],
      ['a new result field', v1({ get: { ...v1().methods.get, output: z.object({ id: z.string(), createdAt: z.string() }) } })],
      ['an enum value added to params', v1({ place: { ...v1().methods.place, input: z.object({ items: z.array(item).max(50), note: z.string().max(200).optional(), status: z.enum(['open', 'paid', 'void', 'held']) }) } })],
      ['a limit relaxed and a param made optional', v1({ place: { ...v1().methods.place, input: z.object({ items: z.array(item).max(500), note: z.string().max(200).optional(), status: status.optional() }) } })],
      ['a param widened to a union', v1({ get: { ...v1().methods.get, input: z.object({ id: z.union([z.string(), z.number()]) }) } })],
    ];
    for (const [what, after] of cases) {
      it(`passes ${what}`, () => {
        expect(breaking(after)).to.deep.equal([]);
      });
    }

    it('notes what needs servers upgraded first without failing: a new method, a new required result field', () => {
      const after = defineService('shop.Orders', { ...v1().methods, get: { ...v1().methods.get, output: z.object({ id: z.string(), createdAt: z.string() }) }, cancel: { input: z.void(), output: z.void() } });
      const changes = findBreakingChanges([v1()], [after]);
      expect(changes.filter((change) => change.breaks === 'old-clients')).to.deep.equal([]);
      expect(changes.map((change) => `${change.method} ${change.path}`)).to.have.members(['shop.Orders.get result.createdAt', 'shop.Orders.cancel ']);
    });
  });
});
