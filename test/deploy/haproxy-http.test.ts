/**
 * HAProxy `mode http` in front of a real server (README recipe haproxy-http): it refuses CONNECT with its own 400,
 * which the client reports as a proxy's refusal; the Upgrade handshake passes, and everything a tunnel does works
 * through it; `timeout tunnel` is the limit after the 101.
 */
import { expect } from 'chai';
import type { Duplex } from 'node:stream';
import { connect } from '@tunnelrpc/client';
import { needBox } from '../helpers/boxes.js';
import { Cleanup } from '../helpers/cleanup.js';
import { runNode } from '../helpers/processes.js';
import { expectRejects } from '@tunnelrpc/test-kit';
import { startEchoServer } from '../helpers/servers.js';
import { expectCancel, expectDrain, expectMultiplexed, expectOneCall, openThrough } from '../helpers/through.js';
import { startHaproxy } from './start.js';

describe('deploy: HAProxy mode http (Upgrade handshake)', function () {
  const cleanup = new Cleanup();
  let haproxy: string;
  before(function () {
    haproxy = needBox(this, 'haproxy');
  });
  afterEach(() => cleanup.run());

  async function start(extra: ReadonlyArray<readonly [string, string]> = []) {
    const server = await startEchoServer(cleanup);
    const { port } = await startHaproxy(cleanup, haproxy, 'haproxy-http', '127.0.0.1:8000', [['127.0.0.1:8080', server.port!]], extra);
    return { server, url: `http://127.0.0.1:${port}/_rpc` };
  }

  it('refuses CONNECT with its own 400, reported as a proxy refusal that points to the Upgrade handshake', async () => {
    const { server, url } = await start();
    const error = await expectRejects(connect(url, { reconnect: false }), 'FAILED_PRECONDITION', 'refused with HTTP 400');
    expect(error.message).to.include('a proxy between here and the server refused CONNECT');
    expect(error.message).to.include("handshake: 'upgrade'");
    expect((error.data as { status: number }).status).to.equal(400);
    expect(server.rpc.connectionCount).to.equal(0);
  });

  it('passes the Upgrade: a call, 1,000 multiplexed calls and a cancel', async () => {
    const { server, url } = await start();
    const client = await openThrough(cleanup, url, { handshake: 'upgrade' });
    await expectOneCall(client);
    await expectMultiplexed(client);
    await expectCancel(client, server);
  });

  it('carries the goaway drain of server close(): the running call gets its answer', async () => {
    const { server, url } = await start();
    await expectDrain(await openThrough(cleanup, url, { handshake: 'upgrade' }), server);
  });

  it("passes the server's own refusal through, marked, so it is not blamed on the proxy", async () => {
    const { server, url } = await start();
    await server.rpc.close();
    const error = await expectRejects(connect(url, { reconnect: false, handshake: 'upgrade' }), 'UNAVAILABLE', 'refused with HTTP 503');
    expect(error.message).to.include('server is shutting down');
    expect(error.message).not.to.include('proxy');
  });

  it('closes a silent upgraded tunnel after timeout tunnel, though timeout client and server are far longer', async () => {
    const { server, url } = await start([
      ['timeout client 60s', 'timeout client 1h'],
      ['timeout server 60s', 'timeout server 1h'],
      ['timeout tunnel 1h', 'timeout tunnel 1s'],
    ]);
    const sockets: Duplex[] = [];
    server.http.on('upgrade', (_req, socket: Duplex) => sockets.push(socket));
    // No pings from either side: only HAProxy can end this tunnel.
    const client = await openThrough(cleanup, url, { handshake: 'upgrade', keepaliveInterval: 0 });
    await expectOneCall(client);
    expect(sockets).to.have.length(1);
    const lost = await client.closed;
    expect(lost?.code).to.equal('UNAVAILABLE');
  });

  it('tunnelrpc call --upgrade goes through; without it the CLI prints the proxy sentence and exits 2', async () => {
    const { url } = await start();
    const ok = await runNode(['packages/client/dist/cli.js', 'call', url, 'Echo.add', '{"a":2,"b":3}', '--upgrade']);
    expect(ok).to.deep.include({ code: 0, stdout: '5\n' });
    const refused = await runNode(['packages/client/dist/cli.js', 'call', url, 'Echo.add', '{"a":2,"b":3}']);
    expect(refused.code).to.equal(2);
    expect(refused.stderr).to.include('a proxy between here and the server refused CONNECT');
    expect(refused.stderr).to.include('--upgrade');
  });
});
