/**
 * The pool's counts of calls waiting for answers (pendingCalls) and of ids in use (what maxPendingCalls admits
 * against), kept as counters by the tunnels' events rather than summed per call: they must follow every way a call
 * or an id leaves a tunnel (answer, local give-up, goaway, tunnel lost) against a scripted server that accepts the
 * redial.
 */
import { expect } from 'chai';
import { connect, type RpcClient } from '@tunnelrpc/client';
import { ScriptedServer, expectRejects, type ScriptedPeer } from '@tunnelrpc/test-kit';
import { cleanup, track } from './helpers.js';

async function acceptNext(server: ScriptedServer): Promise<ScriptedPeer> {
  const peer = await server.nextPeer();
  await peer.head;
  await peer.accept();
  return peer;
}

// The outstanding calls of every endpoint, summed from its tunnels when the snapshot is made.
function outstanding(client: RpcClient): number {
  return client.endpoints.reduce((sum, endpoint) => sum + endpoint.outstanding, 0);
}

// A client with reconnect on, over a scripted server, with a call answered on its first tunnel: that proves the
// tunnel, so its loss is followed by an immediate redial instead of a backoff.
async function provedClient(maxPendingCalls: number): Promise<{ server: ScriptedServer; first: ScriptedPeer; client: RpcClient }> {
  const server = await ScriptedServer.start();
  const connecting = connect(server.url, { maxPendingCalls });
  const first = await acceptNext(server);
  const client = track(await connecting);
  const warm = client.call('Warm.up');
  await first.respond((await first.nextRequest()).id, 'ok');
  expect(await warm).to.equal('ok');
  return { server, first, client };
}

describe('Pool counts', () => {
  afterEach(cleanup);

  it('frees the ids given up on a tunnel when it is lost: the next tunnel gets all of maxPendingCalls', async () => {
    const { server, first, client } = await provedClient(2);

    const givenUp = client.call('Slow.op', null, { timeout: 50 });
    const { id } = await first.nextRequest();
    await expectRejects(givenUp, 'DEADLINE_EXCEEDED');
    // Type 3: the cancel of the given-up call.
    expect(await first.nextMessage()).to.deep.equal({ type: 3, id });
    const held = client.call('Hold.op');
    await first.nextRequest();
    expect(client.pendingCalls).to.equal(1);
    expect(outstanding(client)).to.equal(1);
    // The given-up id is still reserved: with the held call that makes two.
    await expectRejects(client.call('Over.op'), 'RESOURCE_EXHAUSTED', 'maxPendingCalls');

    first.socket.destroy();
    await expectRejects(held, 'UNAVAILABLE');
    expect(client.pendingCalls).to.equal(0);

    const second = await acceptNext(server);
    const calls = [client.call('A.op'), client.call('B.op')];
    const requests = [await second.nextRequest(), await second.nextRequest()];
    expect(client.pendingCalls).to.equal(2);
    expect(outstanding(client)).to.equal(2);
    await expectRejects(client.call('C.op'), 'RESOURCE_EXHAUSTED', '2 calls are waiting for answers (maxPendingCalls)');
    for (const request of requests) await second.respond(request.id, request.method);
    expect(await Promise.all(calls)).to.deep.equal(['A.op', 'B.op']);
    expect(client.pendingCalls).to.equal(0);
    expect(outstanding(client)).to.equal(0);
  });

  it('moves calls refused by a goaway out of the count, keeps their ids reserved until the draining tunnel ends', async () => {
    const { server, first, client } = await provedClient(3);

    const kept = client.call('Kept.op');
    const keptRequest = await first.nextRequest();
    const refused = client.call('Refused.op');
    await first.nextRequest();
    expect(client.pendingCalls).to.equal(2);
    // Type 8: goaway; calls above lastId did not run.
    await first.send({ type: 8, lastId: keptRequest.id, code: 'UNAVAILABLE', message: 'draining' });

    // The refused call did not run: it goes to the next tunnel.
    const second = await acceptNext(server);
    const again = await second.nextRequest();
    expect(again.method).to.equal('Refused.op');
    expect(client.pendingCalls).to.equal(2);
    expect(outstanding(client)).to.equal(2);
    // Ids in use: the kept call, the refused call's id reserved on the draining tunnel, and the refused call again.
    await expectRejects(client.call('Over.op'), 'RESOURCE_EXHAUSTED', 'maxPendingCalls');

    // The kept call's answer ends the draining tunnel, and with it the reserved id.
    await first.respond(keptRequest.id, 'kept');
    expect(await kept).to.equal('kept');
    expect(client.pendingCalls).to.equal(1);
    const more = [client.call('More.a'), client.call('More.b')];
    const moreRequests = [await second.nextRequest(), await second.nextRequest()];
    await expectRejects(client.call('Over.op'), 'RESOURCE_EXHAUSTED', '3 calls are waiting for answers (maxPendingCalls)');
    await second.respond(again.id, 'refused ran here');
    for (const request of moreRequests) await second.respond(request.id, request.method);
    expect(await refused).to.equal('refused ran here');
    expect(await Promise.all(more)).to.deep.equal(['More.a', 'More.b']);
    expect(client.pendingCalls).to.equal(0);
    expect(outstanding(client)).to.equal(0);
  });
});
