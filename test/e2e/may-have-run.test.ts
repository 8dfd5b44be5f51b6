/**
 * mayHaveRun has its own place, on RpcError and in the error map: a handler's RpcError reaches the caller with
 * the data it was thrown with, whatever its type, and with mayHaveRun true because the handler ran.
 */
import { expect } from 'chai';
import { z } from 'zod';
import { connect, createClient } from '@tunnelrpc/client';
import { RpcError, defineService } from '@tunnelrpc/protocol';
import { RpcServer } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { expectRejects } from '@tunnelrpc/test-kit';
import { mayHaveRunOf } from '../helpers/rpc-error.js';

const Thrower = defineService('Thrower', {
  fail: { input: z.strictObject({ kind: z.enum(['array', 'string', 'number', 'map', 'none', 'falseMap']) }), output: z.null() },
});

const DATA = { array: ['a'], string: 'why', number: 42, map: { widget: 7 }, none: undefined, falseMap: { mayHaveRun: false } } as const;

describe('mayHaveRun (real client, real server)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function thrower() {
    const rpc = new RpcServer({ logger: () => undefined }).register(Thrower, {
      fail: ({ kind }) => {
        throw new RpcError('ABORTED', `thrown with ${kind} data`, DATA[kind]);
      },
    });
    cleanup.defer(() => rpc.close());
    const { url } = await rpc.listen(0);
    return createClient(Thrower, cleanup.add(await connect(url, { reconnect: false }), (each) => each.close()));
  }

  for (const kind of ['array', 'string', 'number'] as const) {
    it(`keeps ${kind} data a handler threw intact, and says mayHaveRun: true in its own field`, async () => {
      const client = await thrower();
      const error = await expectRejects(client.fail({ kind }), 'ABORTED', `thrown with ${kind} data`);
      expect(error.data).to.deep.equal(DATA[kind]);
      expect(error.mayHaveRun).to.equal(true);
    });
  }

  it('also sets mayHaveRun in map data and in absent data (the deprecated place), replacing a false', async () => {
    const client = await thrower();
    const map = await expectRejects(client.fail({ kind: 'map' }), 'ABORTED');
    expect(map.data).to.deep.equal({ widget: 7, mayHaveRun: true });
    expect(mayHaveRunOf(map)).to.equal(true);
    const none = await expectRejects(client.fail({ kind: 'none' }), 'ABORTED');
    expect(none.data).to.deep.equal({ mayHaveRun: true });
    expect(mayHaveRunOf(none)).to.equal(true);
    // A downstream "did not run" rethrown by a handler is not about this hop: this handler ran.
    const rethrown = await expectRejects(client.fail({ kind: 'falseMap' }), 'ABORTED');
    expect(mayHaveRunOf(rethrown)).to.equal(true);
  });

  it('says mayHaveRun: false for params the schema refuses (the handler did not run)', async () => {
    const client = await thrower();
    const error = await expectRejects(client.fail({ kind: 'nope' as 'array' }), 'INVALID_ARGUMENT');
    expect(mayHaveRunOf(error)).to.equal(false);
  });
});
