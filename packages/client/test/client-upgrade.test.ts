/**
 * connect() with handshake 'upgrade' against a hand-written server: the GET head it writes, the 101 it accepts with
 * the frames behind it, and refusals told apart by the Tunnelrpc-Server marker (PROTOCOL.md 2.3, 2.5).
 */
import { expect } from 'chai';
import { connect } from '@tunnelrpc/client';
import { encodeMessage } from '@tunnelrpc/protocol/internal';
import { expectRejects, ScriptedServer } from '@tunnelrpc/test-kit';
import { cleanup, track } from './helpers.js';

const SWITCHING = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: tunnelrpc\r\nConnection: Upgrade\r\n\r\n';
const PING_42 = encodeMessage({ type: 6, data: 42 });

async function startDial(options: Parameters<typeof connect>[1] = {}) {
  const server = await ScriptedServer.start();
  const connecting = connect(server.url, { reconnect: false, ...options });
  connecting.catch(() => {});
  const peer = await server.nextPeer();
  const head = await peer.head;
  return { server, peer, connecting, head };
}

describe('connect() handshake option', () => {
  afterEach(cleanup);

  it("refuses a handshake other than 'connect' or 'upgrade' with INVALID_ARGUMENT", async () => {
    await expectRejects(connect('http://127.0.0.1:1/_rpc', { handshake: 'websocket' as 'upgrade' }), 'INVALID_ARGUMENT', "option handshake must be 'connect' or 'upgrade'");
  });

  describe("'upgrade'", () => {
    it('writes GET <path> HTTP/1.1 with Host, the headers, Connection: Upgrade and Upgrade: tunnelrpc', async () => {
      const { head } = await startDial({ handshake: 'upgrade', headers: { Authorization: 'Bearer t', Upgrade: 'evil', connection: 'close' } });
      expect(head).to.match(/^GET \/_rpc HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\nAuthorization: Bearer t\r\nConnection: Upgrade\r\nUpgrade: tunnelrpc\r\n\r\n$/);
    });

    it('keeps a frame that arrives in the same write as the 101 head', async () => {
      const { peer, connecting } = await startDial({ handshake: 'upgrade' });
      await peer.write(Buffer.concat([Buffer.from(SWITCHING, 'latin1'), PING_42]));
      track(await connecting);
      expect(await peer.nextMessage()).to.deep.equal({ type: 7, data: 42 });
    });

    it('accepts a 101 rewritten by a proxy (lower case headers, another reason phrase)', async () => {
      const { peer, connecting } = await startDial({ handshake: 'upgrade' });
      await peer.write(Buffer.concat([Buffer.from('HTTP/1.1 101 OK\r\nupgrade: TunnelRPC\r\nconnection: upgrade\r\n\r\n', 'latin1'), PING_42]));
      track(await connecting);
      expect(await peer.nextMessage()).to.deep.equal({ type: 7, data: 42 });
    });

    it('fails UNAVAILABLE on a 101 to another protocol', async () => {
      const { peer, connecting } = await startDial({ handshake: 'upgrade' });
      await peer.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      await expectRejects(connecting, 'UNAVAILABLE', 'switched to "websocket" instead of Upgrade: tunnelrpc');
    });

    it('fails UNAVAILABLE on a 200 to the Upgrade (a box that answered without passing it on)', async () => {
      const { peer, connecting } = await startDial({ handshake: 'upgrade' });
      await peer.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi');
      await expectRejects(connecting, 'UNAVAILABLE', 'answered the Upgrade with 200 instead of 101');
    });

    it('says a proxy refused the Upgrade, pointing to its headers, when an unmarked 405 answers', async () => {
      const { peer, connecting } = await startDial({ handshake: 'upgrade' });
      await peer.write('HTTP/1.1 405 Not Allowed\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad');
      const error = await expectRejects(connecting, 'FAILED_PRECONDITION', 'Upgrade http://127.0.0.1');
      expect(error.message).to.include('a proxy between here and the server refused the Upgrade; check that the proxy forwards the Upgrade and Connection headers');
      expect(error.data).to.deep.equal({ status: 405, body: 'bad' });
    });
  });

  // With nginx up and its server down, the advice was to fix the proxy's Upgrade headers: the recipe was right, the
  // server was down. A proxy's own 502, 503 or 504 says the server behind it could not be reached.
  describe('an unmarked 502, 503 or 504 (a proxy whose server is down)', () => {
    for (const handshake of ['connect', 'upgrade'] as const) {
      for (const [status, reason] of [[502, 'Bad Gateway'], [503, 'Service Unavailable'], [504, 'Gateway Time-out']] as const) {
        it(`is UNAVAILABLE, blaming the unreachable server and not the proxy's recipe (${status}, ${handshake})`, async () => {
          const { peer, connecting } = await startDial({ handshake });
          await peer.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad`);
          const error = await expectRejects(connecting, 'UNAVAILABLE', `refused with HTTP ${status} ${reason}: bad (not from a tunnelrpc server`);
          expect(error.message).to.include('a proxy between here and the server answered for it because it could not reach the tunnelrpc server behind it; check that the server is up');
          expect(error.message).to.not.include('Upgrade and Connection headers').and.not.include("handshake: 'upgrade'");
          expect(error.data).to.deep.equal({ status, body: 'bad' });
        });
      }
    }

    it("keeps a marked 503 as the server's own (draining), naming no proxy", async () => {
      const { peer, connecting } = await startDial({ handshake: 'upgrade' });
      await peer.write('HTTP/1.1 503 Service Unavailable\r\nTunnelrpc-Server: wire-v1\r\nContent-Length: 8\r\nConnection: close\r\n\r\ndraining');
      const error = await expectRejects(connecting, 'UNAVAILABLE', 'refused with HTTP 503 Service Unavailable: draining');
      expect(error.message).to.not.include('proxy');
    });
  });

  describe("'connect' (the default)", () => {
    it('fails UNAVAILABLE on a 101 to a CONNECT', async () => {
      const { peer, connecting } = await startDial();
      await peer.write(SWITCHING);
      await expectRejects(connecting, 'UNAVAILABLE', 'answered the CONNECT with 101');
    });

    it('says a proxy refused CONNECT and points to the Upgrade handshake when a 400 has no marker (HAProxy mode http)', async () => {
      const { peer, connecting } = await startDial();
      await peer.write('HTTP/1.1 400 Bad request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      const error = await expectRejects(connecting, 'FAILED_PRECONDITION', 'refused with HTTP 400 Bad request');
      expect(error.message).to.include('a proxy between here and the server refused CONNECT');
      expect(error.message).to.include("handshake: 'upgrade'");
      expect(error.message).to.include('--upgrade');
    });

    it("reports a marked refusal as the server's own, naming no proxy", async () => {
      const { peer, connecting } = await startDial();
      await peer.write('HTTP/1.0 403 Forbidden\r\nTunnelrpc-Server: wire-v1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno');
      const error = await expectRejects(connecting, 'PERMISSION_DENIED', 'refused with HTTP 403 Forbidden: no');
      expect(error.message).not.to.include('proxy');
    });
  });
});

describe('refusal bodies', () => {
  afterEach(cleanup);

  it("shows an HTML error page (nginx's 405) as one line of text without tags or the repeated heading", async () => {
    const server = await ScriptedServer.start();
    const connecting = connect(server.url, { reconnect: false });
    connecting.catch(() => {});
    const peer = await server.nextPeer();
    await peer.head;
    const body = '<html>\r\n<head><title>405 Not Allowed</title></head>\r\n<body>\r\n<center><h1>405 Not Allowed</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n';
    await peer.write(`HTTP/1.1 405 Not Allowed\r\nContent-Type: text/html\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    // A proxy's 405 is the proxy refusing the handshake, not a missing method: FAILED_PRECONDITION, not UNIMPLEMENTED.
    const error = await expectRejects(connecting, 'FAILED_PRECONDITION', 'refused with HTTP 405 Not Allowed: 405 Not Allowed nginx/1.22.1 (not from a tunnelrpc server');
    expect((error.data as { body: string }).body).to.equal(body.trim());
  });
});
