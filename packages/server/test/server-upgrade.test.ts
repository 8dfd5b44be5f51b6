/**
 * The second way into a tunnel (PROTOCOL.md 2.5): `GET /_rpc` with `Connection: Upgrade` and `Upgrade: tunnelrpc`,
 * answered `101 Switching Protocols`, then the same frames as after `200 Connected`. Raw sockets play the client.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { RpcServer } from '@tunnelrpc/server';
import { Probe, Svc, createSvc } from './fixture.js';
import { expectResult, readTunnelHead, request, type RawTunnel } from '@tunnelrpc/test-kit';
import { cleanup, dial, exchange, startServer, track, write, type TestServer } from './helpers.js';

// PROTOCOL.md 2.5: the exact reply, written out rather than taken from the protocol package.
const SWITCHING = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: tunnelrpc\r\nConnection: Upgrade\r\n\r\n';
const UPGRADE_HEAD = 'GET /_rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: tunnelrpc\r\n\r\n';

/** openUpgraded sends the Upgrade head (plus `extra` in the same write) and resolves with a RawTunnel once 101 came. */
async function openUpgraded(port: number, extra: Uint8Array = Buffer.alloc(0), head = UPGRADE_HEAD): Promise<RawTunnel> {
  const socket = await dial(port);
  const tunnel = readTunnelHead(socket, 101);
  await write(socket, Buffer.concat([Buffer.from(head, 'latin1'), extra]));
  return await tunnel;
}

describe('RpcServer Upgrade handshake', () => {
  afterEach(cleanup);

  describe('accepting an Upgrade', () => {
    let server: TestServer;
    beforeEach(async () => {
      server = await startServer();
    });

    it('answers exactly the 101 head and serves a request that came in the same write (bytes in head are used)', async () => {
      const tunnel = await openUpgraded(server.port, request(7, 'Svc.add', { a: 2, b: 3 }));
      expect(tunnel.head.toString('latin1')).to.equal(SWITCHING);
      expect(expectResult(await tunnel.next(), 7)).to.equal(5);
      expect(server.rpc.connectionCount).to.equal(1);
    });

    it('serves a frame whose first half came with the Upgrade head and the rest in a second write', async () => {
      const frame = request(8, 'Svc.echo', { text: 'split', list: [1, 2, 3] });
      const half = Math.floor(frame.length / 2);
      const tunnel = await openUpgraded(server.port, frame.subarray(0, half));
      await tunnel.write(frame.subarray(half));
      expect(expectResult(await tunnel.next(), 8)).to.deep.equal({ text: 'split', list: [1, 2, 3] });
    });

    it('accepts the token in any case and among other offered protocols, and a query string on the path', async () => {
      const head = 'GET /_rpc?x=1 HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c, TunnelRPC\r\n\r\n';
      const tunnel = await openUpgraded(server.port, request(1, 'Svc.add', { a: 1, b: 1 }), head);
      expect(expectResult(await tunnel.next(), 1)).to.equal(2);
    });

    it('still answers 405 to a GET on the RPC path without the Upgrade headers', async () => {
      const reply = await exchange(server.port, 'GET /_rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      expect(reply.status).to.equal(405);
      expect(reply.headers['tunnelrpc-server']).to.equal('wire-v1');
    });

    it('refuses an Upgrade to another protocol on the RPC path with 400, marked as its own', async () => {
      const reply = await exchange(server.port, 'GET /_rpc HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      expect(reply.status).to.equal(400);
      expect(reply.headers['tunnelrpc-server']).to.equal('wire-v1');
      expect(reply.body).to.include('Upgrade: tunnelrpc');
      expect(server.rpc.connectionCount).to.equal(0);
    });

    it('refuses a POST with Upgrade on the RPC path with 405', async () => {
      const reply = await exchange(server.port, 'POST /_rpc HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: tunnelrpc\r\nContent-Length: 0\r\n\r\n');
      expect(reply.status).to.equal(405);
      expect(reply.body).to.include('must be a GET');
    });

    it('refuses an Upgrade to another path with 404 when the application has no upgrade listener', async () => {
      const reply = await exchange(server.port, 'GET /other HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: tunnelrpc\r\n\r\n');
      expect(reply.status).to.equal(404);
      expect(reply.headers['tunnelrpc-server']).to.equal('wire-v1');
    });

    it('marks every refusal it writes, here a 503 while closing, with Tunnelrpc-Server: wire-v1', async () => {
      const open = await openUpgraded(server.port);
      const closing = server.rpc.close();
      const reply = await exchange(server.port, UPGRADE_HEAD).catch(() => undefined);
      // The listener may already be closed; when it answered, the answer is a marked 503.
      if (reply !== undefined) {
        expect(reply.status).to.equal(503);
        expect(reply.headers['tunnelrpc-server']).to.equal('wire-v1');
      }
      await open.closed;
      await closing;
    });
  });

  describe('#attach', () => {
    it("hands Upgrades to other paths to the application's own upgrade listener", async () => {
      const seen: string[] = [];
      const http = createServer();
      http.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
        seen.push(String(req.url));
        socket.end('HTTP/1.1 418 Teapot\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      });
      track(http);
      const rpc = new RpcServer().register(Svc, createSvc(new Probe())).attach(http);
      track(rpc);
      http.listen(0, '127.0.0.1');
      await once(http, 'listening');
      const { port } = http.address() as AddressInfo;
      const app = await exchange(port, 'GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      expect(app.status).to.equal(418);
      expect(seen).to.deep.equal(['/ws']);
      const tunnel = await openUpgraded(port, request(1, 'Svc.add', { a: 20, b: 22 }));
      expect(expectResult(await tunnel.next(), 1)).to.equal(42);
      expect(seen).to.deep.equal(['/ws']);
    });

    it('routes an Upgrade through handleUpgrade for a server that owns its upgrade event', async () => {
      const http = createServer();
      track(http);
      const rpc = new RpcServer().register(Svc, createSvc(new Probe()));
      track(rpc);
      http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => rpc.handleUpgrade(req, socket, head));
      http.listen(0, '127.0.0.1');
      await once(http, 'listening');
      const { port } = http.address() as AddressInfo;
      const tunnel = await openUpgraded(port, request(3, 'Svc.echo', 'via handleUpgrade'));
      expect(expectResult(await tunnel.next(), 3)).to.equal('via handleUpgrade');
    });
  });
});

describe("RpcServer marks Node's own refusals", () => {
  afterEach(cleanup);

  it('answers a malformed head with 400 and a head too large with 431, both carrying Tunnelrpc-Server', async () => {
    const server = await startServer();
    const bad = await exchange(server.port, 'CONNECT /_rpc HTTP/1.0\r\nBad Header\r\n\r\n');
    expect(bad.status).to.equal(400);
    expect(bad.headers['tunnelrpc-server']).to.equal('wire-v1');
    const large = await exchange(server.port, `CONNECT /_rpc HTTP/1.0\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(large.status).to.equal(431);
    expect(large.headers['tunnelrpc-server']).to.equal('wire-v1');
  });
});
