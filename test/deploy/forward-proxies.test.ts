/**
 * The client through real forward proxies (README recipes squid and tinyproxy): CONNECT host:port to the proxy, the
 * tunnelrpc handshake inside (TLS inside for https://), and the proxy's refusals named as the proxy's.
 */
import { expect } from 'chai';
import { connect } from '@tunnelrpc/client';
import { needBox } from '../helpers/boxes.js';
import { Cleanup } from '../helpers/cleanup.js';
import { runNode } from '../helpers/processes.js';
import { expectRejects } from '@tunnelrpc/test-kit';
import { makeSelfSignedCertificate, startEchoServer } from '../helpers/servers.js';
import { expectCancel, expectDrain, expectMultiplexed, expectOneCall, openThrough } from '../helpers/through.js';
import { startSquid, startTinyproxy } from './start.js';

describe('deploy: squid as a forward proxy', function () {
  const cleanup = new Cleanup();
  let squid: string;
  before(function () {
    squid = needBox(this, 'squid');
  });
  afterEach(() => cleanup.run());

  it('carries a call, 1,000 multiplexed calls, a cancel and a goaway drain to the allowed port', async () => {
    const server = await startEchoServer(cleanup);
    const { port } = await startSquid(cleanup, squid, server.port!);
    const client = await openThrough(cleanup, server.url, { proxy: `http://127.0.0.1:${port}` });
    await expectOneCall(client);
    await expectMultiplexed(client);
    await expectCancel(client, server);
    await expectDrain(client, server, 1);
  });

  it('runs TLS inside the tunnel for an https:// server', async () => {
    const tls = await makeSelfSignedCertificate();
    const server = await startEchoServer(cleanup, { tls });
    const { port } = await startSquid(cleanup, squid, server.port!);
    await expectOneCall(await openThrough(cleanup, server.url, { proxy: `http://127.0.0.1:${port}`, tls: { ca: tls.cert } }));
  });

  it('takes the proxy from https_proxy for an https:// URL (and http_proxy is not used for it)', async () => {
    const tls = await makeSelfSignedCertificate();
    const server = await startEchoServer(cleanup, { tls });
    const { port } = await startSquid(cleanup, squid, server.port!);
    const saved = { https_proxy: process.env['https_proxy'], http_proxy: process.env['http_proxy'], no_proxy: process.env['no_proxy'] };
    cleanup.defer(() => {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    });
    process.env['https_proxy'] = `http://127.0.0.1:${port}`;
    process.env['http_proxy'] = 'http://127.0.0.1:1';
    delete process.env['no_proxy'];
    await expectOneCall(await openThrough(cleanup, server.url, { tls: { ca: tls.cert } }));
  });

  it("refuses CONNECT to a port its ACL does not allow with 403, named as squid's refusal", async () => {
    const server = await startEchoServer(cleanup);
    const { port } = await startSquid(cleanup, squid, server.port! + 1 > 65535 ? 1025 : server.port! + 1);
    const error = await expectRejects(connect(server.url, { proxy: `http://127.0.0.1:${port}`, reconnect: false }), 'PERMISSION_DENIED', `proxy http://127.0.0.1:${port} (option proxy) refused CONNECT 127.0.0.1:${server.port} with HTTP 403 Forbidden`);
    expect(error.message).to.include('allow this port in its ACLs');
    expect(server.rpc.connectionCount).to.equal(0);
  });

  it('answers 503 when the server is down: UNAVAILABLE naming the proxy, not the server', async () => {
    const server = await startEchoServer(cleanup);
    const { port } = await startSquid(cleanup, squid, server.port!);
    await new Promise<void>((resolve) => server.http.close(() => resolve()));
    const error = await expectRejects(connect(server.url, { proxy: `http://127.0.0.1:${port}`, reconnect: false }), 'UNAVAILABLE', `proxy http://127.0.0.1:${port} (option proxy) refused CONNECT 127.0.0.1:${server.port} with HTTP 503`);
    expect(error.message).to.include('the proxy could not reach');
  });

  it('tunnelrpc call --proxy goes through', async () => {
    const server = await startEchoServer(cleanup);
    const { port } = await startSquid(cleanup, squid, server.port!);
    const result = await runNode(['packages/client/dist/cli.js', 'call', server.url, 'Echo.add', '{"a":1,"b":2}', '--proxy', `http://127.0.0.1:${port}`]);
    expect(result).to.deep.include({ code: 0, stdout: '3\n' });
  });
});

describe('deploy: tinyproxy with BasicAuth', function () {
  const cleanup = new Cleanup();
  let tinyproxy: string;
  before(function () {
    tinyproxy = needBox(this, 'tinyproxy');
  });
  afterEach(() => cleanup.run());

  async function start() {
    const server = await startEchoServer(cleanup);
    const { port } = await startTinyproxy(cleanup, tinyproxy, server.port!);
    return { server, port };
  }

  it('without credentials: 407 UNAUTHENTICATED naming the proxy and its Basic scheme', async () => {
    const { server, port } = await start();
    const error = await expectRejects(connect(server.url, { proxy: `http://127.0.0.1:${port}`, reconnect: false }), 'UNAUTHENTICATED', `proxy http://127.0.0.1:${port} (option proxy) refused CONNECT 127.0.0.1:${server.port} with HTTP 407`);
    expect(error.message).to.include('it asks for Basic authentication); put the credentials in the proxy URL');
  });

  it('with wrong credentials: UNAUTHENTICATED saying the credentials were refused (tinyproxy answers 401)', async () => {
    const { server, port } = await start();
    const error = await expectRejects(connect(server.url, { proxy: `http://tunnelrpc:wrong@127.0.0.1:${port}`, reconnect: false }), 'UNAUTHENTICATED', 'it refused the credentials in the proxy URL');
    expect([401, 407]).to.include((error.data as { status: number }).status);
  });

  it('with the right credentials: a call, 1,000 multiplexed calls, a cancel and a goaway drain', async () => {
    const { server, port } = await start();
    const client = await openThrough(cleanup, server.url, { proxy: `http://tunnelrpc:s3cret@127.0.0.1:${port}` });
    await expectOneCall(client);
    await expectMultiplexed(client);
    await expectCancel(client, server);
    await expectDrain(client, server, 1);
  });
});
