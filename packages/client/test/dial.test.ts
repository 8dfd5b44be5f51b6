/**
 * connect() against a hand-written server over real 127.0.0.1 sockets: the CONNECT head the client writes, and
 * every way the server's reply head can go right or wrong (SECURITY.md case T24).
 */
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { expect } from 'chai';
import { connect } from '@tunnelrpc/client';
import { CONNECTED_RESPONSE, encodeMessage } from '@tunnelrpc/protocol/internal';
import { expectRejects, hex, type ScriptedPeer, ScriptedServer } from '@tunnelrpc/test-kit';
import { cleanup, freePort, nextTurn, polluted, track } from './helpers.js';

const PING_42 = encodeMessage({ type: 6, data: 42 }); // 00 00 00 03  92 06 2a

/** startDial starts a scripted server, begins a connect() with `options`, and returns the promise and the peer. */
async function startDial(options: Parameters<typeof connect>[1] = {}) {
  const server = await ScriptedServer.start();
  // One tunnel per test: reconnects are covered in reconnect.test.ts.
  const connecting = connect(server.url, { reconnect: false, ...options });
  // The test awaits `connecting` later; keep an early rejection from being reported as unhandled meanwhile.
  connecting.catch(() => {});
  const peer = await server.nextPeer();
  await peer.head;
  return { server, peer, connecting };
}

/** expectPong asserts that the client answers a ping with data 42: proof that it decoded the frame. */
async function expectPong(peer: ScriptedPeer): Promise<void> {
  expect(await peer.nextMessage()).to.deep.equal({ type: 7, data: 42 });
}

/** expectWorkingServer proves a fresh connect to `server` still succeeds after a hostile case. */
async function expectWorkingServer(server: ScriptedServer): Promise<void> {
  const connecting = connect(server.url);
  const peer = await server.nextPeer();
  await peer.head;
  await peer.accept(PING_42);
  const client = track(await connecting);
  await expectPong(peer);
  await client.close().catch(() => {});
}

/**
 * expectNoEarlierConnection dials a raw probe socket and asserts that it is the first connection the server
 * accepts: a socket opened earlier (by a connect() that should not have dialed) would be accepted before it.
 */
async function expectNoEarlierConnection(server: ScriptedServer): Promise<void> {
  const probe = netConnect({ host: '127.0.0.1', port: server.port });
  try {
    await once(probe, 'connect');
    const peer = await server.nextPeer();
    expect(peer.socket.remotePort, 'the server accepted another socket before the probe').to.equal(probe.localPort);
    expect(server.peers).to.have.length(1);
  } finally {
    probe.destroy();
  }
}

describe('connect', () => {
  afterEach(cleanup);

  describe('CONNECT request', () => {
    it('writes exactly the CONNECT head with Host and the configured headers, then waits', async () => {
      const { server, peer, connecting } = await startDial({ headers: { Authorization: 'Bearer t0k3n', 'X-Client': 'tests' } });
      expect(await peer.head).to.equal(
        `CONNECT /_rpc HTTP/1.0\r\nHost: 127.0.0.1:${server.port}\r\nAuthorization: Bearer t0k3n\r\nX-Client: tests\r\n\r\n`,
      );
      await peer.accept();
      track(await connecting);
    });

    it('keeps the Host of the URL when the options hold a Host header', async () => {
      const { server, peer, connecting } = await startDial({ headers: { host: 'evil.example', 'X-A': 'b' } });
      expect(await peer.head).to.equal(`CONNECT /_rpc HTTP/1.0\r\nHost: 127.0.0.1:${server.port}\r\nX-A: b\r\n\r\n`);
      await peer.accept();
      track(await connecting);
    });

    it('refuses a header value with CR LF before it opens any socket', async () => {
      const server = await ScriptedServer.start();
      const error = await expectRejects(
        connect(server.url, { headers: { 'X-Evil': 'a\r\nInjected: 1' } }),
        'INVALID_ARGUMENT',
        'handshake header "X-Evil"',
      );
      expect(error.message).not.to.include('Injected');
      // A probe dialed after the rejection is accepted after any socket the rejected connect() opened.
      await expectNoEarlierConnection(server);
    });
  });

  describe('200 reply', () => {
    it('keeps a frame that arrives in the same write as the 200 head (PR grpc-node#2746 class of bug)', async () => {
      const { peer, connecting } = await startDial();
      await peer.accept(PING_42);
      const client = track(await connecting);
      await expectPong(peer);
      expect(client.pendingCalls).to.equal(0);
    });

    it('closes a tunnel whose first frame, arriving with the 200 head, breaks wire-v1', async () => {
      const { peer, connecting } = await startDial();
      await peer.accept(hex('00 00 00 01 c1'));
      const client = track(await connecting);
      const goaway = await peer.nextMessage();
      expect(goaway).to.include({ type: 8, lastId: 0, code: 'PROTOCOL_ERROR' });
      expect((await client.closed)?.code).to.equal('UNAVAILABLE');
      await peer.closed;
    });

    it('resolves, then reports the tunnel lost, when the server ends right after the 200 head', async () => {
      const { server, peer, connecting } = await startDial();
      peer.socket.end(Buffer.concat([Buffer.from(CONNECTED_RESPONSE, 'latin1'), PING_42]));
      const client = track(await connecting);
      const reason = await client.closed;
      expect(reason?.code).to.equal('UNAVAILABLE');
      expect(reason?.message).to.include(`lost the tunnel to ${server.url}`);
      await expectRejects(client.call('A.b'), 'UNAVAILABLE', 'connect again');
    });

    it('keeps every frame of a burst that arrives with the 200 head', async () => {
      const { peer, connecting } = await startDial();
      await peer.accept(Buffer.concat([1, 2, 3].map((n) => encodeMessage({ type: 6, data: n }))));
      track(await connecting);
      expect([await peer.nextMessage(), await peer.nextMessage(), await peer.nextMessage()]).to.deep.equal([
        { type: 7, data: 1 },
        { type: 7, data: 2 },
        { type: 7, data: 3 },
      ]);
    });

    it('reads a 200 head and a frame split across writes byte by byte', async () => {
      const { peer, connecting } = await startDial();
      const bytes = Buffer.concat([Buffer.from(CONNECTED_RESPONSE, 'latin1'), PING_42]);
      for (let i = 0; i < bytes.length; i++) {
        await peer.write(bytes.subarray(i, i + 1));
        await nextTurn();
      }
      track(await connecting);
      await expectPong(peer);
    });

    it('accepts a head with bare LF line ends (RFC 9112 section 2.2)', async () => {
      const { peer, connecting } = await startDial();
      await peer.write(Buffer.concat([Buffer.from('HTTP/1.0 200 Connected\nServer: lf-only\n\n', 'latin1'), PING_42]));
      track(await connecting);
      await expectPong(peer);
    });

    it('accepts extra headers in the 200 head and an HTTP/1.1 status line', async () => {
      const { peer, connecting } = await startDial();
      await peer.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nX-Server: scripted\r\n\r\n', 'latin1'), PING_42]));
      track(await connecting);
      await expectPong(peer);
    });

    it('accepts a head of exactly maxHeadSize bytes', async () => {
      const { peer, connecting } = await startDial({ maxHeadSize: 64 });
      const head = headOfSize(64);
      expect(head.length).to.equal(64);
      await peer.write(Buffer.concat([head, PING_42]));
      track(await connecting);
      await expectPong(peer);
    });

    it('refuses a head of maxHeadSize + 1 bytes even when it arrives whole with a frame behind it', async () => {
      const { peer, connecting } = await startDial({ maxHeadSize: 64 });
      await peer.write(Buffer.concat([headOfSize(65), PING_42]));
      await expectRejects(connecting, 'UNAVAILABLE', 'passed 64 bytes');
      await peer.closed;
    });

    it('refuses a head of maxHeadSize + 1 bytes that arrives byte by byte', async () => {
      const { peer, connecting } = await startDial({ maxHeadSize: 64 });
      const head = headOfSize(65);
      for (let i = 0; i < head.length && !peer.isEnded; i++) {
        await peer.write(head.subarray(i, i + 1)).catch(() => {});
        await nextTurn();
      }
      await expectRejects(connecting, 'UNAVAILABLE', 'passed 64 bytes');
      await peer.closed;
    });
  });

  describe('refused handshake', () => {
    const refusals = [
      { status: 503, reason: 'Service Unavailable', code: 'UNAVAILABLE', body: 'server is draining; retry later' },
      { status: 401, reason: 'Unauthorized', code: 'UNAUTHENTICATED', body: 'missing or bad Authorization' },
      { status: 403, reason: 'Forbidden', code: 'PERMISSION_DENIED', body: 'token lacks the rpc scope' },
      { status: 404, reason: 'Not Found', code: 'UNIMPLEMENTED', body: 'no RPC endpoint at /_rpc' },
      { status: 500, reason: 'Internal Server Error', code: 'UNKNOWN', body: 'boom' },
    ] as const;
    for (const { status, reason, code, body } of refusals) {
      it(`rejects ${code} with data {status, body} when the server answers ${status}`, async () => {
        const { peer, connecting } = await startDial();
        await peer.write(
          `HTTP/1.0 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        );
        const error = await expectRejects(connecting, code, `refused with HTTP ${status} ${reason}: ${body}`);
        expect(error.data).to.deep.equal({ status, body });
        await peer.closed;
      });
    }

    it('reads a refusal body without Content-Length up to the end of the stream', async () => {
      const { peer, connecting } = await startDial();
      await peer.write('HTTP/1.0 503 Service Unavailable\r\n\r\nfirst part, ');
      await nextTurn();
      peer.socket.end('second part');
      const error = await expectRejects(connecting, 'UNAVAILABLE', 'refused with HTTP 503');
      expect(error.data).to.deep.equal({ status: 503, body: 'first part, second part' });
    });

    it('keeps at most 1 KiB of a refusal body and does not pollute Object.prototype from its headers', async () => {
      const { peer, connecting } = await startDial();
      const body = 'x'.repeat(5000);
      await peer.write(`HTTP/1.0 401 Unauthorized\r\n__proto__: polluted\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      const error = await expectRejects(connecting, 'UNAUTHENTICATED');
      expect((error.data as { body: string }).body).to.equal('x'.repeat(1024));
      expect(polluted()).to.equal(undefined);
      await peer.closed;
    });
  });

  describe('broken handshake', () => {
    it('rejects UNAVAILABLE and destroys the socket when the head passes 8 KiB without a blank line', async () => {
      // A handshakeTimeout far beyond the test timeout proves the head cap, not the timer, ends the dial.
      const { server, peer, connecting } = await startDial({ handshakeTimeout: 600_000 });
      await peer.write('HTTP/1.0 200 Connected\r\n').catch(() => {});
      const line = `X-Pad: ${'a'.repeat(100)}\r\n`;
      for (let sent = 0; sent <= 8192 && !peer.isEnded; sent += line.length) {
        await peer.write(line).catch(() => {});
      }
      const error = await expectRejects(connecting, 'UNAVAILABLE', 'passed 8192 bytes without ending');
      expect(error.message).to.include(server.url);
      await peer.closed;
      await expectWorkingServer(server);
    });

    it('rejects UNAVAILABLE at handshakeTimeout when the server says nothing', async () => {
      const { server, peer, connecting } = await startDial({ handshakeTimeout: 300 });
      const error = await expectRejects(connecting, 'UNAVAILABLE', 'within handshakeTimeout 300 ms');
      expect(error.message).to.include(server.url);
      await peer.closed;
    });

    it('rejects at handshakeTimeout while the server drips the status line byte by byte', async () => {
      const { peer, connecting } = await startDial({ handshakeTimeout: 300 });
      const status = Buffer.from('HTTP/1.0 200 Connected\r\n', 'latin1');
      let sent = 0;
      const drip = setInterval(() => {
        if (sent < status.length && !peer.isEnded) peer.socket.write(status.subarray(sent, ++sent));
      }, 50);
      try {
        await expectRejects(connecting, 'UNAVAILABLE', 'within handshakeTimeout 300 ms');
        await peer.closed;
      } finally {
        clearInterval(drip);
      }
    });

    it('rejects UNAVAILABLE when the server closes in the middle of the head', async () => {
      const { server, peer, connecting } = await startDial();
      peer.socket.end('HTTP/1.0 200 Conn');
      const error = await expectRejects(connecting, 'UNAVAILABLE', 'closed the connection during the CONNECT handshake');
      expect(error.message).to.include(server.url);
    });

    for (const [what, reply] of [
      ['an SSH banner', 'SSH-2.0-OpenSSH_9.6\r\n'],
      ['an HTTP/2 status line', 'HTTP/2 200\r\n\r\n'],
      ['a status line without a code', 'HTTP/1.0 OK\r\n\r\n'],
      ['binary noise', '\x00\x01\x02\x03\xff\xfe\r\n\r\n'],
    ] as const) {
      it(`rejects UNAVAILABLE and destroys the socket when the server answers ${what}`, async () => {
        const { server, peer, connecting } = await startDial({ handshakeTimeout: 600_000 });
        await peer.write(Buffer.from(reply, 'latin1'));
        await expectRejects(connecting, 'UNAVAILABLE', 'did not answer the CONNECT with an HTTP/1.x status line');
        await peer.closed;
        expect(polluted()).to.equal(undefined);
        await expectWorkingServer(server);
      });
    }

    it('rejects UNAVAILABLE naming the target when the connection is refused', async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}/_rpc`;
      const error = await expectRejects(connect(url), 'UNAVAILABLE', `cannot connect to ${url}: ECONNREFUSED`);
      expect(error.message).to.include('nothing listens there');
      expect(error.data).to.deep.equal({ errno: 'ECONNREFUSED' });
      expect((error.cause as NodeJS.ErrnoException).code).to.equal('ECONNREFUSED');
    });
  });

  describe('options', () => {
    const bad = [
      ['maxFrameSize', { maxFrameSize: 0 }],
      ['maxFrameSize', { maxFrameSize: 2 ** 32 }],
      ['handshakeTimeout', { handshakeTimeout: -1 }],
      ['handshakeTimeout', { handshakeTimeout: 0 }],
      ['defaultTimeout', { defaultTimeout: 1.5 }],
      ['maxPendingCalls', { maxPendingCalls: 0 }],
      ['maxHeadSize', { maxHeadSize: 10 }],
      ['maxDepth', { maxDepth: 1 }],
      ['maxItemsPerFrame', { maxItemsPerFrame: Number.NaN }],
      ['maxWriteBuffer', { maxWriteBuffer: -5 }],
    ] as const;
    for (const [name, options] of bad) {
      it(`rejects INVALID_ARGUMENT naming ${name} for ${JSON.stringify(options)}, without dialing`, async () => {
        const server = await ScriptedServer.start();
        const error = await expectRejects(connect(server.url, options), 'INVALID_ARGUMENT', `option ${name} must be an integer`);
        expect((error.data as { option: string }).option).to.equal(name);
        await expectNoEarlierConnection(server);
      });
    }

    it('treats an option set to undefined as its default', async () => {
      const { peer, connecting } = await startDial({ maxFrameSize: undefined, handshakeTimeout: undefined });
      await peer.accept(PING_42);
      track(await connecting);
      await expectPong(peer);
    });
  });
});

/** headOfSize builds a 200 head of exactly `size` bytes (CRLF line ends, blank line included), padded in a header. */
function headOfSize(size: number): Buffer {
  const fixed = 'HTTP/1.0 200 Connected\r\nX-Pad: \r\n\r\n';
  return Buffer.from(fixed.replace('X-Pad: ', `X-Pad: ${'p'.repeat(size - fixed.length)}`), 'latin1');
}
