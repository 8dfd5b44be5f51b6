/**
 * The client against a hostile or faulty server, over real 127.0.0.1 sockets: servers that
 * drop every tunnel right after the 200, ping without reading, trickle a frame that never ends, or never answer the
 * CONNECT. Bounds are asserted as counts and memory figures, never as latencies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { connect, createRpcClient, type ClientOptions } from '@tunnelrpc/client';
import { encodeMessage } from '@tunnelrpc/protocol/internal';
import { expectRejects, type ScriptedPeer, ScriptedServer } from '@tunnelrpc/test-kit';
import { cleanup, noted, openTunnel, track } from './helpers.js';

function mayHaveRun(error: { data: unknown }): unknown {
  return (error.data as { mayHaveRun?: unknown }).mayHaveRun;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const GOAWAY_UNAVAILABLE = encodeMessage({ type: 8, lastId: 0, code: 'UNAVAILABLE', message: 'go away' });
// A zero-length frame: a violation (PROTOCOL.md 3).
const VIOLATION = Buffer.from([0, 0, 0, 0]);

/**
 * maxDials is the most CONNECTs a client can make in `elapsed` ms when every tunnel fails before it achieves
 * anything: the first dial, then redial k after at least half of min(maxReconnectDelay, minReconnectDelay * 2^(k-1))
 * (equal jitter), less 1 ms for timer rounding.
 */
function maxDials(elapsed: number, min: number, max: number): number {
  let dials = 1;
  let spent = 0;
  for (let k = 1; ; k++) {
    spent += Math.max(0, Math.floor(Math.min(max, min * 2 ** (k - 1)) / 2) - 1);
    if (spent > elapsed) return dials;
    dials++;
  }
}

/** storm answers every CONNECT with `script` until stopped, counting the CONNECTs. */
function storm(server: ScriptedServer, script: (peer: ScriptedPeer) => Promise<void>): { count: () => number; stop: () => void } {
  let stopped = false;
  let count = 0;
  void (async () => {
    while (!stopped) {
      const peer = await server.nextPeer();
      if (stopped) break;
      await peer.head;
      count++;
      script(peer).catch(() => undefined);
    }
  })();
  return { count: () => count, stop: () => (stopped = true) };
}

// Child processes a test started; a failed test must not leave one running.
const children = new Set<ChildProcess>();

describe('RpcClient against a hostile server', () => {
  afterEach(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    children.clear();
    await cleanup();
  });

  describe('redial backoff (redial storm, close() never resolving)', () => {
    const BACKOFF = { minReconnectDelay: 10, maxReconnectDelay: 200 } as const;
    const WINDOW_MS = 600;

    const cases: Array<[string, (peer: ScriptedPeer) => Promise<void>]> = [
      ['answers 200 and goaway UNAVAILABLE in the same write', async (peer) => {
        await peer.accept(GOAWAY_UNAVAILABLE);
        peer.socket.end();
      }],
      ['answers 200 and a violation in the same write', async (peer) => {
        await peer.accept(VIOLATION);
      }],
      ['sends goaway UNAVAILABLE 20 ms after each 200', async (peer) => {
        await peer.accept();
        await delay(20);
        await peer.write(GOAWAY_UNAVAILABLE);
        peer.socket.end();
      }],
      ['closes right after the 200', async (peer) => {
        await peer.accept();
        peer.socket.end();
      }],
    ];

    for (const [name, script] of cases) {
      it(`keeps CONNECTs within the backoff bound, and close() resolves, when the server ${name}`, async () => {
        const server = await ScriptedServer.start();
        const dials = storm(server, script);
        const started = Date.now();
        const client = track(await connect(server.url, BACKOFF));
        // A call made meanwhile ends (at its deadline, or with its tunnel); it never hangs.
        const waiting = noted(client.call('Storm.wait', null, { timeout: WINDOW_MS / 2 }));
        await delay(WINDOW_MS);
        const error = await waiting.then(() => expect.fail('the storm call succeeded'), (reason: unknown) => reason as { code: string });
        expect(error.code).to.be.oneOf(['DEADLINE_EXCEEDED', 'UNAVAILABLE']);
        const count = dials.count();
        const bound = maxDials(Date.now() - started, BACKOFF.minReconnectDelay, BACKOFF.maxReconnectDelay);
        console.log(`      ${count} CONNECTs in ${Date.now() - started} ms (bound ${bound})`);
        expect(count, `CONNECTs in the window (bound ${bound})`).to.be.within(2, bound);
        await client.close();
        expect(await client.closed).to.equal(undefined);
        dials.stop();
      });
    }

    it('redials at once after a tunnel that answered a call, so a healthy server is not made to wait', async () => {
      const server = await ScriptedServer.start();
      const connecting = connect(server.url, { minReconnectDelay: 60_000, maxReconnectDelay: 60_000 });
      const first = await server.nextPeer();
      await first.head;
      await first.accept();
      const client = track(await connecting);
      const call = client.call('Served.once');
      const request = await first.nextRequest();
      await first.respond(request.id, 1);
      expect(await call).to.equal(1);
      first.socket.destroy();
      // With a backoff of a minute, this redial comes at once only because the lost tunnel had served a call.
      const second = await server.nextPeer();
      await second.head;
      await second.accept();
      const after = client.call('After.redial');
      const again = await second.nextRequest();
      await second.respond(again.id, 2);
      expect(await after).to.equal(2);
    });
  });

  describe('close() during a dial (close() does not abort a dial in progress)', () => {
    it('destroys the socket of a dial whose CONNECT is never answered', async () => {
      const server = await ScriptedServer.start();
      const client = track(createRpcClient(server.url, { handshakeTimeout: 600_000 }));
      const peer = await server.nextPeer();
      await peer.head;
      const waiting = noted(client.call('Never.answered', null, { timeout: 600_000 }));
      await client.close();
      await peer.closed;
      const error = await expectRejects(waiting, 'UNAVAILABLE', 'close() was called');
      expect(mayHaveRun(error)).to.equal(false);
    });

    it('lets the process exit when close() is called while a redial waits for its CONNECT reply', async () => {
      const server = await ScriptedServer.start();
      const script = fileURLToPath(new URL('./fixtures/close-during-dial.js', import.meta.url));
      const child = spawn(process.execPath, [script, server.url], { stdio: ['pipe', 'pipe', 'pipe'] });
      children.add(child);
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      const lines = createInterface({ input: child.stdout });
      const seen: string[] = [];
      const connected = new Promise<void>((resolve) => lines.on('line', (line) => {
        seen.push(line);
        if (line === 'connected') resolve();
      }));
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      const first = await server.nextPeer();
      await first.head;
      await first.accept();
      await Promise.race([connected, exited.then(() => expect.fail(`the child exited early: ${stderr}`))]);
      first.socket.destroy();
      // The redial reaches us; we never answer it. A handshakeTimeout of 10 minutes would keep a leaked dial alive.
      const second = await server.nextPeer();
      await second.head;
      child.stdin.write('close\n');
      const [code] = await exited;
      expect(code, stderr).to.equal(0);
      expect(seen).to.deep.equal(['connected', 'closed']);
      await second.closed;
    });
  });

  describe('ping flood (outstanding pongs)', () => {
    it('stops reading a server that pings and never reads the pongs, holding memory near maxWriteBuffer', async () => {
      const maxWriteBuffer = 64 * 1024;
      const { peer } = await openTunnel({ maxWriteBuffer, keepaliveInterval: 0 });
      // The server never reads: our pongs pile up in the client unless it stops taking pings.
      peer.socket.pause();
      const ping = encodeMessage({ type: 6, data: 'p'.repeat(1000) });
      const batch = Buffer.concat(Array.from({ length: 64 }, () => ping));
      const total = 128 * 1024 * 1024;
      const before = process.memoryUsage();
      let sent = 0;
      while (sent < total) {
        sent += batch.length;
        if (peer.socket.write(batch)) continue;
        // The flood ends when the client stops reading: no 'drain' comes. The wait is how we notice, not a bound.
        const drained = await Promise.race([once(peer.socket, 'drain').then(() => true), delay(500).then(() => false)]);
        if (!drained) break;
      }
      const after = process.memoryUsage();
      const grown = after.arrayBuffers - before.arrayBuffers + (after.heapUsed - before.heapUsed);
      console.log(`      ping flood: server pushed ${(sent / 2 ** 20).toFixed(1)} MiB of ${total / 2 ** 20} MiB; heap+buffers grew ${(grown / 2 ** 20).toFixed(1)} MiB`);
      // Unbounded, the client read all 128 MiB and queued as many bytes of pongs.
      expect(sent).to.be.below(total / 4);
      expect(grown).to.be.below(32 * 1024 * 1024);
    });
  });

  describe('frames that never end (keepalive counts bytes)', () => {
    // Writes one byte every 10 ms of a frame that declares 4096 bytes, until the client hangs up.
    async function trickle(peer: ScriptedPeer): Promise<void> {
      await peer.write(Buffer.from([0, 0, 0x10, 0]));
      while (!peer.isEnded && !peer.socket.destroyed) {
        await delay(10);
        if (peer.socket.destroyed || peer.socket.writableEnded) break;
        await peer.write(Buffer.from([0x61])).catch(() => undefined);
      }
    }

    it('counts complete frames for keepalive: bytes of an unfinished frame do not keep the tunnel alive', async () => {
      const { peer, client } = await openTunnel({ keepaliveInterval: 50, keepaliveTimeout: 50, frameTimeout: 0 });
      const call = noted(client.call('Trickled.answer', null, { timeout: 600_000 }));
      await peer.nextRequest();
      const trickling = trickle(peer);
      const error = await expectRejects(call, 'UNAVAILABLE', 'keepalive');
      expect(mayHaveRun(error)).to.equal(true);
      await trickling;
    });

    it('closes the tunnel with goaway PROTOCOL_ERROR when a frame is not complete within frameTimeout', async () => {
      const { peer, client } = await openTunnel({ keepaliveInterval: 0, frameTimeout: 100 });
      const call = noted(client.call('Trickled.answer', null, { timeout: 600_000 }));
      await peer.nextRequest();
      const trickling = trickle(peer);
      const error = await expectRejects(call, 'UNAVAILABLE', 'frameTimeout 100 ms');
      expect(mayHaveRun(error)).to.equal(true);
      const rest = await peer.messagesUntilEnd();
      expect(rest).to.have.length(1);
      expect(rest[0]).to.include({ type: 8, code: 'PROTOCOL_ERROR' });
      await trickling;
    });

    it('rejects a frameTimeout that is not an integer of ms', () => {
      expect(() => createRpcClient('http://127.0.0.1:1/_rpc', { frameTimeout: -1 } as ClientOptions)).to.throw(/frameTimeout/);
    });
  });
});
