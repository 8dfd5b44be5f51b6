/**
 * The real client against the real server over each transport connect() dials: TCP (listen() and attach() to an
 * application's own http server), a unix socket, and TLS with a certificate made at run time.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { get as httpGet, request as httpRequest, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { connect, createClient, type RpcClient } from '@tunnelrpc/client';
import { RpcServer } from '@tunnelrpc/server';
import { Echo, createEchoService } from '@tunnelrpc/examples';
import { Cleanup } from '../helpers/cleanup.js';
import { expectRejects } from '@tunnelrpc/test-kit';
import { APP_GREETING, makeSelfSignedCertificate, startEchoServer, tempSocketPath } from '../helpers/servers.js';

/** bodyOf reads a whole http response as text. */
async function bodyOf(res: IncomingMessage): Promise<string> {
  res.setEncoding('utf8');
  let body = '';
  for await (const chunk of res) body += chunk as string;
  return body;
}

describe('transports', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** open connects a client and closes it after the test. */
  async function open(url: string, options?: Parameters<typeof connect>[1]): Promise<RpcClient> {
    return cleanup.add(await connect(url, options), (client) => client.close());
  }

  describe('TCP via RpcServer#listen', () => {
    it('answers calls at the URL that listen(0) reports', async () => {
      const rpc = new RpcServer({ logger: () => undefined }).register(Echo, createEchoService());
      cleanup.defer(() => rpc.close());
      const address = await rpc.listen(0);
      expect(address.host).to.equal('127.0.0.1');
      expect(address.port).to.be.greaterThan(0);
      expect(address.url).to.equal(`http://127.0.0.1:${address.port}/_rpc`);

      const client = await open(address.url);
      expect(await createClient(Echo, client).add({ a: 1, b: 2 })).to.equal(3);
      expect(rpc.connectionCount).to.equal(1);
    });
  });

  describe('TCP on an attached http server', () => {
    it('serves RPC calls and the application GET route on one port', async () => {
      const server = await startEchoServer(cleanup);
      const client = await open(server.url);
      const echo = createClient(Echo, client);

      const response = await fetch(`http://127.0.0.1:${server.port}/hello`);
      expect(response.status).to.equal(200);
      expect(await response.text()).to.equal(APP_GREETING);
      expect(await echo.add({ a: 20, b: 22 })).to.equal(42);
      // The tunnel still works after more ordinary HTTP traffic on the same port.
      const again = await fetch(`http://127.0.0.1:${server.port}/hello`);
      expect(await again.text()).to.equal(APP_GREETING);
      expect(await echo.echo('still here')).to.equal('still here');
    });

    it('answers 405 to GET on the RPC path', async () => {
      const server = await startEchoServer(cleanup);
      const req = httpGet({ host: '127.0.0.1', port: server.port, path: '/_rpc', agent: false });
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      expect(res.statusCode).to.equal(405);
      expect(res.headers['allow']).to.equal('CONNECT');
      expect(await bodyOf(res)).to.equal('405 must CONNECT');
    });

    it('refuses a CONNECT to another path with 404, which connect() reports as UNIMPLEMENTED', async () => {
      const server = await startEchoServer(cleanup);
      const error = await expectRejects(connect(`http://127.0.0.1:${server.port}/elsewhere`), 'UNIMPLEMENTED', '404');
      expect(error.data).to.deep.include({ status: 404 });
      expect(server.rpc.connectionCount).to.equal(0);
    });
  });

  describe('unix socket', () => {
    it('serves calls at unix:/path', async () => {
      const socketPath = tempSocketPath();
      const server = await startEchoServer(cleanup, { socketPath });
      expect(server.url).to.equal(`unix:${socketPath}`);
      const echo = createClient(Echo, await open(server.url));
      expect(await echo.add({ a: 2, b: 3 })).to.equal(5);
      expect(await echo.echo({ over: 'unix' })).to.deep.equal({ over: 'unix' });
    });

    it('serves calls at http+unix://<percent-encoded path>/_rpc', async () => {
      const socketPath = tempSocketPath();
      await startEchoServer(cleanup, { socketPath });
      const echo = createClient(Echo, await open(`http+unix://${encodeURIComponent(socketPath)}/_rpc`));
      expect(await echo.add({ a: -1, b: 1 })).to.equal(0);
    });

    it('keeps the application GET route on the same socket', async () => {
      const socketPath = tempSocketPath();
      await startEchoServer(cleanup, { socketPath });
      await open(`unix:${socketPath}`);
      const req = httpRequest({ socketPath, path: '/hello', agent: false });
      req.end();
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      expect(res.statusCode).to.equal(200);
      expect(await bodyOf(res)).to.equal(APP_GREETING);
    });

    it('fails connect with UNAVAILABLE when nothing listens at the path', async () => {
      const error = await expectRejects(connect(`unix:${tempSocketPath()}`), 'UNAVAILABLE', 'ENOENT');
      expect(error.data).to.deep.equal({ errno: 'ENOENT' });
    });
  });

  describe('TLS', () => {
    let tls: { key: Buffer; cert: Buffer };
    before(async function () {
      this.timeout(30_000); // RSA key generation
      tls = await makeSelfSignedCertificate();
    });

    it('serves calls at https:// when the client trusts the certificate', async () => {
      const server = await startEchoServer(cleanup, { tls });
      let secureConnections = 0;
      server.http.on('secureConnection', () => secureConnections++);
      expect(server.url).to.equal(`https://127.0.0.1:${server.port}/_rpc`);

      const echo = createClient(Echo, await open(server.url, { tls: { ca: tls.cert } }));
      expect(await echo.add({ a: 40, b: 2 })).to.equal(42);
      expect(await echo.echo({ secret: 'only over TLS', bytes: Buffer.from([1, 2, 3]) })).to.deep.equal({ secret: 'only over TLS', bytes: Buffer.from([1, 2, 3]) });
      expect(secureConnections).to.equal(1);
    });

    it('keeps the application GET route on the https port', async () => {
      const server = await startEchoServer(cleanup, { tls });
      await open(server.url, { tls: { ca: tls.cert } });
      const req = httpsGet({ host: '127.0.0.1', port: server.port, path: '/hello', ca: tls.cert, agent: false });
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      expect(res.statusCode).to.equal(200);
      expect(await bodyOf(res)).to.equal(APP_GREETING);
    });

    it('fails connect with UNAVAILABLE naming the certificate problem when the client lacks the CA', async () => {
      const server = await startEchoServer(cleanup, { tls });
      const error = await expectRejects(connect(server.url), 'UNAVAILABLE', /cert/i);
      expect(error.message).to.include(`https://127.0.0.1:${server.port}/_rpc`);
      // Node's name for a self-signed leaf certificate that no CA vouches for.
      expect(error.data).to.deep.equal({ errno: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
      expect(server.rpc.connectionCount).to.equal(0);
    });

    it('fails connect with UNAVAILABLE when a plain http client dials the https port', async () => {
      const server = await startEchoServer(cleanup, { tls });
      await expectRejects(connect(`http://127.0.0.1:${server.port}/_rpc`, { handshakeTimeout: 5000 }), 'UNAVAILABLE');
      expect(server.rpc.connectionCount).to.equal(0);
    });
  });
});
