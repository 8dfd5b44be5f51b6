/**
 * FaultBox (`@tunnelrpc/client/testing`) between the real client and the real server: each fault it offers users,
 * and what the client does about it.
 */
import { expect } from 'chai';
import { connect, createClient } from '@tunnelrpc/client';
import { FaultBox, type FaultOptions } from '@tunnelrpc/client/testing';
import { Echo } from '@tunnelrpc/examples';
import { expectRejects } from '@tunnelrpc/test-kit';
import { Cleanup } from '../helpers/cleanup.js';
import { startEchoServer } from '../helpers/servers.js';

describe('FaultBox (@tunnelrpc/client/testing)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function through(faults: FaultOptions = {}) {
    const server = await startEchoServer(cleanup);
    const box = cleanup.add(await FaultBox.start(server.port!, faults), (each) => each.close());
    const client = cleanup.add(await connect(box.url, { reconnect: false }), (each) => each.close());
    return { box, client, echo: createClient(Echo, client) };
  }

  it('carries calls and streams with every frame split at every byte, counting requests and responses', async () => {
    const { box, echo } = await through({ splitEveryByte: true });
    expect(await echo.add({ a: 2, b: 3 })).to.equal(5);
    const ticks = echo.ticks({ n: 3 });
    const seen: number[] = [];
    for await (const tick of ticks) seen.push(tick);
    expect(seen).to.deep.equal([0, 1, 2]);
    expect(await ticks.result).to.deep.equal({ sent: 3 });
    expect(box.stats).to.deep.include({ connections: 1, requests: 2 });
    expect(box.stats.responses).to.equal(2);
  });

  it('carries a large result to a slow reader intact', async () => {
    const { echo } = await through({ readRate: 4 * 1024 * 1024 });
    const big = Buffer.alloc(512 * 1024, 7);
    expect(Buffer.compare(Buffer.from((await echo.echo(big)) as Uint8Array), big)).to.equal(0);
  });

  it('carries calls with a delay on every chunk', async () => {
    const { echo } = await through({ delay: 20 });
    expect(await Promise.all([echo.add({ a: 1, b: 1 }), echo.add({ a: 2, b: 2 })])).to.deep.equal([2, 4]);
  });

  it('lets a deadline pass with nothing on the wire while held, then carries on once released', async () => {
    const { box, echo } = await through();
    box.hold();
    await expectRejects(echo.add({ a: 1, b: 1 }, { timeout: 100 }), 'DEADLINE_EXCEEDED');
    box.release();
    expect(await echo.add({ a: 1, b: 2 })).to.equal(3);
  });

  it('cuts the tunnel mid-frame after dropAfterBytes: the pending call fails UNAVAILABLE, may have run', async () => {
    const { box, client, echo } = await through();
    expect(await echo.add({ a: 1, b: 1 })).to.equal(2);
    box.set({ dropAfterBytes: box.stats.bytesToClient + 3 });
    const error = await expectRejects(echo.echo('x'.repeat(1000)), 'UNAVAILABLE');
    expect(error.data).to.deep.include({ mayHaveRun: true });
    expect((await client.closed)?.code).to.equal('UNAVAILABLE');
  });

  it('lets the server die after N calls: the next call fails, and new dials are refused', async () => {
    const { box, echo } = await through({ dieAfterCalls: 2 });
    expect(await echo.add({ a: 1, b: 1 })).to.equal(2);
    expect(await echo.add({ a: 1, b: 2 })).to.equal(3);
    await expectRejects(echo.add({ a: 1, b: 3 }), 'UNAVAILABLE');
    await expectRejects(connect(box.url, { reconnect: false }), 'UNAVAILABLE', 'ECONNREFUSED');
  });

  it('refuses a target that is not on 127.0.0.1 with INVALID_ARGUMENT', async () => {
    const error = await expectRejects(FaultBox.start('http://10.0.0.5:8080/_rpc'), 'INVALID_ARGUMENT');
    expect(error.message).to.equal('FaultBox forwards plain TCP on 127.0.0.1 only; got http://10.0.0.5:8080/_rpc');
  });
});
