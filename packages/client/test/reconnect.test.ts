/**
 * Reconnects, waiting calls, safe retries and keepalive, against scripted servers that accept again.
 */
import { expect } from 'chai';
import { connect } from '@tunnelrpc/client';
import { expectRejects, type ScriptedPeer, ScriptedServer } from '@tunnelrpc/test-kit';
import { cleanup, track } from './helpers.js';

// Small delays keep the suite fast; the backoff formula itself is not timed here (no timing thresholds).
const FAST = { minReconnectDelay: 5, maxReconnectDelay: 20 } as const;

async function acceptNext(server: ScriptedServer): Promise<ScriptedPeer> {
  const peer = await server.nextPeer();
  await peer.head;
  await peer.accept();
  return peer;
}

async function connected(server: ScriptedServer, options: Parameters<typeof connect>[1] = {}) {
  const connecting = connect(server.url, { ...FAST, ...options });
  const peer = await acceptNext(server);
  return { client: track(await connecting), peer };
}

function mayHaveRun(error: { data: unknown }): unknown {
  return (error.data as { mayHaveRun?: unknown }).mayHaveRun;
}

describe('RpcClient reconnects', () => {
  afterEach(cleanup);

  it('redials after the tunnel is lost and sends new calls on the new tunnel', async () => {
    const server = await ScriptedServer.start();
    const { client, peer } = await connected(server);
    peer.socket.destroy();
    const second = await acceptNext(server);
    const call = client.call('After.loss', 1);
    const request = await second.nextRequest();
    expect(request.method).to.equal('After.loss');
    await second.respond(request.id, 'ok');
    expect(await call).to.equal('ok');
  });

  it('holds calls made while no tunnel is open and sends them once one opens', async () => {
    const server = await ScriptedServer.start();
    const { client, peer } = await connected(server);
    peer.socket.destroy();
    // The redial has reached the server, so the client knows the old tunnel is gone: the call waits for the new one.
    const second = await server.nextPeer();
    await second.head;
    const waiting = client.call('While.down', 7);
    await second.accept();
    const request = await second.nextRequest();
    expect(request).to.include({ method: 'While.down', params: 7 });
    await second.respond(request.id, 8);
    expect(await waiting).to.equal(8);
  });

  it('fails a waiting call at its deadline as not run, naming the last dial error', async () => {
    const server = await ScriptedServer.start();
    const { client, peer } = await connected(server);
    peer.socket.destroy();
    // The redial reaches the server, which hangs up mid-handshake: the client has no tunnel and a dial error.
    const refused = await server.nextPeer();
    await refused.head;
    refused.socket.destroy();
    await server.close();
    const error = await expectRejects(client.call('Never.sent', null, { timeout: 300 }), 'DEADLINE_EXCEEDED', 'it did not run');
    expect(mayHaveRun(error)).to.equal(false);
    expect(error.message).to.include('last dial error');
  });

  it('re-sends calls above a goaway lastId on a new tunnel, and answers the rest on the old one', async () => {
    const server = await ScriptedServer.start();
    const { client, peer } = await connected(server);
    const first = client.call('A.first');
    const second = client.call('A.second');
    const r1 = await peer.nextRequest();
    const r2 = await peer.nextRequest();
    await peer.send({ type: 8, lastId: r1.id, code: 'UNAVAILABLE', message: 'draining' });
    const fresh = await acceptNext(server);
    const resent = await fresh.nextRequest();
    expect(resent.method).to.equal('A.second');
    await fresh.respond(resent.id, 'second on new');
    await peer.respond(r1.id, 'first on old');
    expect(await first).to.equal('first on old');
    expect(await second).to.equal('second on new');
    expect(r2.id).to.be.greaterThan(r1.id);
    // The old tunnel closes once its last call is answered.
    await peer.ended;
  });

  it('re-sends an idempotent call after a loss and fails a non-idempotent one as may-have-run', async () => {
    const server = await ScriptedServer.start();
    const { client, peer } = await connected(server);
    const safe = client.call('Read.safe', 1, { idempotent: true });
    const unsafe = client.call('Write.once', 2);
    await peer.nextRequest();
    await peer.nextRequest();
    peer.socket.destroy();
    const error = await expectRejects(unsafe, 'UNAVAILABLE', 'it may have run on the server');
    expect(mayHaveRun(error)).to.equal(true);
    const fresh = await acceptNext(server);
    const retried = await fresh.nextRequest();
    expect(retried).to.include({ method: 'Read.safe', params: 1 });
    await fresh.respond(retried.id, 'read');
    expect(await safe).to.equal('read');
  });

  it('gives up on an idempotent call after maxRetries losses', async () => {
    const server = await ScriptedServer.start();
    const { client, peer } = await connected(server, { maxRetries: 1 });
    const call = client.call('Read.flaky', null, { idempotent: true });
    await peer.nextRequest();
    peer.socket.destroy();
    const again = await acceptNext(server);
    await again.nextRequest();
    again.socket.destroy();
    const error = await expectRejects(call, 'UNAVAILABLE', 'may have run');
    expect(mayHaveRun(error)).to.equal(true);
  });

  it('fails waiting calls at once when a redial is refused with 401', async () => {
    const server = await ScriptedServer.start();
    const { client, peer } = await connected(server);
    peer.socket.destroy();
    const refusedPeer = await server.nextPeer();
    await refusedPeer.head;
    const waiting = client.call('Needs.auth', null, { timeout: 10_000 });
    await refusedPeer.write('HTTP/1.0 401 Unauthorized\r\nContent-Length: 13\r\nConnection: close\r\n\r\nbad token 42\n');
    refusedPeer.socket.end();
    const error = await expectRejects(waiting, 'UNAUTHENTICATED', 'HTTP 401');
    expect(mayHaveRun(error)).to.equal(false);
  });

  it('does not redial with reconnect: false, and closed reports the loss', async () => {
    const server = await ScriptedServer.start();
    const { client, peer } = await connected(server, { reconnect: false });
    peer.socket.destroy();
    expect((await client.closed)?.code).to.equal('UNAVAILABLE');
    await expectRejects(client.call('No.redial'), 'UNAVAILABLE', 'connect again');
  });

  it('stops redialing after close()', async () => {
    const server = await ScriptedServer.start();
    const { client, peer } = await connected(server);
    const waiting = client.call('Queued.then.closed');
    const request = await peer.nextRequest();
    peer.socket.destroy();
    await expectRejects(waiting, 'UNAVAILABLE', 'may have run');
    await client.close();
    expect(await client.closed).to.equal(undefined);
    expect(request.method).to.equal('Queued.then.closed');
    await expectRejects(client.call('After.close'), 'UNAVAILABLE', 'not sent');
  });
});

describe('RpcClient keepalive', () => {
  afterEach(cleanup);

  it('pings a silent server and keeps the tunnel while pongs come back', async () => {
    const server = await ScriptedServer.start();
    const { client, peer } = await connected(server, { keepaliveInterval: 50, keepaliveTimeout: 1000, reconnect: false });
    for (let i = 0; i < 3; i++) {
      const ping = await peer.nextMessage();
      expect(ping.type).to.equal(6);
      await peer.send({ type: 7, data: (ping as { data: unknown }).data });
    }
    const call = client.call('Still.alive');
    const request = await peer.nextRequest();
    await peer.respond(request.id, true);
    expect(await call).to.equal(true);
  });

  it('declares the tunnel dead when a ping gets nothing back, failing its calls', async () => {
    const server = await ScriptedServer.start();
    const { client, peer } = await connected(server, { keepaliveInterval: 50, keepaliveTimeout: 50, reconnect: false });
    const call = client.call('Hangs.forever', null, { timeout: 60_000 });
    await peer.nextRequest();
    const error = await expectRejects(call, 'UNAVAILABLE', 'did not answer a keepalive ping within keepaliveTimeout 50 ms');
    expect(mayHaveRun(error)).to.equal(true);
    expect((await client.closed)?.message).to.include('keepalive');
  });
});
