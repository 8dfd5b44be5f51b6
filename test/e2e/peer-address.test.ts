/**
 * The address a tunnel is counted and shown under: an IPv4 client of a dual-stack listener ('::') arrives as
 * ::ffff:127.0.0.1 and is seen, counted and logged as 127.0.0.1.
 */
import { expect } from 'chai';
import { connect } from '@tunnelrpc/client';
import { RpcServer, type PeerAddress, type ServerEvent } from '@tunnelrpc/server';
import { Echo, createEchoService } from '@tunnelrpc/examples';
import { Cleanup } from '../helpers/cleanup.js';
import { expectRejects } from '@tunnelrpc/test-kit';

describe('peer addresses from a dual-stack listener', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('shows an IPv4-mapped client as its IPv4 address, and counts it so for maxConnectionsPerIp', async function () {
    const seen: PeerAddress[] = [];
    const events: ServerEvent[] = [];
    const rpc = new RpcServer({ logger: () => {}, maxConnectionsPerIp: 1, authorize: (_req, peer) => seen.push(peer), listeners: [(event) => events.push(event)] }).register(Echo, createEchoService());
    cleanup.defer(() => rpc.close());
    let port: number;
    try {
      ({ port } = await rpc.listen(0, '::'));
    } catch (error) {
      // A machine without IPv6 cannot have a dual-stack listener.
      this.skip();
      throw error;
    }
    const url = `http://127.0.0.1:${port}/_rpc`;
    const first = cleanup.add(await connect(url, { reconnect: false }), (each) => each.close());
    expect(await first.call('Echo.add', { a: 1, b: 2 })).to.equal(3);
    expect(seen[0]).to.deep.include({ address: '127.0.0.1', family: 'IPv4' });
    expect(events.find((event) => event.type === 'open')).to.deep.include({ address: '127.0.0.1' });
    const refused = await expectRejects(connect(url, { reconnect: false }), 'UNAVAILABLE');
    expect(refused.message).to.match(/503 127\.0\.0\.1 has maxConnectionsPerIp 1/);
    expect(events.find((event) => event.type === 'refused')).to.deep.include({ address: '127.0.0.1', status: 503 });
  });
});
