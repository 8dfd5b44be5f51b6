/**
 * A bad call fails that call, never the tunnel: every argument the server would refuse is refused
 * locally, for that call alone, with nothing written; and the ways a call waits for a tunnel (notifications, a lazy
 * client, wait-for-ready, connect headers given as a function).
 */
import { expect } from 'chai';
import { connect, createRpcClient, type CallOptions, type RpcClient } from '@tunnelrpc/client';
import type { RpcError } from '@tunnelrpc/protocol';
import { expectRejects, type ScriptedPeer, ScriptedServer } from '@tunnelrpc/test-kit';
import { cleanup, freePort, noted, openTunnel, track } from './helpers.js';

function mayHaveRun(error: RpcError): unknown {
  return (error.data as { mayHaveRun?: unknown } | undefined)?.mayHaveRun;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function headersOf(count: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`h${i}`, 'v']));
}

class Weird {
  readonly a = 'b';
}

const FAST = { minReconnectDelay: 5, maxReconnectDelay: 20 } as const;

describe('RpcClient call arguments', () => {
  afterEach(cleanup);

  describe('a bad argument fails that call alone, unsent, beside a call in flight', () => {
    const throwing = Object.defineProperty({}, 'x-boom', { enumerable: true, get: () => { throw new Error('getter failed'); } });
    const exactBytes = { [`x-${'n'.repeat(10)}`]: 'v'.repeat(8192 - 12) };
    const cases: Array<[string, CallOptions, string, unknown?]> = [
      ['a header value that is a number', { headers: { 'x-attempt': 2 as unknown as string } }, 'header "x-attempt" is a number'],
      ['a header value that is null', { headers: { 'x-a': null as unknown as string } }, 'header "x-a" is a null'],
      ['headers given as a Map', { headers: new Map([['a', 'b']]) as unknown as Record<string, string> }, 'not a Map'],
      ['headers given as an array', { headers: ['a'] as unknown as Record<string, string> }, 'plain object'],
      ['headers given as a string', { headers: 'a: b' as unknown as Record<string, string> }, 'plain object'],
      ['headers given as a class instance', { headers: new Weird() as unknown as Record<string, string> }, 'class instance'],
      ['a header whose getter throws', { headers: throwing as Record<string, string> }, 'getter failed'],
      ['two names equal in lower case', { headers: { 'X-Trace': 'a', 'x-trace': 'b' } }, '"x-trace" twice'],
      ['65 headers (maxHeaderCount 64)', { headers: headersOf(65) }, '65 headers exceed maxHeaderCount 64'],
      ['8193 bytes of headers (maxHeaderBytes 8192)', { headers: { ...exactBytes, z: '' } }, 'exceed maxHeaderBytes 8192'],
      ['params that cannot be encoded', {}, 'cannot be encoded', 2n ** 70n],
      ['a NaN timeout', { timeout: Number.NaN }, 'must be a number'],
      ['params nested 40 deep (maxDepth 32)', {}, 'deeper than maxDepth 32', JSON.parse(`${'['.repeat(40)}${']'.repeat(40)}`)],
    ];

    for (const [name, options, fragment, params] of cases) {
      it(`refuses ${name} with INVALID_ARGUMENT and keeps the tunnel`, async () => {
        const { peer, client } = await openTunnel();
        const inFlight = client.call('Slow.op', 1);
        const request = await peer.nextRequest();
        const error = await expectRejects(client.call('Bad.op', params ?? null, options), 'INVALID_ARGUMENT', fragment);
        expect(mayHaveRun(error)).to.equal(false);
        const notification = await expectRejects(client.notify('Bad.note', params ?? null, options), 'INVALID_ARGUMENT', fragment);
        expect(mayHaveRun(notification)).to.equal(false);
        // Nothing was written for them: the next frame the server sees is the marker, on the same tunnel.
        const marker = noted(client.call('Marker.op'));
        expect(await peer.nextRequest()).to.include({ method: 'Marker.op' });
        await peer.respond(request.id, 'in flight answered');
        expect(await inFlight).to.equal('in flight answered');
        void marker;
      });
    }

    it('sends exactly 64 headers and exactly 8192 bytes of headers (the limits pass at the boundary)', async () => {
      const { peer, client } = await openTunnel();
      const many = client.call('Many.headers', null, { headers: headersOf(64) });
      const large = client.call('Large.headers', null, { headers: exactBytes });
      const first = await peer.nextRequest();
      const second = await peer.nextRequest();
      expect(Object.keys(first.meta?.headers ?? {})).to.have.length(64);
      expect(second.meta?.headers).to.deep.equal(exactBytes);
      await peer.respond(first.id, 1);
      await peer.respond(second.id, 2);
      expect([await many, await large]).to.deep.equal([1, 2]);
    });

    it('refuses a method that is not a string with INVALID_ARGUMENT and keeps the tunnel', async () => {
      const { peer, client } = await openTunnel();
      const inFlight = client.call('Slow.op', 1);
      const request = await peer.nextRequest();
      await expectRejects(client.call(7 as unknown as string), 'INVALID_ARGUMENT', 'must be a string');
      await expectRejects(client.notify(null as unknown as string), 'INVALID_ARGUMENT', 'must be a string');
      await peer.respond(request.id, 'ok');
      expect(await inFlight).to.equal('ok');
    });

    it('refuses params with more values than maxItemsPerFrame with RESOURCE_EXHAUSTED and keeps the tunnel', async () => {
      const { peer, client } = await openTunnel({ maxItemsPerFrame: 1000 });
      const inFlight = client.call('Slow.op', 1);
      const request = await peer.nextRequest();
      const error = await expectRejects(client.call('Many.items', new Array(1000).fill(0)), 'RESOURCE_EXHAUSTED', 'maxItemsPerFrame');
      expect(mayHaveRun(error)).to.equal(false);
      const fits = client.call('Fewer.items', new Array(990).fill(0));
      expect((await peer.nextRequest()).method).to.equal('Fewer.items');
      await peer.respond(request.id, 'ok');
      expect(await inFlight).to.equal('ok');
      void noted(fits);
    });

    it('applies maxHeaderCount and maxHeaderBytes given as options', async () => {
      const { peer, client } = await openTunnel({ maxHeaderCount: 1, maxHeaderBytes: 4 });
      await expectRejects(client.call('A.b', null, { headers: { a: '1', b: '2' } }), 'INVALID_ARGUMENT', '2 headers exceed maxHeaderCount 1');
      await expectRejects(client.call('A.b', null, { headers: { ab: 'cde' } }), 'INVALID_ARGUMENT', 'exceed maxHeaderBytes 4');
      const call = client.call('A.ok', null, { headers: { ab: 'cd' } });
      const request = await peer.nextRequest();
      await peer.respond(request.id, true);
      expect(await call).to.equal(true);
    });

    it('sends header names in lower case, as HTTP compares them', async () => {
      const { peer, client } = await openTunnel();
      const call = client.call('Case.op', null, { headers: { 'X-Trace-Id': 't1', Authorization: 'Bearer a' } });
      const request = await peer.nextRequest();
      expect(request.meta?.headers).to.deep.equal({ 'x-trace-id': 't1', authorization: 'Bearer a' });
      await peer.respond(request.id, 'ok');
      expect(await call).to.equal('ok');
    });

    it('rejects bad limit options at construction with INVALID_ARGUMENT naming them', () => {
      expect(() => createRpcClient('http://127.0.0.1:1/_rpc', { maxHeaderCount: -1 })).to.throw(/maxHeaderCount/);
      expect(() => createRpcClient('http://127.0.0.1:1/_rpc', { maxHeaderBytes: 1.5 })).to.throw(/maxHeaderBytes/);
      expect(() => createRpcClient('http://127.0.0.1:1/_rpc', { waitForReady: 'yes' as unknown as boolean })).to.throw(/waitForReady/);
      expect(() => createRpcClient('http://127.0.0.1:1/_rpc', { headers: 'x' as unknown as Record<string, string> })).to.throw(/headers/);
    });
  });

  describe('#notify waits for a tunnel like a call', () => {
    it('resolves once written on the redialed tunnel when called while the tunnel is down', async () => {
      const server = await ScriptedServer.start();
      const connecting = connect(server.url, FAST);
      const first = await server.nextPeer();
      await first.head;
      await first.accept();
      const client = track(await connecting);
      first.socket.destroy();
      const second = await server.nextPeer();
      await second.head;
      const sent = client.notify('While.down', 7);
      await second.accept();
      await sent;
      expect(await second.nextMessage()).to.deep.equal({ type: 2, method: 'While.down', params: 7 });
    });

    it('fails DEADLINE_EXCEEDED, unsent, when no tunnel comes within its timeout', async () => {
      const server = await ScriptedServer.start();
      const client = track(createRpcClient(server.url, FAST));
      const peer = await server.nextPeer();
      await peer.head;
      const error = await expectRejects(client.notify('Never.sent', 1, { timeout: 30 }), 'DEADLINE_EXCEEDED', 'it did not run');
      expect(mayHaveRun(error)).to.equal(false);
    });

    it('fails CANCELLED, unsent, when its signal aborts while it waits', async () => {
      const server = await ScriptedServer.start();
      const client = track(createRpcClient(server.url, FAST));
      const peer = await server.nextPeer();
      await peer.head;
      const abort = new AbortController();
      const waiting = noted(client.notify('Never.sent', 1, { signal: abort.signal }));
      abort.abort();
      expect(mayHaveRun(await expectRejects(waiting, 'CANCELLED'))).to.equal(false);
    });

    it('counts toward maxPendingCalls', async () => {
      const server = await ScriptedServer.start();
      const client = track(createRpcClient(server.url, { ...FAST, maxPendingCalls: 1 }));
      const peer = await server.nextPeer();
      await peer.head;
      const waiting = noted(client.notify('First.note', 1, { timeout: 60_000 }));
      await expectRejects(client.notify('Second.note', 2), 'RESOURCE_EXHAUSTED', 'maxPendingCalls');
      await peer.accept();
      await waiting;
    });
  });

  describe('createRpcClient (lazy connect) and waitForReady', () => {
    it('returns a client before the server is up; a call waits for the first tunnel within its deadline', async () => {
      const port = await freePort();
      const client = track(createRpcClient(`http://127.0.0.1:${port}/_rpc`, FAST));
      // Observe a refused dial (ECONNREFUSED) through the fail-fast path before the server starts.
      for (;;) {
        const probe = await client.call('Probe.op', null, { waitForReady: false }).catch((error: RpcError) => error);
        expect((probe as RpcError).code).to.equal('UNAVAILABLE');
        if ((probe as RpcError).message.includes('ECONNREFUSED')) break;
        await delay(5);
      }
      const waiting = client.call('Early.bird', 1, { timeout: 60_000 });
      const server = await ScriptedServer.start({ port });
      const peer = await server.nextPeer();
      await peer.head;
      await peer.accept();
      const request = await peer.nextRequest();
      expect(request).to.include({ method: 'Early.bird', params: 1 });
      await peer.respond(request.id, 'worm');
      expect(await waiting).to.equal('worm');
    });

    it('fails a waiting call at its deadline as not run, naming the last dial error', async () => {
      const port = await freePort();
      const client = track(createRpcClient(`http://127.0.0.1:${port}/_rpc`, FAST));
      const error = await expectRejects(client.call('Nobody.home', null, { timeout: 100 }), 'DEADLINE_EXCEEDED', 'it did not run');
      expect(mayHaveRun(error)).to.equal(false);
    });

    it('fails calls at once with UNAVAILABLE, mayHaveRun false, while no tunnel is up when waitForReady is false', async () => {
      const server = await ScriptedServer.start();
      const client = track(createRpcClient(server.url, { ...FAST, waitForReady: false }));
      const peer = await server.nextPeer();
      await peer.head;
      const error = await expectRejects(client.call('Fail.fast'), 'UNAVAILABLE', 'waitForReady is false');
      expect(mayHaveRun(error)).to.equal(false);
      await expectRejects(client.notify('Fail.fast'), 'UNAVAILABLE', 'waitForReady is false');
      // A call may still ask to wait.
      const waiting = client.call('Patient.op', null, { waitForReady: true });
      await peer.accept();
      const request = await peer.nextRequest();
      await peer.respond(request.id, 'waited');
      expect(await waiting).to.equal('waited');
      // With a tunnel up, fail-fast calls go through.
      const direct = client.call('Direct.op');
      await peer.respond((await peer.nextRequest()).id, 'direct');
      expect(await direct).to.equal('direct');
    });

    it('fails waiting calls with UNAUTHENTICATED when the first dial is refused with 401', async () => {
      const server = await ScriptedServer.start();
      const client = track(createRpcClient(server.url, FAST));
      const waiting = noted(client.call('Needs.auth', null, { timeout: 60_000 }));
      const peer = await server.nextPeer();
      await peer.head;
      await peer.write('HTTP/1.0 401 Unauthorized\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno\n');
      peer.socket.end();
      expect(mayHaveRun(await expectRejects(waiting, 'UNAUTHENTICATED', 'HTTP 401'))).to.equal(false);
    });

    it('ends the client with the dial error when reconnect is false and the first dial fails', async () => {
      const port = await freePort();
      const client = track(createRpcClient(`http://127.0.0.1:${port}/_rpc`, { reconnect: false }));
      const waiting = noted(client.call('Once.only', null, { timeout: 60_000 }));
      const reason = await client.closed;
      expect(reason?.code).to.equal('UNAVAILABLE');
      expect(reason?.message).to.include('ECONNREFUSED');
      expect(mayHaveRun(await expectRejects(waiting, 'UNAVAILABLE', 'ECONNREFUSED'))).to.equal(false);
    });
  });

  describe('connect headers given as a function', () => {
    async function acceptNext(server: ScriptedServer): Promise<{ peer: ScriptedPeer; head: string }> {
      const peer = await server.nextPeer();
      const head = await peer.head;
      await peer.accept();
      return { peer, head };
    }

    for (const kind of ['sync', 'async'] as const) {
      it(`calls a ${kind} function before every dial, so a redial carries the new token`, async () => {
        const server = await ScriptedServer.start();
        let issued = 0;
        const headers = kind === 'sync'
          ? () => ({ Authorization: `Bearer t${++issued}` })
          : async () => {
            await delay(1);
            return { Authorization: `Bearer t${++issued}` };
          };
        const connecting = connect(server.url, { ...FAST, headers });
        const first = await acceptNext(server);
        const client: RpcClient = track(await connecting);
        expect(first.head).to.include('Authorization: Bearer t1\r\n');
        first.peer.socket.destroy();
        const second = await acceptNext(server);
        expect(second.head).to.include('Authorization: Bearer t2\r\n');
        const call = client.call('After.rotation');
        await second.peer.respond((await second.peer.nextRequest()).id, 'rotated');
        expect(await call).to.equal('rotated');
      });
    }

    it('retries with backoff when the function throws, and the waiting call goes out once it works', async () => {
      const server = await ScriptedServer.start();
      let attempts = 0;
      const client = track(createRpcClient(server.url, {
        ...FAST,
        headers: () => {
          if (++attempts < 3) throw new Error('token service down');
          return { authorization: 'Bearer ok' };
        },
      }));
      const call = client.call('After.token', null, { timeout: 60_000 });
      const { peer, head } = await acceptNext(server);
      expect(head).to.include('authorization: Bearer ok');
      expect(attempts).to.equal(3);
      await peer.respond((await peer.nextRequest()).id, 'ok');
      expect(await call).to.equal('ok');
    });

    it('fails waiting calls INVALID_ARGUMENT when the function returns something other than string headers', async () => {
      const server = await ScriptedServer.start();
      const client = track(createRpcClient(server.url, { ...FAST, headers: () => ({ authorization: 5 }) as unknown as Record<string, string> }));
      const error = await expectRejects(client.call('Bad.headers', null, { timeout: 60_000 }), 'INVALID_ARGUMENT', 'must return an object of string values');
      expect(mayHaveRun(error)).to.equal(false);
    });
  });
});
