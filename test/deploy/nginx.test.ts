/**
 * nginx in front of a real server: `proxy_pass` with HTTP/1.1 and the Upgrade/Connection headers set (README recipe
 * nginx-http) refuses CONNECT itself and passes the Upgrade handshake; `stream` (recipe nginx-stream) passes CONNECT.
 */
import { expect } from 'chai';
import { z } from 'zod';
import { connect } from '@tunnelrpc/client';
import { defineService } from '@tunnelrpc/protocol';
import { RpcServer } from '@tunnelrpc/server';
import { fill, freePort, needBox, readmeRecipe, startBox } from '../helpers/boxes.js';
import { Cleanup } from '../helpers/cleanup.js';
import { expectRejects } from '@tunnelrpc/test-kit';
import { startEchoServer } from '../helpers/servers.js';
import { expectCancel, expectDrain, expectMultiplexed, expectOneCall, openThrough } from '../helpers/through.js';
import { startNginx } from './start.js';

const Whoami = defineService('Whoami', {
  peer: { input: z.void(), output: z.object({ address: z.string().optional(), port: z.number().optional(), socketPort: z.number().optional() }) },
});

describe('deploy: nginx', function () {
  const cleanup = new Cleanup();
  let nginx: string;
  before(function () {
    nginx = needBox(this, 'nginx');
  });
  afterEach(() => cleanup.run());

  describe('proxy_pass with the Upgrade handshake', () => {
    async function start() {
      const server = await startEchoServer(cleanup);
      const { port } = await startNginx(cleanup, nginx, 'nginx-http', '127.0.0.1:8001', server.port!, 'http');
      return { server, url: `http://127.0.0.1:${port}/_rpc` };
    }

    it('refuses CONNECT itself, reported as a proxy refusal that points to the Upgrade handshake', async () => {
      const { server, url } = await start();
      const error = await expectRejects(connect(url, { reconnect: false }), 'FAILED_PRECONDITION', 'refused with HTTP 405 Not Allowed: 405 Not Allowed nginx/');
      expect(error.message).to.include('a proxy between here and the server refused CONNECT');
      expect(error.message).to.include("handshake: 'upgrade'");
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
      expect(error.message).not.to.include('proxy');
    });

    it("reports nginx's own 502, when the server is down, as the proxy's refusal", async () => {
      const { server, url } = await start();
      await new Promise<void>((resolve) => server.http.close(() => resolve()));
      const error = await expectRejects(connect(url, { reconnect: false, handshake: 'upgrade' }), 'UNAVAILABLE', 'refused with HTTP 502');
      expect(error.message).to.include('could not reach the tunnelrpc server behind it; check that the server is up');
      expect(error.message).to.not.include('Upgrade and Connection headers');
    });
  });

  describe('stream (layer 4) with CONNECT', () => {
    async function start() {
      const server = await startEchoServer(cleanup);
      const { port } = await startNginx(cleanup, nginx, 'nginx-stream', '127.0.0.1:8002', server.port!, 'stream');
      return { server, url: `http://127.0.0.1:${port}/_rpc` };
    }

    it('passes CONNECT: a call, 1,000 multiplexed calls, a cancel', async () => {
      const { server, url } = await start();
      const client = await openThrough(cleanup, url, {});
      await expectOneCall(client);
      await expectMultiplexed(client);
      await expectCancel(client, server);
    });

    it('carries the goaway drain of server close()', async () => {
      const { server, url } = await start();
      await expectDrain(await openThrough(cleanup, url, {}), server);
    });
  });
});

describe('deploy: nginx stream with proxy_protocol on', function () {
  const cleanup = new Cleanup();
  let nginx: string;
  before(function () {
    nginx = needBox(this, 'nginx');
  });
  afterEach(() => cleanup.run());

  it('hands the server a PROXY v1 header; the tunnel serves calls on a proxyProtocol listener', async () => {
    const rpc = new RpcServer({ proxyProtocol: { trusted: ['127.0.0.1'] } }).register(Whoami, {
      peer: (_input, ctx) => ({ address: ctx.peer.address, port: ctx.peer.port, socketPort: ctx.socket.remotePort }),
    });
    cleanup.defer(() => rpc.close());
    const { port: serverPort } = await rpc.listen(0);
    const { port } = await startNginx(cleanup, nginx, 'nginx-stream', '127.0.0.1:8002', serverPort, 'stream', [['# proxy_protocol on;', 'proxy_protocol on;']]);
    const client = await openThrough(cleanup, `http://127.0.0.1:${port}/_rpc`, {});
    const peer = (await client.call('Whoami.peer')) as { address: string; port: number; socketPort: number };
    expect(peer.address).to.equal('127.0.0.1');
    // The port is the client's, from the header: nginx's own connection to the server has another.
    expect(peer.port).to.not.equal(peer.socketPort);
  });

  // A user copying the server blocks needed load_module, a pid path and temp paths to start nginx at all.
  describe('the complete nginx.conf, started as the README starts it', () => {
    it('starts without root or edits, and serves the Upgrade handshake on one port and CONNECT on the other', async () => {
      const server = await startEchoServer(cleanup);
      const [httpPort, streamPort] = [await freePort(), await freePort()];
      const config = fill(readmeRecipe('nginx-complete'), [['127.0.0.1:8001', `127.0.0.1:${httpPort}`], ['127.0.0.1:8002', `127.0.0.1:${streamPort}`], ['127.0.0.1:8080', `127.0.0.1:${server.port!}`]]);
      // As the README's command, in the foreground so that the test owns the process.
      const args = ['-p', '{dir}', '-c', 'nginx.conf', '-e', 'error.log'];
      await startBox(cleanup, nginx, { name: 'nginx', configFile: 'nginx.conf', config, checkArgs: ['-t', '-q', ...args], runArgs: [...args, '-g', 'daemon off;'], port: httpPort, openFolder: true });
      await expectOneCall(await openThrough(cleanup, `http://127.0.0.1:${httpPort}/_rpc`, { handshake: 'upgrade' }));
      await expectOneCall(await openThrough(cleanup, `http://127.0.0.1:${streamPort}/_rpc`, {}));
    });
  });
});
