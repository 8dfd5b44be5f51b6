/**
 * Typed errors per method: a contract declares the codes a method fails with and a zod schema for each one's data;
 * the server checks what a handler throws, the typed client checks what arrives, and RpcError.is() narrows the data.
 * Codes a method does not declare stay plain RpcErrors.
 */
import { expect } from 'chai';
import { z } from 'zod';
import { connect, createClient, RpcError, type MethodErrorOf } from '@tunnelrpc/client';
import { defineService } from '@tunnelrpc/protocol';
import { RpcServer } from '@tunnelrpc/server';
import { expectRejects } from '@tunnelrpc/test-kit';
import { Cleanup } from '../helpers/cleanup.js';

const reserveInput = z.object({ sku: z.string().max(20), n: z.number().int() });
const Stock = defineService('inventory.Stock', {
  reserve: {
    input: reserveInput,
    output: z.object({ left: z.number() }),
    errors: {
      FAILED_PRECONDITION: z.object({ available: z.number().int() }),
      NOT_FOUND: z.object({ sku: z.string() }),
      ABORTED: z.object({ held: z.map(z.string(), z.number()) }),
    },
  },
  watch: {
    kind: 'serverStream',
    input: z.object({ n: z.number().int().max(10) }),
    serverMessage: z.number(),
    output: z.void(),
    errors: { RESOURCE_EXHAUSTED: z.object({ retryAfterMs: z.number() }) },
  },
  count: { input: z.void(), output: z.number() },
});
// The same service as an older server knows it: no errors declared, so it sends whatever its handler throws.
const LooseStock = defineService('inventory.Stock', { reserve: { input: reserveInput, output: z.object({ left: z.number() }) } });

type Thrown = { code: string; message: string; data?: unknown };

describe('typed errors per method', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function serve(throws: Thrown | (() => unknown), loose = false) {
    const fail = (): never => {
      if (typeof throws === 'function') throws();
      const { code, message, data } = throws as Thrown;
      throw new RpcError(code as RpcError['code'], message, data);
    };
    const rpc = new RpcServer({ logger: () => {} });
    if (loose) rpc.register(LooseStock, { reserve: fail });
    else {
      rpc.register(Stock, {
        reserve: fail,
        watch: async function* ({ n }) {
          for (let i = 0; i < n; i++) yield i;
          fail();
        },
        count: () => 1,
      });
    }
    cleanup.defer(() => rpc.close());
    const { url } = await rpc.listen(0);
    const client = cleanup.add(await connect(url, { reconnect: false }), (each) => each.close());
    return createClient(Stock, client);
  }

  it('narrows a declared code to its typed data with is()', async () => {
    const stock = await serve({ code: 'FAILED_PRECONDITION', message: 'only 3 left', data: { available: 3 } });
    const error = await expectRejects(stock.reserve({ sku: 'A1', n: 5 }), 'FAILED_PRECONDITION');
    expect(error.is(Stock.methods.reserve, 'FAILED_PRECONDITION')).to.equal(true);
    if (!error.is(Stock.methods.reserve, 'FAILED_PRECONDITION')) return;
    const available: number = error.data.available; // a compile error if data were not narrowed
    expect(available).to.equal(3);
    expect(error.message).to.equal('only 3 left');
    // The server's "the handler ran" marker survives beside the typed data.
    expect(error.data).to.deep.equal({ available: 3, mayHaveRun: true });
    expect(error.is(Stock.methods.reserve, 'NOT_FOUND')).to.equal(false);
    expect(error.is(Stock.methods.watch, 'RESOURCE_EXHAUSTED')).to.equal(false);
  });

  it('discriminates the union by code', async () => {
    const stock = await serve({ code: 'NOT_FOUND', message: 'no such sku', data: { sku: 'Z9' } });
    const error = (await expectRejects(stock.reserve({ sku: 'Z9', n: 1 }), 'NOT_FOUND')) as MethodErrorOf<typeof Stock.methods.reserve>;
    let said = '';
    if (error.is(Stock.methods.reserve, 'NOT_FOUND')) said = `missing ${error.data.sku}`;
    else if (error.is(Stock.methods.reserve, 'FAILED_PRECONDITION')) said = `only ${error.data.available}`;
    expect(said).to.equal('missing Z9');
  });

  it('carries declared data through the wire mapping (a Map arrives as a Map)', async () => {
    const stock = await serve({ code: 'ABORTED', message: 'held elsewhere', data: { held: new Map([['A1', 2]]) } });
    const error = await expectRejects(stock.reserve({ sku: 'A1', n: 1 }), 'ABORTED');
    expect(error.is(Stock.methods.reserve, 'ABORTED')).to.equal(true);
    if (error.is(Stock.methods.reserve, 'ABORTED')) expect(error.data.held.get('A1')).to.equal(2);
  });

  it('leaves an undeclared code a plain RpcError with its data as sent', async () => {
    const stock = await serve({ code: 'UNAVAILABLE', message: 'warehouse offline', data: { warehouse: 'w1' } });
    const error = await expectRejects(stock.reserve({ sku: 'A1', n: 1 }), 'UNAVAILABLE');
    expect(error.data).to.deep.equal({ warehouse: 'w1', mayHaveRun: true });
    expect(error.is(Stock.methods.reserve, 'FAILED_PRECONDITION')).to.equal(false);
    // @ts-expect-error: reserve does not declare UNAVAILABLE, so is() cannot be asked about it
    expect(error.is(Stock.methods.reserve, 'UNAVAILABLE')).to.equal(false);
    // @ts-expect-error: count declares no errors at all
    expect(error.is(Stock.methods.count, 'UNAVAILABLE')).to.equal(false);
  });

  it('sends INTERNAL when a handler throws a declared code with data its schema refuses (server check)', async () => {
    const stock = await serve({ code: 'FAILED_PRECONDITION', message: 'only some left', data: { available: 'three' } });
    const error = await expectRejects(stock.reserve({ sku: 'A1', n: 1 }), 'INTERNAL');
    expect(error.message).to.match(/^the handler of inventory\.Stock\.reserve failed with FAILED_PRECONDITION, but its data does not match the contract's errors\.FAILED_PRECONDITION schema \(available: /);
    expect(error.is(Stock.methods.reserve, 'FAILED_PRECONDITION')).to.equal(false);
  });

  it('fails INTERNAL when the data that arrives breaks the declared schema (client check against an older server)', async () => {
    const stock = await serve({ code: 'FAILED_PRECONDITION', message: 'only some left', data: { available: 'three' } }, true);
    const error = await expectRejects(stock.reserve({ sku: 'A1', n: 1 }), 'INTERNAL');
    expect(error.message).to.match(/^inventory\.Stock\.reserve failed with FAILED_PRECONDITION, but its data does not match the contract's errors\.FAILED_PRECONDITION schema \(available: .*client and server disagree on the schema$/);
    expect((error.cause as RpcError).code).to.equal('FAILED_PRECONDITION');
  });

  it("checks a stream's declared error on its result", async () => {
    const stock = await serve({ code: 'RESOURCE_EXHAUSTED', message: 'slow down', data: { retryAfterMs: 250 } });
    const call = stock.watch({ n: 2 });
    const seen: number[] = [];
    await expectRejects((async () => {
      for await (const each of call) seen.push(each);
    })(), 'RESOURCE_EXHAUSTED');
    expect(seen).to.deep.equal([0, 1]);
    const result = await expectRejects(call.result, 'RESOURCE_EXHAUSTED');
    expect(result.is(Stock.methods.watch, 'RESOURCE_EXHAUSTED')).to.equal(true);
    if (result.is(Stock.methods.watch, 'RESOURCE_EXHAUSTED')) expect(result.data.retryAfterMs).to.equal(250);
  });

  describe('defineService', () => {
    const cases: [string, unknown, string][] = [
      ['a name that is not an error code', { NOPE: z.void() }, 'declares the error "NOPE", which is not an error code'],
      ['a code without a zod schema', { NOT_FOUND: { sku: 'string' } }, 'declares the error NOT_FOUND without a zod 4 schema of its data'],
      ['errors that are not an object', ['NOT_FOUND'], 'has errors that are not an object'],
      ['data the wire cannot carry', { NOT_FOUND: z.object({ at: z.symbol() }) }, 'cannot cross the wire'],
    ];
    for (const [what, errors, message] of cases) {
      it(`refuses ${what} with INVALID_ARGUMENT`, () => {
        let thrown: unknown;
        try {
          defineService('Bad', { m: { input: z.void(), output: z.void(), errors } as never });
        } catch (error) {
          thrown = error;
        }
        expect(thrown).to.be.instanceOf(RpcError);
        expect((thrown as RpcError).code).to.equal('INVALID_ARGUMENT');
        expect((thrown as RpcError).message).to.include(message);
      });
    }
  });
});
