/**
 * Mutual TLS: a server that requires client certificates serves a client presenting one issued by its CA, shows
 * the verified certificate to `authorize` and to handlers as `ctx.peer.certificate`, and refuses a missing, an
 * expired and a wrong-CA certificate with 401, a reason the client reports as UNAUTHENTICATED, and a log entry.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { expect } from 'chai';
import { z } from 'zod';
import { connect, type ClientOptions } from '@tunnelrpc/client';
import { defineService } from '@tunnelrpc/protocol';
import { RpcServer, type PeerAddress } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { runNode } from '../helpers/processes.js';
import { expectRejects, listenAttached } from '@tunnelrpc/test-kit';

const Who = defineService('Who', {
  ami: { input: z.void(), output: z.object({ cn: z.string(), sans: z.array(z.string()), fingerprint: z.string(), auth: z.string() }) },
});

describe('mutual TLS', function () {
  this.timeout(60_000);
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  let pki: Pki;

  before(async () => {
    pki = await makePki();
  });

  async function serve(): Promise<{ url: string; logs: string[]; authorized: PeerAddress[] }> {
    const logs: string[] = [];
    const authorized: PeerAddress[] = [];
    const rpc = new RpcServer({
      requireClientCertificate: true,
      logger: (entry) => logs.push(`${entry.level} ${entry.message}`),
      authorize: (_req, peer) => {
        authorized.push(peer);
        return `service ${peer.certificate?.subject['CN'] ?? '?'}`;
      },
    }).register(Who, {
      ami: (_input, ctx) => ({
        cn: ctx.peer.certificate?.subject['CN'] ?? '',
        sans: [...(ctx.peer.certificate?.subjectAltNames ?? [])],
        fingerprint: ctx.peer.certificate?.fingerprint256 ?? '',
        auth: String(ctx.auth),
      }),
    });
    // requestCert asks for a certificate; rejectUnauthorized false lets the RpcServer refuse with a reason.
    const https: HttpsServer = createHttpsServer({ key: pki.server.key, cert: pki.server.cert, ca: pki.ca, requestCert: true, rejectUnauthorized: false });
    const port = await listenAttached(rpc, https, (step) => cleanup.defer(step));
    return { url: `https://127.0.0.1:${port}/_rpc`, logs, authorized };
  }

  const as = (pair?: { key: Buffer; cert: Buffer }): ClientOptions => ({ reconnect: false, tls: { ca: pki.ca, ...(pair ?? {}) } });

  it('serves a client whose certificate its CA issued, and shows the certificate to authorize and to handlers', async () => {
    const server = await serve();
    const client = cleanup.add(await connect(server.url, as(pki.client)), (each) => each.close());
    const who = (await client.call('Who.ami')) as { cn: string; sans: string[]; fingerprint: string; auth: string };
    expect(who.cn).to.equal('billing');
    expect(who.sans).to.deep.equal(['DNS:billing.internal', 'URI:spiffe://example.test/billing']);
    expect(who.fingerprint).to.match(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(who.auth).to.equal('service billing');
    expect(server.authorized).to.have.length(1);
    expect(server.authorized[0]!.certificate?.subject).to.deep.include({ CN: 'billing', O: 'Example' });
    expect(server.authorized[0]!.certificate?.fingerprint256).to.equal(who.fingerprint);
  });

  const refusals: Array<[string, (pki: Pki) => { key: Buffer; cert: Buffer } | undefined, string]> = [
    ['no certificate', () => undefined, 'a client certificate is required and none was sent'],
    ['an expired certificate', (each) => each.expired, 'the client certificate was refused (CERT_HAS_EXPIRED)'],
    ['a certificate from another CA', (each) => each.wrongCa, 'the client certificate was refused (UNABLE_TO_VERIFY_LEAF_SIGNATURE)'],
  ];
  for (const [name, pick, reason] of refusals) {
    it(`refuses ${name} with 401: UNAUTHENTICATED naming the reason on the client, a warn entry on the server`, async () => {
      const server = await serve();
      const error = await expectRejects(connect(server.url, as(pick(pki))), 'UNAUTHENTICATED', reason);
      expect(error.message).to.include('refused with HTTP 401');
      expect(error.data).to.deep.include({ status: 401 });
      expect(server.logs.some((line) => line.startsWith('warn CONNECT refused: ') && line.includes(reason))).to.equal(true, server.logs.join('\n'));
      expect(server.authorized).to.have.length(0);
    });
  }

  it('refuses a plain-TCP CONNECT when client certificates are required', async () => {
    const rpc = new RpcServer({ requireClientCertificate: true, logger: () => {} });
    cleanup.defer(() => rpc.close());
    const { url } = await rpc.listen(0);
    await expectRejects(connect(url, { reconnect: false }), 'UNAUTHENTICATED', 'did not come over TLS');
  });

  describe('the CLI, with TLS flags named as curl and grpcurl name them', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'tunnelrpc-cli-tls-'));
      await writeFile(join(dir, 'ca.crt'), pki.ca);
      await writeFile(join(dir, 'client.crt'), pki.client.cert);
      await writeFile(join(dir, 'client.key'), pki.client.key);
    });
    after(() => rm(dir, { recursive: true, force: true }));
    const cli = (url: string, ...flags: string[]) => runNode(['packages/client/dist/cli.js', 'call', url, 'Who.ami', ...flags]);

    it('calls with --cacert, --cert and --key', async () => {
      const server = await serve();
      const result = await cli(server.url, '--cacert', join(dir, 'ca.crt'), '--cert', join(dir, 'client.crt'), '--key', join(dir, 'client.key'));
      expect(result.stderr).to.equal('');
      expect(JSON.parse(result.stdout)).to.deep.include({ cn: 'billing', auth: 'service billing' });
      expect(result.code).to.equal(0);
    });

    it('skips verifying the server with --insecure (-k)', async () => {
      const server = await serve();
      const result = await cli(server.url, '-k', '--cert', join(dir, 'client.crt'), '--key', join(dir, 'client.key'));
      expect(result.stderr).to.equal('');
      expect(result.code).to.equal(0);
    });

    it('exits 2 naming --cacert-style advice when the server certificate is not trusted', async () => {
      const server = await serve();
      const result = await cli(server.url, '--cert', join(dir, 'client.crt'), '--key', join(dir, 'client.key'));
      expect(result.stderr).to.match(/^tunnelrpc: cannot connect to https:.*certificate.*\[UNAVAILABLE\]\n$/);
      expect(result.code).to.equal(2);
    });

    it('exits 2 with UNAUTHENTICATED when no client certificate is given', async () => {
      const server = await serve();
      const result = await cli(server.url, '--cacert', join(dir, 'ca.crt'));
      expect(result.stderr).to.include('a client certificate is required and none was sent').and.include('[UNAUTHENTICATED]');
      expect(result.code).to.equal(2);
    });

    it('exits 2 without dialing for --cert without --key, and for a file it cannot read', async () => {
      const half = await cli('https://127.0.0.1:1/_rpc', '--cert', join(dir, 'client.crt'));
      expect(half.stderr).to.include('tunnelrpc: --cert and --key go together');
      expect(half.code).to.equal(2);
      const missing = await cli('https://127.0.0.1:1/_rpc', '--cacert', join(dir, 'nope.crt'));
      expect(missing.stderr).to.include(`tunnelrpc: --cacert ${join(dir, 'nope.crt')}: cannot read it (ENOENT)`);
      expect(missing.code).to.equal(2);
    });
  });
});
