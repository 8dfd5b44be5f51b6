/**
 * Contract fingerprints in the handshake (PROTOCOL.md 2.6): a client built with contracts sends a hash per method;
 * the server answers which it has with other schemas or lacks, and the client reports that once, at dial, as a
 * list per method. A client without contracts gets wire-v1's exact reply.
 */
import { once } from 'node:events';
import { expect } from 'chai';
import { z } from 'zod';
import { connect, createClient, type ContractSkew } from '@tunnelrpc/client';
import { defineService } from '@tunnelrpc/protocol';
import { RpcServer } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { rawSocket, readUntil } from '@tunnelrpc/test-kit';

const v1 = defineService('inventory.Stock', {
  reserve: { input: z.object({ sku: z.string().max(20), n: z.number().int() }), output: z.object({ left: z.number() }) },
  peek: { input: z.object({ sku: z.string().max(20) }), output: z.number(), idempotent: true },
  cancel: { input: z.object({ id: z.string() }), output: z.void() },
});
// What the server runs: reserve takes one more required param, cancel is gone, peek is unchanged.
const v2 = defineService('inventory.Stock', {
  reserve: { input: z.object({ sku: z.string().max(20), n: z.number().int(), warehouse: z.string() }), output: z.object({ left: z.number() }) },
  peek: { input: z.object({ sku: z.string().max(20) }), output: z.number(), idempotent: true },
});

describe('contract fingerprints in the handshake', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function serve(): Promise<{ url: string; port: number }> {
    const rpc = new RpcServer().register(v2, { reserve: () => ({ left: 1 }), peek: () => 7 });
    cleanup.defer(() => rpc.close());
    const { url, port } = await rpc.listen(0);
    return { url, port };
  }

  for (const handshake of ['connect', 'upgrade'] as const) {
    it(`reports the skewed methods once, at dial, as a list per method (${handshake})`, async () => {
      const { url } = await serve();
      const reports: [readonly ContractSkew[], string][] = [];
      // Two tunnels: two handshakes, one report.
      const client = cleanup.add(await connect(url, { handshake, contracts: [v1], tunnelsPerEndpoint: 2, onContractSkew: (skew, at) => reports.push([skew, at]) }), (each) => each.close());
      expect(await createClient(v1, client).peek({ sku: 'A1' })).to.equal(7);
      expect(reports).to.deep.equal([[[{ method: 'inventory.Stock.reserve', problem: 'differs' }, { method: 'inventory.Stock.cancel', problem: 'missing' }], url]]);
    });
  }

  it('reports nothing when client and server agree', async () => {
    const { url } = await serve();
    const reports: unknown[] = [];
    const client = cleanup.add(await connect(url, { contracts: [v2], onContractSkew: (skew) => reports.push(skew) }), (each) => each.close());
    expect(await createClient(v2, client).peek({ sku: 'A1' })).to.equal(7);
    expect(reports).to.deep.equal([]);
  });

  it('warns through the process by default, naming each method', async () => {
    const { url } = await serve();
    const warned = once(process, 'warning');
    cleanup.add(await connect(url, { contracts: [v1] }), (each) => each.close());
    const [warning] = (await warned) as [Error & { code?: string }];
    expect(warning.code).to.equal('TUNNELRPC_CONTRACT_SKEW');
    expect(warning.message).to.equal(`contract skew with ${url}: inventory.Stock.reserve has other schemas on the server; inventory.Stock.cancel is missing on the server; calls to these methods may fail until client and server agree`);
  });

  it('keeps a throwing listener from harming the client', async () => {
    const { url } = await serve();
    const client = cleanup.add(await connect(url, { contracts: [v1], onContractSkew: () => { throw new Error('listener bug'); } }), (each) => each.close());
    expect(await createClient(v1, client).peek({ sku: 'A1' })).to.equal(7);
  });

  describe('the reply on the wire', () => {
    async function replyTo(port: number, extra: string): Promise<string> {
      const socket = await rawSocket(port);
      cleanup.defer(() => socket.destroy());
      socket.write(`CONNECT /_rpc HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`);
      return (await readUntil(socket, '\r\n\r\n')).toString('latin1');
    }

    it("is wire-v1's exact 26 bytes for a client that sends no fingerprints", async () => {
      const { port } = await serve();
      expect(await replyTo(port, '')).to.equal('HTTP/1.0 200 Connected\r\n\r\n');
    });

    it('carries the skew header for a client that sends them, and none for garbage', async () => {
      const { port } = await serve();
      expect(await replyTo(port, 'Tunnelrpc-Contract: inventory.Stock.cancel=0123456789ab\r\n')).to.equal('HTTP/1.0 200 Connected\r\nTunnelrpc-Contract-Skew: inventory.Stock.cancel=missing\r\n\r\n');
      expect(await replyTo(port, 'Tunnelrpc-Contract: \u00ff\u00fe;;==,,x\r\n')).to.equal('HTTP/1.0 200 Connected\r\nTunnelrpc-Contract-Skew: none\r\n\r\n');
    });
  });
});
