import { expect } from 'chai';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { RpcError, defineService } from '@tunnelrpc/protocol';
import { encodeConnectRequest, encodeMessage } from '@tunnelrpc/protocol/internal';
import { z } from 'zod';
import { RpcServer } from '@tunnelrpc/server';
import { Probe, Svc, createSvc } from './fixture.js';
import { CONNECT_HEAD, expectResult, readTunnelHead, request } from '@tunnelrpc/test-kit';
import { cleanup, dial, exchange, openTunnel, startServer, track, write, type TestServer } from './helpers.js';

// PROTOCOL.md 2.2: the 26 bytes of the one accepted reply, written out rather than taken from the protocol package.
const CONNECTED = 'HTTP/1.0 200 Connected\r\n\r\n';

describe('RpcServer handshake', () => {
  afterEach(cleanup);

  describe('accepting a CONNECT', () => {
    let server: TestServer;
    beforeEach(async () => {
      server = await startServer();
    });

    it('answers exactly "HTTP/1.0 200 Connected\\r\\n\\r\\n" and nothing else before the first frame', async () => {
      const socket = await dial(server.port);
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      // A request goes in the same write as the head: whatever precedes its response is the whole reply head.
      await write(socket, Buffer.concat([CONNECT_HEAD, request(1, 'Svc.echo', 'after-head')]));
      const response = encodeMessage({ type: 1, id: 1, result: 'after-head' });
      const expected = Buffer.concat([Buffer.from(CONNECTED, 'latin1'), response]);
      while (Buffer.concat(chunks).length < expected.length) await once(socket, 'data');
      expect(Buffer.concat(chunks).toString('latin1')).to.equal(expected.toString('latin1'));
      expect(Buffer.byteLength(CONNECTED)).to.equal(26);
    });

    it('serves a request that arrives in the same write as the CONNECT head (bytes in head are used)', async () => {
      const tunnel = await openTunnel(server.port, request(7, 'Svc.add', { a: 2, b: 3 }));
      expect(tunnel.head.toString('latin1')).to.equal(CONNECTED);
      expect(expectResult(await tunnel.next(), 7)).to.equal(5);
      expect(server.rpc.connectionCount).to.equal(1);
    });

    it('serves a frame whose first half came with the head and the rest in three more writes', async () => {
      const frame = request(8, 'Svc.echo', { text: 'split across four writes', list: [1, 2, 3, 4, 5, 6, 7, 8] });
      const half = Math.floor(frame.length / 2);
      const third = Math.floor((frame.length - half) / 3);
      const socket = await dial(server.port);
      const headRead = readTunnelHead(socket);
      await write(socket, Buffer.concat([CONNECT_HEAD, frame.subarray(0, half)]));
      // Once the 200 has come back, the server has taken the head (and the half frame with it) off the wire.
      const tunnel = await headRead;
      await write(socket, frame.subarray(half, half + third));
      await write(socket, frame.subarray(half + third, half + 2 * third));
      await write(socket, frame.subarray(half + 2 * third));
      expect(expectResult(await tunnel.next(), 8)).to.deep.equal({ text: 'split across four writes', list: [1, 2, 3, 4, 5, 6, 7, 8] });
      // The connection keeps working after the reassembled frame.
      expect(expectResult((await tunnel.call(9, 'Svc.add', { a: 1, b: 1 })), 9)).to.equal(2);
    });

    it('serves several frames that arrive with the head in one write', async () => {
      const frames = [request(1, 'Svc.add', { a: 1, b: 2 }), request(2, 'Svc.add', { a: 3, b: 4 }), request(3, 'Svc.echo', 'three')];
      const tunnel = await openTunnel(server.port, Buffer.concat(frames));
      expect(expectResult(await tunnel.next(), 1)).to.equal(3);
      expect(expectResult(await tunnel.next(), 2)).to.equal(7);
      expect(expectResult(await tunnel.next(), 3)).to.equal('three');
    });
  });

  describe('refusing requests that are not an RPC CONNECT', () => {
    let server: TestServer;
    beforeEach(async () => {
      server = await startServer();
    });

    it('answers 404 with Connection: close and a body to a CONNECT for another path', async () => {
      const reply = await exchange(server.port, encodeConnectRequest('/elsewhere', '127.0.0.1'));
      expect(reply.status).to.equal(404);
      expect(reply.headers['connection']).to.equal('close');
      expect(reply.body).to.include('/_rpc');
      expect(Number(reply.headers['content-length'])).to.equal(Buffer.byteLength(reply.body));
      expect(server.rpc.connectionCount).to.equal(0);
    });

    it('answers 405 "405 must CONNECT" to GET on the RPC path', async () => {
      const reply = await exchange(server.port, 'GET /_rpc HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n');
      expect(reply.status).to.equal(405);
      expect(reply.headers['allow']).to.equal('CONNECT');
      expect(reply.body.trim()).to.equal('405 must CONNECT');
    });

    it('answers 405 "405 must CONNECT" to POST on the RPC path, query string included', async () => {
      const body = 'not a tunnel';
      const reply = await exchange(
        server.port,
        `POST /_rpc?x=1 HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
      expect(reply.status).to.equal(405);
      expect(reply.body.trim()).to.equal('405 must CONNECT');
    });

    it('answers 404 to other routes of the server that listen() created', async () => {
      const reply = await exchange(server.port, 'GET /other HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n');
      expect(reply.status).to.equal(404);
    });
  });

  describe('#attach', () => {
    it('leaves ordinary routes to the application handler on the same port', async () => {
      const http = createServer((req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end(`app saw ${req.method} ${req.url}`);
      });
      track(http);
      const probe = new Probe();
      const rpc = new RpcServer().register(Svc, createSvc(probe)).attach(http);
      track(rpc);
      http.listen(0, '127.0.0.1');
      await once(http, 'listening');
      const { port } = http.address() as AddressInfo;

      const reply = await exchange(port, 'GET /hello HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n');
      expect(reply.status).to.equal(200);
      expect(reply.body).to.equal('app saw GET /hello');

      const rpcPath = await exchange(port, 'GET /_rpc HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n');
      expect(rpcPath.status).to.equal(405);

      const tunnel = await openTunnel(port);
      expect(expectResult(await tunnel.call(1, 'Svc.add', { a: 20, b: 22 }), 1)).to.equal(42);
    });

    it('routes a CONNECT through handleConnect for a server that owns its connect event', async () => {
      const http = createServer();
      track(http);
      const rpc = new RpcServer().register(Svc, createSvc(new Probe()));
      track(rpc);
      http.on('connect', (req: IncomingMessage, socket, head: Buffer) => rpc.handleConnect(req, socket, head));
      http.listen(0, '127.0.0.1');
      await once(http, 'listening');
      const { port } = http.address() as AddressInfo;
      const tunnel = await openTunnel(port, request(3, 'Svc.echo', 'via handleConnect'));
      expect(expectResult(await tunnel.next(), 3)).to.equal('via handleConnect');
    });
  });

  describe('authorize', () => {
    it('answers 401 when authorize throws RpcError UNAUTHENTICATED', async () => {
      const server = await startServer({
        authorize: () => {
          throw new RpcError('UNAUTHENTICATED', 'a bearer token is required');
        },
      });
      const reply = await exchange(server.port, CONNECT_HEAD);
      expect(reply.status).to.equal(401);
      expect(reply.headers['connection']).to.equal('close');
      expect(reply.body).to.include('a bearer token is required');
      expect(server.probe.entries).to.have.length(0);
      expect(server.rpc.connectionCount).to.equal(0);
    });

    it('answers 403 when authorize throws RpcError PERMISSION_DENIED', async () => {
      const server = await startServer({
        authorize: () => {
          throw new RpcError('PERMISSION_DENIED', 'this token may not open tunnels');
        },
      });
      const reply = await exchange(server.port, CONNECT_HEAD);
      expect(reply.status).to.equal(403);
      expect(reply.body).to.include('this token may not open tunnels');
    });

    it('answers 401 when an async authorize rejects with UNAUTHENTICATED', async () => {
      const server = await startServer({ authorize: () => Promise.reject(new RpcError('UNAUTHENTICATED', 'expired token')) });
      const reply = await exchange(server.port, CONNECT_HEAD);
      expect(reply.status).to.equal(401);
    });

    it('answers 403 without the thrown text when authorize throws a plain Error', async () => {
      const server = await startServer({
        authorize: () => {
          throw new Error('ldap password in here');
        },
      });
      const reply = await exchange(server.port, CONNECT_HEAD);
      expect(reply.status).to.equal(403);
      expect(reply.body).to.not.include('ldap password');
    });

    it('hands the value authorize returns to handlers as ctx.auth, and sees the CONNECT headers', async () => {
      const server = await startServer({
        authorize: async (req) => {
          const token = req.headers['authorization'];
          if (token !== 'Bearer good') throw new RpcError('UNAUTHENTICATED', 'bad token');
          return { user: 'ada', roles: ['admin'] };
        },
      });
      const refused = await exchange(server.port, encodeConnectRequest('/_rpc', '127.0.0.1', { Authorization: 'Bearer bad' }));
      expect(refused.status).to.equal(401);

      const socket = await dial(server.port);
      const headRead = readTunnelHead(socket);
      await write(socket, encodeConnectRequest('/_rpc', '127.0.0.1', { Authorization: 'Bearer good' }));
      const tunnel = await headRead;
      const result = expectResult(await tunnel.call(1, 'Svc.context', null), 1) as { auth: unknown };
      expect(result.auth).to.deep.equal({ user: 'ada', roles: ['admin'] });
    });

    it('types ctx.auth from what authorize returns', async () => {
      const Who = defineService('Who', { ami: { input: z.void(), output: z.string() } });
      const rpc = new RpcServer({ authorize: () => ({ user: 'ada', roles: ['admin'] as string[] }) });
      track(rpc);
      rpc.register(Who, {
        ami: (_, ctx) => {
          // @ts-expect-error authorize returned no `admin` field: a typo here is a compile error.
          void ctx.auth.admin;
          return `${ctx.auth.user}:${ctx.auth.roles.join(',')}`;
        },
      });
      const { port } = await rpc.listen(0);
      const tunnel = await openTunnel(port);
      expect(expectResult(await tunnel.call(1, 'Who.ami', null), 1)).to.equal('ada:admin');
    });
  });

  describe('maxConnections', () => {
    it('answers 503 at maxConnections while the open tunnels keep working', async () => {
      const server = await startServer({ maxConnections: 2 });
      const first = await openTunnel(server.port);
      const second = await openTunnel(server.port);
      const reply = await exchange(server.port, CONNECT_HEAD);
      expect(reply.status).to.equal(503);
      expect(reply.headers['connection']).to.equal('close');
      expect(reply.body).to.include('maxConnections 2');
      expect(server.rpc.connectionCount).to.equal(2);
      expect(expectResult(await first.call(1, 'Svc.add', { a: 1, b: 2 }), 1)).to.equal(3);
      expect(expectResult(await second.call(1, 'Svc.add', { a: 3, b: 4 }), 1)).to.equal(7);
    });

    it('does not let CONNECTs that wait on an async authorize open more than maxConnections tunnels', async () => {
      let letThrough: () => void = () => {};
      const gate = new Promise<void>((resolve) => {
        letThrough = resolve;
      });
      let asked = 0;
      let allAsked: () => void = () => {};
      const bothAsked = new Promise<void>((resolve) => {
        allAsked = resolve;
      });
      const server = await startServer({
        maxConnections: 1,
        authorize: async () => {
          if (++asked === 2) allAsked();
          await gate;
          return 'ok';
        },
      });
      const a = await dial(server.port);
      const b = await dial(server.port);
      const replies = [readFirstLine(a), readFirstLine(b)];
      await write(a, CONNECT_HEAD);
      await write(b, CONNECT_HEAD);
      // Both CONNECTs passed the maxConnections check while no tunnel was open yet.
      await bothAsked;
      letThrough();
      const statuses = (await Promise.all(replies)).sort();
      expect(statuses).to.deep.equal(['HTTP/1.0 200 Connected', 'HTTP/1.0 503 Service Unavailable']);
      expect(server.rpc.connectionCount).to.equal(1);
    });
  });
});

/** readFirstLine resolves with the status line of whatever the socket receives first. */
function readFirstLine(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      resolve(text.slice(0, end));
    };
    socket.on('data', onData);
  });
}
