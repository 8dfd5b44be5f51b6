/**
 * The URL forms connect() takes, seen from the server: which socket is dialed, and the CONNECT target and Host
 * that arrive. Bad URLs reject INVALID_ARGUMENT naming the accepted forms.
 */
import { expect } from 'chai';
import { connect, type RpcClient } from '@tunnelrpc/client';
import { expectRejects, type ScriptedPeer, ScriptedServer } from '@tunnelrpc/test-kit';
import { cleanup, track } from './helpers.js';

const FORMS = 'write http://host:port/_rpc, https://host:port/_rpc, unix:/path/to.sock or http+unix://%2Fpath%2Fto.sock/_rpc';

/** dialAndAccept connects to `url`, accepts on `server`, and returns the client, the peer and the head it sent. */
async function dialAndAccept(server: ScriptedServer, url: string): Promise<{ client: RpcClient; peer: ScriptedPeer; head: string }> {
  const connecting = connect(url, { reconnect: false });
  const peer = await server.nextPeer();
  const head = await peer.head;
  await peer.accept();
  return { client: track(await connecting), peer, head };
}

/** expectCallWorks makes one call over the tunnel and answers it. */
async function expectCallWorks(client: RpcClient, peer: ScriptedPeer): Promise<void> {
  const result = client.call('Echo.echo', 'over this transport');
  const request = await peer.nextRequest();
  await peer.respond(request.id, request.params);
  expect(await result).to.equal('over this transport');
}

describe('connect URL forms', () => {
  afterEach(cleanup);

  describe('TCP', () => {
    it('dials CONNECT /_rpc when the URL has no path', async () => {
      const server = await ScriptedServer.start();
      const { head, client } = await dialAndAccept(server, `http://127.0.0.1:${server.port}`);
      expect(head).to.equal(`CONNECT /_rpc HTTP/1.0\r\nHost: 127.0.0.1:${server.port}\r\n\r\n`);
      expect(client.target).to.equal(`http://127.0.0.1:${server.port}/_rpc`);
    });

    it('sends the path of the URL as the CONNECT target', async () => {
      const server = await ScriptedServer.start();
      const { head } = await dialAndAccept(server, `http://127.0.0.1:${server.port}/api/rpc/v2`);
      expect(head).to.equal(`CONNECT /api/rpc/v2 HTTP/1.0\r\nHost: 127.0.0.1:${server.port}\r\n\r\n`);
    });

    it('sends the host name of the URL as Host', async () => {
      const server = await ScriptedServer.start();
      const { head, client, peer } = await dialAndAccept(server, `http://localhost:${server.port}/_rpc`);
      expect(head).to.equal(`CONNECT /_rpc HTTP/1.0\r\nHost: localhost:${server.port}\r\n\r\n`);
      await expectCallWorks(client, peer);
    });

    it('dials an IPv6 literal and sends it in brackets as Host', async function () {
      let server: ScriptedServer;
      try {
        server = await ScriptedServer.start({ host: '::1' });
      } catch {
        this.skip();
      }
      const { head, client, peer } = await dialAndAccept(server, `http://[::1]:${server.port}/_rpc`);
      expect(head).to.equal(`CONNECT /_rpc HTTP/1.0\r\nHost: [::1]:${server.port}\r\n\r\n`);
      await expectCallWorks(client, peer);
    });
  });

  describe('unix socket', () => {
    it('dials unix:/path with CONNECT /_rpc and Host localhost, and carries calls', async () => {
      const server = await ScriptedServer.start({ unix: true });
      const url = `unix:${server.socketPath}`;
      const { head, client, peer } = await dialAndAccept(server, url);
      expect(head).to.equal('CONNECT /_rpc HTTP/1.0\r\nHost: localhost\r\n\r\n');
      expect(client.target).to.equal(url);
      await expectCallWorks(client, peer);
    });

    it('dials http+unix://<percent-encoded path>/_rpc and carries calls', async () => {
      const server = await ScriptedServer.start({ unix: true });
      const { head, client, peer } = await dialAndAccept(server, `http+unix://${encodeURIComponent(server.socketPath)}/_rpc`);
      expect(head).to.equal('CONNECT /_rpc HTTP/1.0\r\nHost: localhost\r\n\r\n');
      await expectCallWorks(client, peer);
    });

    it('sends the path of an http+unix URL as the CONNECT target', async () => {
      const server = await ScriptedServer.start({ unix: true });
      const { head } = await dialAndAccept(server, `http+unix://${encodeURIComponent(server.socketPath)}/custom`);
      expect(head).to.equal('CONNECT /custom HTTP/1.0\r\nHost: localhost\r\n\r\n');
    });

    it('rejects UNAVAILABLE with a hint when no socket exists at the path', async () => {
      const server = await ScriptedServer.start({ unix: true });
      const url = `unix:${server.socketPath}.missing`;
      const error = await expectRejects(connect(url), 'UNAVAILABLE', `cannot connect to ${url}: ENOENT (no unix socket at that path)`);
      expect(error.data).to.deep.equal({ errno: 'ENOENT' });
      expect(server.peers).to.have.length(0);
    });
  });

  describe('bad URLs', () => {
    const bad: [string, string][] = [
      ['', 'it is not a URL'],
      ['not a url', 'it is not a URL'],
      ['127.0.0.1:8080', 'it is not a URL'],
      ['ftp://127.0.0.1/_rpc', 'the scheme ftp: is not supported'],
      ['ws://127.0.0.1:8080/_rpc', 'the scheme ws: is not supported'],
      ['unix://tmp/x.sock', 'the scheme unix: is not supported'],
      ['http://127.0.0.1:99999/_rpc', 'it is not a URL'],
      ['unix:', 'the socket path is empty'],
      ['http+unix:///_rpc', 'the socket path is empty'],
      ['http+unix://%ZZ/_rpc', 'the socket path has a malformed percent escape'],
      ['http+unix://%E0%A4%A/_rpc', 'the socket path has a malformed percent escape'],
    ];
    for (const [url, why] of bad) {
      it(`rejects INVALID_ARGUMENT for ${JSON.stringify(url)}, naming the accepted forms`, async () => {
        const error = await expectRejects(connect(url), 'INVALID_ARGUMENT', `cannot use ${JSON.stringify(url)} as a tunnelrpc URL: ${why}`);
        expect(error.message).to.include(FORMS);
      });
    }
  });
});
