/**
 * The proxyProtocol option: listen() reads a PROXY v1 or v2 header from trusted sources before the http server sees
 * the connection. Raw sockets on 127.0.0.1 play the balancer.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { RpcServer } from '@tunnelrpc/server';
import { CONNECT_HEAD, expectErrorResponse, expectResult, readTunnelHead, request } from '@tunnelrpc/test-kit';
import { cleanup, dial, exchange, startServer, write, type TestServer } from './helpers.js';

const V1 = (source: string, port = 40000): Buffer => Buffer.from(`PROXY TCP4 ${source} 127.0.0.1 ${port} 8080\r\n`, 'latin1');
// v2 PROXY, INET, STREAM, 12 bytes: 203.0.113.7:51000 -> 127.0.0.1:8080
const V2 = Buffer.from('0d0a0d0a000d0a515549540a' + '21' + '11' + '000c' + 'cb007107' + '7f000001' + 'c738' + '1f90', 'hex');
// v2 LOCAL: a health check
const V2_LOCAL = Buffer.from('0d0a0d0a000d0a515549540a' + '20' + '00' + '0000', 'hex');

async function tunnelWith(port: number, ...chunks: Buffer[]) {
  const socket = await dial(port);
  const head = readTunnelHead(socket);
  for (const chunk of chunks) await write(socket, chunk);
  return head;
}

async function peerOf(server: TestServer, port: number, ...chunks: Buffer[]): Promise<{ address: unknown; port: unknown; family: unknown }> {
  const tunnel = await tunnelWith(port, ...chunks);
  expectResult(await tunnel.next(), 1);
  const entry = server.probe.entries.at(-1)!;
  return { ...entry.ctx.peer };
}

describe('RpcServer proxyProtocol', () => {
  afterEach(cleanup);

  describe('from a trusted source', () => {
    let server: TestServer;
    let port: number;
    beforeEach(async () => {
      server = await startServer({ proxyProtocol: { trusted: ['127.0.0.1'] } });
      port = server.port;
    });

    it("gives the handler the v1 header's source address and port as ctx.peer (header, CONNECT and a frame in one write)", async () => {
      const peer = await peerOf(server, port, Buffer.concat([V1('198.51.100.9', 41234), CONNECT_HEAD, request(1, 'Svc.context', null)]));
      expect(peer).to.deep.equal({ address: '198.51.100.9', port: 41234, family: 'IPv4' });
    });

    it("gives the v2 header's source, with the header and the CONNECT split byte by byte across writes", async () => {
      const all = Buffer.concat([V2, CONNECT_HEAD]);
      const socket = await dial(port);
      socket.setNoDelay(true);
      const head = readTunnelHead(socket);
      for (let i = 0; i < all.length; i++) await write(socket, all.subarray(i, i + 1));
      const tunnel = await head;
      await tunnel.write(request(1, 'Svc.context', null));
      expectResult(await tunnel.next(), 1);
      expect({ ...server.probe.entries.at(-1)!.ctx.peer }).to.deep.equal({ address: '203.0.113.7', port: 51000, family: 'IPv4' });
    });

    it("uses the socket's own address for v2 LOCAL and v1 UNKNOWN (health checks)", async () => {
      const local = await peerOf(server, port, Buffer.concat([V2_LOCAL, CONNECT_HEAD, request(1, 'Svc.context', null)]));
      expect(local.address).to.equal('127.0.0.1');
      const unknown = await peerOf(server, port, Buffer.concat([Buffer.from('PROXY UNKNOWN\r\n'), CONNECT_HEAD, request(1, 'Svc.context', null)]));
      expect(unknown.address).to.equal('127.0.0.1');
    });

    it('counts maxConnectionsPerIp by the header address: the second tunnel of one client is refused, another client passes', async () => {
      const capped = await startServer({ proxyProtocol: { trusted: ['127.0.0.1'] }, maxConnectionsPerIp: 1 });
      await tunnelWith(capped.port, Buffer.concat([V1('198.51.100.1'), CONNECT_HEAD]));
      await tunnelWith(capped.port, Buffer.concat([V1('198.51.100.2'), CONNECT_HEAD]));
      const refused = await exchange(capped.port, Buffer.concat([V1('198.51.100.1'), CONNECT_HEAD]));
      expect(refused.status).to.equal(503);
      expect(refused.body).to.include('198.51.100.1 has maxConnectionsPerIp 1');
      expect(capped.rpc.connectionCount).to.equal(2);
    });

    const V1_TCP6 = (source: string, port = 40000): Buffer => Buffer.from(`PROXY TCP6 ${source} ::1 ${port} 8080\r\n`, 'latin1');
    // v2 PROXY, INET6, STREAM, 36 bytes: [::ffff:198.51.100.1]:51000 -> [::1]:8080
    const V2_MAPPED = Buffer.from('0d0a0d0a000d0a515549540a' + '21' + '21' + '0024' + '00000000000000000000ffffc6336401' + '00000000000000000000000000000001' + 'c738' + '1f90', 'hex');

    it('writes an IPv4-mapped source (v1 TCP6 or v2 INET6) as its IPv4 address on ctx.peer', async () => {
      const v2 = await peerOf(server, port, Buffer.concat([V2_MAPPED, CONNECT_HEAD, request(1, 'Svc.context', null)]));
      expect(v2).to.deep.equal({ address: '198.51.100.1', port: 51000, family: 'IPv4' });
      const v1 = await peerOf(server, port, Buffer.concat([V1_TCP6('::FFFF:198.51.100.1', 41000), CONNECT_HEAD, request(1, 'Svc.context', null)]));
      expect(v1).to.deep.equal({ address: '198.51.100.1', port: 41000, family: 'IPv4' });
    });

    it('counts an IPv4-mapped source with its IPv4 address for maxConnectionsPerIp, from v1 TCP6 and v2 INET6 headers', async () => {
      const capped = await startServer({ proxyProtocol: { trusted: ['127.0.0.1'] }, maxConnectionsPerIp: 2 });
      await tunnelWith(capped.port, Buffer.concat([V1('198.51.100.1'), CONNECT_HEAD]));
      await tunnelWith(capped.port, Buffer.concat([V1_TCP6('::ffff:198.51.100.1'), CONNECT_HEAD]));
      for (const header of [V2_MAPPED, V1('198.51.100.1'), V1_TCP6('::ffff:198.51.100.1')]) {
        const refused = await exchange(capped.port, Buffer.concat([header, CONNECT_HEAD]));
        expect(refused.status).to.equal(503);
        expect(refused.body).to.include('198.51.100.1 has maxConnectionsPerIp 2');
      }
      await tunnelWith(capped.port, Buffer.concat([V1('198.51.100.2'), CONNECT_HEAD]));
      expect(capped.rpc.connectionCount).to.equal(3);
    });

    it('counts IPv6 sources by their /64 for maxConnectionsPerIp: another address in the /64 is refused, the next /64 passes', async () => {
      const capped = await startServer({ proxyProtocol: { trusted: ['127.0.0.1'] }, maxConnectionsPerIp: 1 });
      await tunnelWith(capped.port, Buffer.concat([V1_TCP6('2001:db8:1:2::1'), CONNECT_HEAD]));
      const refused = await exchange(capped.port, Buffer.concat([V1_TCP6('2001:DB8:1:2:ffff:ffff:ffff:fffe'), CONNECT_HEAD]));
      expect(refused.status).to.equal(503);
      expect(refused.body).to.include('2001:db8:1:2:ffff:ffff:ffff:fffe (counted with its 2001:db8:1:2::/64) has maxConnectionsPerIp 1');
      await tunnelWith(capped.port, Buffer.concat([V1_TCP6('2001:db8:1:3::1'), CONNECT_HEAD]));
      expect(capped.rpc.connectionCount).to.equal(2);
    });

    it('shares the fair budget of calls by /64 for IPv6 sources, and by the IPv4 address for mapped ones', async () => {
      // Past half of maxCallsInFlight 4, a source holding 2 calls has its fair share (4 / (0 others + 2)).
      const shared = await startServer({ proxyProtocol: { trusted: ['127.0.0.1'] }, maxCallsInFlight: 4 });
      const holder = await tunnelWith(shared.port, Buffer.concat([V1_TCP6('2001:db8:1:2::1'), CONNECT_HEAD]));
      await holder.write(Buffer.concat([request(1, 'Svc.hang', null), request(2, 'Svc.hang', null)]));
      await shared.probe.waitFor('hang', 1);
      const sameNet = await tunnelWith(shared.port, Buffer.concat([V1_TCP6('2001:db8:1:2::abcd'), CONNECT_HEAD]));
      const refused = expectErrorResponse(await sameNet.call(1, 'Svc.add', { a: 1, b: 2 }), 1, 'RESOURCE_EXHAUSTED');
      expect(refused.message).to.include('its source address holds more than its fair share of maxCallsInFlight 4');
      const nextNet = await tunnelWith(shared.port, Buffer.concat([V1_TCP6('2001:db8:1:3::1'), CONNECT_HEAD]));
      expect(expectResult(await nextNet.call(1, 'Svc.add', { a: 1, b: 2 }), 1)).to.equal(3);

      const mapped = await startServer({ proxyProtocol: { trusted: ['127.0.0.1'] }, maxCallsInFlight: 4 });
      const v4 = await tunnelWith(mapped.port, Buffer.concat([V1('198.51.100.1'), CONNECT_HEAD]));
      await v4.write(Buffer.concat([request(1, 'Svc.hang', null), request(2, 'Svc.hang', null)]));
      await mapped.probe.waitFor('hang', 1);
      const v6 = await tunnelWith(mapped.port, Buffer.concat([V1_TCP6('::ffff:198.51.100.1'), CONNECT_HEAD]));
      expect(expectErrorResponse(await v6.call(1, 'Svc.add', { a: 1, b: 2 }), 1, 'RESOURCE_EXHAUSTED').message).to.include('its source address holds more');
    });

    it('names the header address in its logs', async () => {
      const tunnel = await tunnelWith(port, Buffer.concat([V1('198.51.100.77', 5555), CONNECT_HEAD]));
      await tunnel.write(request(1, 'Svc.crash', undefined));
      await tunnel.next();
      expect(server.logs.some((entry) => entry.peer === '198.51.100.77:5555'), JSON.stringify(server.logs)).to.equal(true);
    });

    const refusals: Array<[string, Buffer, string]> = [
      ['a connection without a header', CONNECT_HEAD, 'did not start with a PROXY protocol header'],
      ['a v1 line past 107 bytes', Buffer.from(`PROXY UNKNOWN ${'x'.repeat(120)}\r\n`), 'no CRLF within 107 bytes'],
      ['a v1 header with a bad address', Buffer.concat([Buffer.from('PROXY TCP4 1.2.3.999 1.2.3.4 1 2\r\n'), CONNECT_HEAD]), 'not IPv4'],
    ];
    for (const [what, bytes, fragment] of refusals) {
      it(`closes ${what} unanswered and logs why; the listener keeps serving`, async () => {
        const socket = await dial(port);
        const received: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => received.push(chunk));
        socket.on('error', () => {});
        await write(socket, bytes);
        await once(socket, 'close');
        expect(Buffer.concat(received).length).to.equal(0);
        expect(server.logs.map((entry) => entry.message).join('\n')).to.include(fragment);
        expect(await peerOf(server, port, Buffer.concat([V2, CONNECT_HEAD, request(1, 'Svc.context', null)]))).to.deep.include({ address: '203.0.113.7' });
      });
    }

    it('closes a connection whose header is not complete within headerTimeout', async () => {
      const quick = await startServer({ proxyProtocol: { trusted: ['127.0.0.1'], headerTimeout: 3000 } });
      const socket = await dial(quick.port);
      socket.on('error', () => {});
      await write(socket, Buffer.from('PROXY TCP4 1.2.3.4'));
      await once(socket, 'close');
      expect(quick.logs.map((entry) => entry.message).join('\n')).to.include('no complete PROXY header within proxyProtocol.headerTimeout 3000 ms');
    });
  });

  it('closes connections from a source not in trusted, without reading a header from them', async () => {
    const server = await startServer({ proxyProtocol: { trusted: ['192.0.2.1', '::1'] } });
    const socket = await dial(server.port);
    socket.on('error', () => {});
    await write(socket, Buffer.concat([V1('198.51.100.9'), CONNECT_HEAD])).catch(() => {});
    await once(socket, 'close');
    expect(server.rpc.connectionCount).to.equal(0);
    expect(server.logs.map((entry) => entry.message).join('\n')).to.include('not in proxyProtocol.trusted');
  });

  it('refuses bad proxyProtocol options with INVALID_ARGUMENT naming them', () => {
    const bad: Array<[unknown, string]> = [
      [{ trusted: [] }, 'option proxyProtocol.trusted must be a list of 1 … 1000 source addresses'],
      [{}, 'proxyProtocol.trusted must be a list of 1 … 1000 source addresses (your balancers), such as ["127.0.0.1"]; got undefined'],
      ['127.0.0.1', 'option proxyProtocol must be an object such as { trusted: ["127.0.0.1"] }; got the string "127.0.0.1"'],
      [{ trusted: ['127.0.0.1', 'balancer.local'] }, 'item 1 is the string "balancer.local", which is not an IPv4 or IPv6 address'],
      [{ trusted: ['127.0.0.1'], headerTimeout: 2999 }, 'proxyProtocol.headerTimeout'],
    ];
    for (const [proxyProtocol, fragment] of bad) {
      expect(() => new RpcServer({ proxyProtocol: proxyProtocol as { trusted: string[] } }))
        .to.throw(fragment)
        .with.property('code', 'INVALID_ARGUMENT');
    }
  });
});
