/**
 * RpcClient against a hand-written server over a real 127.0.0.1 socket: calls, deadlines, cancels, limits,
 * goaway in both directions, and a server that breaks wire-v1 in every way SECURITY.md case T25 lists.
 */
import { getEventListeners } from 'node:events';
import { expect } from 'chai';
import { encodeMessage, type Message, type RequestMessage } from '@tunnelrpc/protocol/internal';
import { expectRejects, frame, hex, type ScriptedPeer } from '@tunnelrpc/test-kit';
import { cleanup, nextTurn, noted, openTunnel, polluted, type Tunnel } from './helpers.js';

/** mayHaveRun reads the flag every locally made call error carries in `data`. */
function mayHaveRun(error: { data: unknown }): unknown {
  return (error.data as { mayHaveRun?: unknown } | undefined)?.mayHaveRun;
}

/** roundTripPing proves that every frame written before it has been read and handled by the client. */
async function roundTripPing(peer: ScriptedPeer, data: unknown = 'sync'): Promise<void> {
  await peer.send({ type: 6, data });
  expect(await peer.nextMessage()).to.deep.equal({ type: 7, data });
}

/** requestPayloadSize is the frame payload size of a request the client would send. */
function requestPayloadSize(request: Omit<RequestMessage, 'type'>): number {
  return encodeMessage({ type: 0, ...request }).length - 4;
}

describe('RpcClient', () => {
  afterEach(cleanup);

  describe('#call', () => {
    it('sends [0, id, method, params, meta] and resolves with the result', async () => {
      const { peer, client } = await openTunnel({ defaultTimeout: 4321 });
      const result = client.call('Echo.echo', { a: [1, 'two', null] });
      const request = await peer.nextRequest();
      expect(request).to.deep.equal({ type: 0, id: request.id, method: 'Echo.echo', params: { a: [1, 'two', null] }, meta: { timeout: 4321 } });
      expect(client.pendingCalls).to.equal(1);
      await peer.respond(request.id, { b: true });
      expect(await result).to.deep.equal({ b: true });
      expect(client.pendingCalls).to.equal(0);
    });

    it('sends params nil when none are given', async () => {
      const { peer, client } = await openTunnel();
      const result = client.call('Echo.count');
      const request = await peer.nextRequest();
      expect(request.params).to.equal(null);
      await peer.respond(request.id, 3);
      expect(await result).to.equal(3);
    });

    it('resolves multiplexed calls answered in reverse order', async () => {
      const { peer, client } = await openTunnel();
      const calls = [0, 1, 2, 3, 4].map((n) => client.call('Echo.echo', n));
      const requests: RequestMessage[] = [];
      for (let i = 0; i < calls.length; i++) requests.push(await peer.nextRequest());
      for (const request of [...requests].reverse()) await peer.respond(request.id, `answer to ${String(request.params)}`);
      expect(await Promise.all(calls)).to.deep.equal(['answer to 0', 'answer to 1', 'answer to 2', 'answer to 3', 'answer to 4']);
    });

    it('gives every call a distinct uint32 id, increasing', async () => {
      const { peer, client } = await openTunnel();
      const calls = Array.from({ length: 20 }, (_, n) => client.call('Echo.echo', n));
      const ids: number[] = [];
      for (let i = 0; i < calls.length; i++) {
        const request = await peer.nextRequest();
        expect(request.params).to.equal(i);
        ids.push(request.id);
        await peer.respond(request.id, null);
      }
      await Promise.all(calls);
      for (const id of ids) expect(Number.isInteger(id) && id >= 0 && id <= 0xffffffff, String(id)).to.equal(true);
      for (let i = 1; i < ids.length; i++) expect(ids[i]!).to.be.greaterThan(ids[i - 1]!);
    });

    it('sends meta.timeout from the call, else defaultTimeout, and meta.headers when given', async () => {
      const { peer, client } = await openTunnel({ defaultTimeout: 7000, headers: { Authorization: 'Bearer only-in-connect' } });
      const first = client.call('A.b', 1, { timeout: 1234, headers: { 'x-trace-id': 'abc', authorization: 'per-call' } });
      const second = client.call('A.b', 2);
      const one = await peer.nextRequest();
      const two = await peer.nextRequest();
      expect(one.meta).to.deep.equal({ timeout: 1234, headers: { 'x-trace-id': 'abc', authorization: 'per-call' } });
      expect(two.meta).to.deep.equal({ timeout: 7000 });
      await peer.respond(one.id, 1);
      await peer.respond(two.id, 2);
      expect(await Promise.all([first, second])).to.deep.equal([1, 2]);
    });

    it('decodes responses that arrive many in one write and one split across writes byte by byte', async () => {
      const { peer, client } = await openTunnel();
      const calls = [0, 1, 2, 3].map((n) => client.call('Echo.echo', n));
      const requests: RequestMessage[] = [];
      for (let i = 0; i < calls.length; i++) requests.push(await peer.nextRequest());
      await peer.write(Buffer.concat(requests.slice(0, 3).map((r) => encodeMessage({ type: 1, id: r.id, result: r.params }))));
      const last = encodeMessage({ type: 1, id: requests[3]!.id, result: 'split' });
      for (let i = 0; i < last.length; i++) {
        await peer.write(last.subarray(i, i + 1));
        await nextTurn();
      }
      expect(await Promise.all(calls)).to.deep.equal([0, 1, 2, 'split']);
    });

    it('rejects with the code, message and data of an error response, and keeps the tunnel', async () => {
      const { peer, client } = await openTunnel();
      const result = client.call('Users.get', { id: 7 });
      const request = await peer.nextRequest();
      await peer.fail(request.id, 'NOT_FOUND', 'no user 7', { id: 7 });
      const error = await expectRejects(result, 'NOT_FOUND');
      expect(error.message).to.equal('no user 7');
      expect(error.data).to.deep.equal({ id: 7 });
      const next = client.call('Users.get', { id: 8 });
      await peer.respond((await peer.nextRequest()).id, 'user 8');
      expect(await next).to.equal('user 8');
    });

    it('rejects UNKNOWN, keeping the original code in data, for an error code outside the list', async () => {
      const { peer, client } = await openTunnel();
      const result = client.call('A.b');
      await peer.fail((await peer.nextRequest()).id, 'I_AM_A_TEAPOT', 'short and stout', [1]);
      const error = await expectRejects(result, 'UNKNOWN', 'I_AM_A_TEAPOT: short and stout');
      expect(error.data).to.deep.equal({ code: 'I_AM_A_TEAPOT', data: [1] });
    });

    it('resolves a result with a __proto__ key without polluting Object.prototype', async () => {
      const { peer, client } = await openTunnel();
      const result = client.call('A.b');
      const { id } = await peer.nextRequest();
      // [1, id, nil, {"__proto__": {"polluted": true}}]
      await peer.write(frame(Buffer.concat([hex('94 01'), Buffer.from([id]), hex('c0 81 a9'), Buffer.from('__proto__'), hex('81 a8'), Buffer.from('polluted'), hex('c3')])));
      const value = (await result) as Record<string, unknown>;
      expect(polluted()).to.equal(undefined);
      expect(Object.getPrototypeOf(value)).to.equal(Object.prototype);
      expect(value['polluted']).to.equal(undefined);
    });

    describe('deadline', () => {
      it('rejects DEADLINE_EXCEEDED (mayHaveRun), sends a cancel, and ignores the late answer', async () => {
        const { peer, client } = await openTunnel();
        let closed = false;
        void client.closed.then(() => (closed = true));
        const result = client.call('Slow.op', null, { timeout: 100 });
        const { id, meta } = await peer.nextRequest();
        expect(meta).to.deep.equal({ timeout: 100 });
        const error = await expectRejects(result, 'DEADLINE_EXCEEDED', 'Slow.op passed its deadline of 100 ms');
        expect(mayHaveRun(error)).to.equal(true);
        expect(await peer.nextMessage()).to.deep.equal({ type: 3, id });
        await peer.respond(id, 'too late');
        const next = client.call('Fast.op');
        const request = await peer.nextRequest();
        expect(request.method).to.equal('Fast.op');
        expect(request.id).not.to.equal(id);
        await peer.respond(request.id, 'ok');
        expect(await next).to.equal('ok');
        expect(closed).to.equal(false);
        expect(client.pendingCalls).to.equal(0);
      });

      it('fails every call of a silent server at its own deadline, with a cancel for each', async () => {
        const { peer, client } = await openTunnel();
        const calls = [150, 100, 50].map((timeout) => noted(client.call('Silent.op', timeout, { timeout })));
        const requests: RequestMessage[] = [];
        for (let i = 0; i < calls.length; i++) requests.push(await peer.nextRequest());
        for (const call of calls) expect(mayHaveRun(await expectRejects(call, 'DEADLINE_EXCEEDED'))).to.equal(true);
        const cancels = [await peer.nextMessage(), await peer.nextMessage(), await peer.nextMessage()];
        // The shortest deadline fires first.
        expect(cancels).to.deep.equal([...requests].reverse().map(({ id }) => ({ type: 3, id })));
      });

      it('rejects INVALID_ARGUMENT, unsent, for a timeout that is NaN or not a number', async () => {
        const { peer, client } = await openTunnel();
        for (const timeout of [Number.NaN, '5', {}]) {
          const error = await expectRejects(client.call('A.b', null, { timeout: timeout as number }), 'INVALID_ARGUMENT', 'timeout of A.b must be a number of ms');
          expect(mayHaveRun(error)).to.equal(false);
        }
        await roundTripPing(peer);
      });

      it('rejects DEADLINE_EXCEEDED, unsent, for a deadline already passed (ctx.deadline - Date.now() = -5) or 0', async () => {
        const { peer, client } = await openTunnel();
        for (const timeout of [-5, 0, -0.5, Number.NEGATIVE_INFINITY]) {
          const error = await expectRejects(client.call('A.b', null, { timeout }), 'DEADLINE_EXCEEDED', 'deadline had passed already');
          expect(mayHaveRun(error)).to.equal(false);
        }
        await roundTripPing(peer);
      });

      it('rounds a fractional timeout up and clamps one beyond a timer to 2147483647 ms', async () => {
        const { peer, client } = await openTunnel();
        const fractional = noted(client.call('A.frac', null, { timeout: 1.5 }));
        const huge = client.call('A.huge', null, { timeout: 2 ** 40 });
        const infinite = client.call('A.inf', null, { timeout: Number.POSITIVE_INFINITY });
        const requests = [await peer.nextRequest(), await peer.nextRequest(), await peer.nextRequest()];
        expect(requests.map((request) => request.meta?.timeout)).to.deep.equal([2, 2_147_483_647, 2_147_483_647]);
        await expectRejects(fractional, 'DEADLINE_EXCEEDED');
        for (const request of requests.slice(1)) await peer.respond(request.id, 'ok');
        expect([await huge, await infinite]).to.deep.equal(['ok', 'ok']);
      });
    });

    describe('AbortSignal', () => {
      it('rejects CANCELLED (mayHaveRun) and sends a cancel when the signal aborts', async () => {
        const { peer, client } = await openTunnel();
        const controller = new AbortController();
        const result = client.call('Slow.op', null, { signal: controller.signal });
        const { id } = await peer.nextRequest();
        controller.abort();
        const error = await expectRejects(result, 'CANCELLED', 'Slow.op was cancelled by its AbortSignal');
        expect(mayHaveRun(error)).to.equal(true);
        expect(await peer.nextMessage()).to.deep.equal({ type: 3, id });
        // The server's CANCELLED answer to the cancel is absorbed.
        await peer.fail(id, 'CANCELLED', 'cancelled by the client');
        await roundTripPing(peer);
        expect(client.pendingCalls).to.equal(0);
      });

      it('rejects CANCELLED without sending anything when the signal is already aborted', async () => {
        const { peer, client } = await openTunnel();
        const error = await expectRejects(client.call('Never.sent', null, { signal: AbortSignal.abort() }), 'CANCELLED', 'not sent');
        expect(mayHaveRun(error)).to.equal(false);
        const next = client.call('Sent.next');
        const request = await peer.nextRequest();
        expect(request.method).to.equal('Sent.next');
        await peer.respond(request.id, 1);
        await next;
      });

      it('rejects DEADLINE_EXCEEDED when an AbortSignal.timeout() fires', async () => {
        const { peer, client } = await openTunnel();
        const result = client.call('Slow.op', null, { signal: AbortSignal.timeout(50) });
        const { id } = await peer.nextRequest();
        await expectRejects(result, 'DEADLINE_EXCEEDED');
        expect(await peer.nextMessage()).to.deep.equal({ type: 3, id });
      });

      it('forgets the signal once the call is answered: a later abort sends nothing', async () => {
        const { peer, client } = await openTunnel();
        const controller = new AbortController();
        const result = client.call('Fast.op', null, { signal: controller.signal });
        await peer.respond((await peer.nextRequest()).id, 'done');
        expect(await result).to.equal('done');
        // The listener is removed, so a long-lived signal shared by many calls does not retain them.
        expect(getEventListeners(controller.signal, 'abort')).to.have.length(0);
        controller.abort();
        await roundTripPing(peer);
      });
    });

    describe('limits', () => {
      it('rejects RESOURCE_EXHAUSTED, unsent, past maxPendingCalls, and sends again once a call ends', async () => {
        const { peer, client } = await openTunnel({ maxPendingCalls: 3 });
        const calls = [1, 2, 3].map((n) => client.call('Echo.echo', n));
        const requests = [await peer.nextRequest(), await peer.nextRequest(), await peer.nextRequest()];
        const error = await expectRejects(client.call('Echo.echo', 4), 'RESOURCE_EXHAUSTED', '3 calls are waiting for answers (maxPendingCalls)');
        expect(mayHaveRun(error)).to.equal(false);
        await peer.respond(requests[0]!.id, 1);
        expect(await calls[0]).to.equal(1);
        const fifth = client.call('Echo.echo', 5);
        const request = await peer.nextRequest();
        expect(request.params, 'the refused call was sent').to.equal(5);
        await peer.respond(request.id, 5);
        await peer.respond(requests[1]!.id, 2);
        await peer.respond(requests[2]!.id, 3);
        expect(await Promise.all([fifth, calls[1], calls[2]])).to.deep.equal([5, 2, 3]);
      });

      it('counts a call given up locally toward maxPendingCalls until the server answers it', async () => {
        const { peer, client } = await openTunnel({ maxPendingCalls: 1 });
        const first = client.call('Slow.op', null, { timeout: 50 });
        const { id } = await peer.nextRequest();
        await expectRejects(first, 'DEADLINE_EXCEEDED');
        expect(await peer.nextMessage()).to.deep.equal({ type: 3, id });
        await expectRejects(client.call('Next.op'), 'RESOURCE_EXHAUSTED', 'maxPendingCalls');
        await peer.fail(id, 'CANCELLED', 'cancelled');
        await roundTripPing(peer);
        const next = client.call('Next.op');
        await peer.respond((await peer.nextRequest()).id, 'ok');
        expect(await next).to.equal('ok');
      });

      it('sends a request of exactly maxFrameSize bytes and refuses one byte more, unsent, keeping the tunnel', async () => {
        const maxFrameSize = 200;
        const { peer, client } = await openTunnel({ maxFrameSize, defaultTimeout: 30_000 });
        // Ids below 128 take one byte, so the payload size does not depend on which id the call gets.
        const base = requestPayloadSize({ id: 1, method: 'Big.put', params: '', meta: { timeout: 30_000 } });
        const fits = 'x'.repeat(maxFrameSize - base - 1); // -1: a str8 header is one byte longer than fixstr
        expect(requestPayloadSize({ id: 1, method: 'Big.put', params: fits, meta: { timeout: 30_000 } })).to.equal(maxFrameSize);
        const ok = client.call('Big.put', fits);
        const request = await peer.nextRequest();
        expect(request.params).to.equal(fits);
        await peer.respond(request.id, 'stored');
        expect(await ok).to.equal('stored');

        const error = await expectRejects(client.call('Big.put', `${fits}x`), 'RESOURCE_EXHAUSTED', 'Big.put not sent: frame of 201 bytes to send exceeds maxFrameSize 200');
        expect(error.data).to.deep.equal({ size: 201, maxFrameSize: 200, mayHaveRun: false });
        const small = client.call('Small.put', 1);
        const next = await peer.nextRequest();
        expect(next.method).to.equal('Small.put');
        await peer.respond(next.id, 'ok');
        expect(await small).to.equal('ok');
      });

      it('rejects INVALID_ARGUMENT, unsent, for params MessagePack cannot encode', async () => {
        const { peer, client } = await openTunnel();
        const error = await expectRejects(client.call('A.b', { n: 2n ** 70n }), 'INVALID_ARGUMENT', 'A.b not sent: its params cannot be encoded');
        expect(mayHaveRun(error)).to.equal(false);
        await roundTripPing(peer);
      });

      it('holds calls while maxWriteBuffer bytes wait for a server that does not read, then sends them in order', async () => {
        const { peer, client } = await openTunnel({ maxWriteBuffer: 64 * 1024 });
        peer.socket.pause();
        const chunk = 'x'.repeat(64 * 1024);
        // 300 calls of 64 KiB (19 MiB) to a server that reads nothing: far more than the kernel buffers hold, so
        // most wait in the client instead of piling up in the socket.
        const calls = Array.from({ length: 300 }, (_, i) => client.call('Fill.up', `${i}:${chunk}`, { timeout: 60_000 }));
        await nextTurn();
        expect(client.pendingCalls).to.equal(300);
        peer.socket.resume();
        for (let i = 0; i < calls.length; i++) {
          const request = await peer.nextRequest();
          expect(String(request.params).split(':')[0]).to.equal(String(i));
          await peer.respond(request.id, i);
        }
        expect(await Promise.all(calls)).to.deep.equal(Array.from({ length: 300 }, (_, i) => i));
      });

      it('fails a call held for a server that does not read at its deadline, as not run', async () => {
        const { peer, client } = await openTunnel({ maxWriteBuffer: 1024 });
        peer.socket.pause();
        // 32 MiB to a server that reads nothing: more than loopback's kernel buffers take, so bytes stay queued.
        const filler = 'x'.repeat(1024 * 1024);
        const fillers = Array.from({ length: 32 }, () => client.call('Fill.up', filler, { timeout: 60_000 }));
        for (const each of fillers) each.catch(() => {});
        await nextTurn();
        const error = await expectRejects(client.call('Probe.held', null, { timeout: 50 }), 'DEADLINE_EXCEEDED', 'it did not run');
        expect(mayHaveRun(error)).to.equal(false);
      });

      it('sends a burst larger than maxWriteBuffer made in one tick to a server that reads', async () => {
        const { peer, client } = await openTunnel({ maxWriteBuffer: 64 * 1024 });
        const chunk = 'x'.repeat(16 * 1024);
        // 10 calls of 16 KiB in one tick: 160 KiB corked at once, none of it left over from an earlier tick.
        const calls = Array.from({ length: 10 }, () => client.call('Burst.send', chunk));
        for (let i = 0; i < calls.length; i++) await peer.respond((await peer.nextRequest()).id, i);
        expect(await Promise.all(calls)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      });
    });
  });

  describe('#notify', () => {
    it('sends [2, method, params] and [2, method, params, {headers}], resolving once written, with no answer awaited', async () => {
      const { peer, client } = await openTunnel();
      expect(await client.notify('Log.write', { line: 'a' })).to.equal(undefined);
      await client.notify('Log.write', null, { headers: { 'X-Trace-Id': 't1' } });
      expect(await peer.nextMessage()).to.deep.equal({ type: 2, method: 'Log.write', params: { line: 'a' } });
      expect(await peer.nextMessage()).to.deep.equal({ type: 2, method: 'Log.write', params: null, meta: { headers: { 'x-trace-id': 't1' } } });
      expect(client.pendingCalls).to.equal(0);
    });

    it('rejects RESOURCE_EXHAUSTED for a notification over maxFrameSize, and sends nothing', async () => {
      const { peer, client } = await openTunnel({ maxFrameSize: 100 });
      const tooLarge = await expectRejects(client.notify('Log.write', 'x'.repeat(200)), 'RESOURCE_EXHAUSTED', 'exceeds maxFrameSize 100');
      expect(mayHaveRun(tooLarge)).to.equal(false);
      await expectRejects(client.notify('Log.write', 2n ** 70n), 'INVALID_ARGUMENT', 'cannot be encoded');
      await roundTripPing(peer);
    });
  });

  describe('ping', () => {
    it('answers a ping with a pong carrying the same data', async () => {
      const { peer } = await openTunnel();
      await roundTripPing(peer, { nested: [1, 'two', null, { three: 3.5 }] });
      await roundTripPing(peer, null);
    });

    it('ignores a pong nobody asked for', async () => {
      const { peer, client } = await openTunnel();
      await peer.send({ type: 7, data: 'unrequested' });
      const result = client.call('A.b');
      await peer.respond((await peer.nextRequest()).id, 'fine');
      expect(await result).to.equal('fine');
    });
  });

  describe('a server that breaks wire-v1 (T25)', () => {
    /**
     * expectViolation asserts the whole reaction to a broken server: goaway `code` (lastId 0) whose message holds
     * `fragment`, then the end of the stream; every pending call rejects UNAVAILABLE (may have run); `closed`
     * resolves with UNAVAILABLE; new calls fail unsent; Object.prototype is untouched.
     */
    async function expectViolation(tunnel: Tunnel, pending: Promise<unknown>[], code: string, fragment: string): Promise<void> {
      const { peer, client, server } = tunnel;
      const messages = await peer.messagesUntilEnd();
      expect(messages).to.have.length(1);
      const goaway = messages[0] as Extract<Message, { type: 8 }>;
      expect({ type: goaway.type, lastId: goaway.lastId, code: goaway.code }).to.deep.equal({ type: 8, lastId: 0, code });
      expect(goaway.message).to.include(fragment);
      for (const call of pending) {
        const error = await expectRejects(call, 'UNAVAILABLE', `tunnel to ${server.url} closed: the server sent invalid data`);
        expect(mayHaveRun(error)).to.equal(true);
      }
      const reason = await client.closed;
      expect(reason?.code).to.equal('UNAVAILABLE');
      expect(reason?.message).to.include(fragment);
      expect(mayHaveRun(await expectRejects(client.call('After.close'), 'UNAVAILABLE', 'connect again'))).to.equal(false);
      expect(polluted()).to.equal(undefined);
      await peer.closed;
    }

    /** pendingPair starts two calls and returns them with the id of the first. */
    async function pendingPair(tunnel: Tunnel): Promise<{ calls: Promise<unknown>[]; id: number }> {
      const calls = [noted(tunnel.client.call('Pending.one')), noted(tunnel.client.call('Pending.two'))];
      const first = await tunnel.peer.nextRequest();
      await tunnel.peer.nextRequest();
      return { calls, id: first.id };
    }

    it('sends goaway PROTOCOL_ERROR, closes and fails every pending call when the server answers an unknown id', async () => {
      const tunnel = await openTunnel();
      const other = await openTunnel();
      const { calls } = await pendingPair(tunnel);
      await tunnel.peer.respond(99, 'who asked?');
      await expectViolation(tunnel, calls, 'PROTOCOL_ERROR', 'request id 99, which is not waiting for an answer');
      // Another tunnel is unaffected.
      const result = other.client.call('Still.works');
      await other.peer.respond((await other.peer.nextRequest()).id, 'yes');
      expect(await result).to.equal('yes');
    });

    it('sends goaway PROTOCOL_ERROR when the server answers the same id twice', async () => {
      const tunnel = await openTunnel();
      const { calls, id } = await pendingPair(tunnel);
      await tunnel.peer.write(Buffer.concat([encodeMessage({ type: 1, id, result: 'once' }), encodeMessage({ type: 1, id, result: 'twice' })]));
      expect(await calls[0]).to.equal('once');
      await expectViolation(tunnel, calls.slice(1), 'PROTOCOL_ERROR', `request id ${id}, which is not waiting`);
    });

    it('sends goaway RESOURCE_EXHAUSTED on the 4-byte header of a frame over maxFrameSize', async () => {
      const tunnel = await openTunnel({ maxFrameSize: 1024 });
      const { calls } = await pendingPair(tunnel);
      await tunnel.peer.write(hex('00 00 04 01')); // declares 1025 bytes, then silence
      await expectViolation(tunnel, calls, 'RESOURCE_EXHAUSTED', 'frame of 1025 bytes received exceeds maxFrameSize 1024');
    });

    it('accepts a response frame of exactly maxFrameSize bytes', async () => {
      const { peer, client } = await openTunnel({ maxFrameSize: 1024 });
      const result = client.call('Big.get');
      const { id } = await peer.nextRequest();
      const base = encodeMessage({ type: 1, id, result: 'x'.repeat(300) }).length - 4;
      const response = encodeMessage({ type: 1, id, result: 'x'.repeat(300 + 1024 - base) });
      expect(response.length - 4).to.equal(1024);
      await peer.write(response);
      expect(((await result) as string).length).to.equal(300 + 1024 - base);
    });

    // Payloads for a response to the pending call `id` (ids below 128 are one fixint byte).
    const malformed: [string, (id: number) => Buffer, string, string?][] = [
      ['a zero-length frame', () => Buffer.alloc(0), 'PROTOCOL_ERROR'],
      ['the never-used byte c1', () => hex('c1'), 'PROTOCOL_ERROR', '0xc1'],
      ['a truncated string a5 61 62', () => hex('a5 61 62'), 'PROTOCOL_ERROR', 'truncated'],
      ['trailing bytes after the message', (id) => Buffer.concat([hex('94 01'), Buffer.from([id]), hex('c0 01 01 02 03')]), 'PROTOCOL_ERROR', 'left over'],
      ['a msgpackr record ext d4 72 40', (id) => Buffer.concat([hex('94 01'), Buffer.from([id]), hex('c0 d4 72 40')]), 'PROTOCOL_ERROR', 'extension type 114'],
      ['a structured-clone cycle d6 69 … d6 70', (id) => Buffer.concat([hex('94 01'), Buffer.from([id]), hex('c0 d6 69 00 00 00 01 91 d6 70 00 00 00 01')]), 'PROTOCOL_ERROR', 'extension type 105'],
      ['a non-array message', () => hex('01'), 'PROTOCOL_ERROR', 'non-empty array'],
      ['an empty array', () => hex('90'), 'PROTOCOL_ERROR', 'non-empty array'],
      ['an unknown message type', () => hex('92 0a 00'), 'PROTOCOL_ERROR', 'unknown message type'],
      ['a string id', () => hex('94 01 a1 37 c0 01'), 'PROTOCOL_ERROR', 'response id must be an unsigned 32-bit integer'],
      ['a response with 3 elements', (id) => Buffer.concat([hex('93 01'), Buffer.from([id]), hex('c0')]), 'PROTOCOL_ERROR', 'has 3 elements'],
      ['an error that is not a {code, message} map', (id) => Buffer.concat([hex('94 01'), Buffer.from([id]), hex('a3 62 61 64 c0')]), 'PROTOCOL_ERROR', 'string code and message'],
      ['a result nested 40 deep', (id) => Buffer.concat([hex('94 01'), Buffer.from([id]), hex('c0'), Buffer.alloc(40, 0x91), hex('c0')]), 'PROTOCOL_ERROR', 'maxDepth 32'],
      ['an array that declares 2^32-1 items', (id) => Buffer.concat([hex('94 01'), Buffer.from([id]), hex('c0 dd ff ff ff ff')]), 'PROTOCOL_ERROR', 'declares more values'],
    ];
    for (const [what, payload, code, fragment] of malformed) {
      it(`sends goaway ${code} and fails every pending call for ${what}`, async () => {
        const tunnel = await openTunnel();
        const { calls, id } = await pendingPair(tunnel);
        await tunnel.peer.write(frame(payload(id)));
        await expectViolation(tunnel, calls, code, fragment ?? 'protocol violation');
      });
    }

    /** responseWithZeros is [1, id, nil, [0 × count]]: count + 5 MessagePack values. */
    function responseWithZeros(id: number, count: number): Buffer {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(count, 0);
      return frame(Buffer.concat([hex('94 01'), Buffer.from([id]), hex('c0 dc'), length, Buffer.alloc(count)]));
    }

    it('accepts a response of exactly maxItemsPerFrame values', async () => {
      const { peer, client } = await openTunnel({ maxItemsPerFrame: 50 });
      const result = client.call('Many.get');
      await peer.write(responseWithZeros((await peer.nextRequest()).id, 45));
      expect(await result).to.deep.equal(new Array(45).fill(0));
    });

    it('sends goaway RESOURCE_EXHAUSTED for a response of maxItemsPerFrame + 1 values', async () => {
      const tunnel = await openTunnel({ maxItemsPerFrame: 50 });
      const { calls, id } = await pendingPair(tunnel);
      await tunnel.peer.write(responseWithZeros(id, 46));
      await expectViolation(tunnel, calls, 'RESOURCE_EXHAUSTED', 'maxItemsPerFrame 50');
    });

    /** responseNested is [1, id, nil, result] where result is `levels` nested arrays around 1. */
    function responseNested(id: number, levels: number): Buffer {
      return frame(Buffer.concat([hex('94 01'), Buffer.from([id]), hex('c0'), Buffer.alloc(levels, 0x91), hex('01')]));
    }

    it('accepts a response nested exactly maxDepth deep, counting the message array', async () => {
      const { peer, client } = await openTunnel({ maxDepth: 4 });
      const result = client.call('Deep.get');
      await peer.write(responseNested((await peer.nextRequest()).id, 3));
      expect(await result).to.deep.equal([[[1]]]);
    });

    it('sends goaway PROTOCOL_ERROR for a response nested maxDepth + 1 deep', async () => {
      const tunnel = await openTunnel({ maxDepth: 4 });
      const { calls, id } = await pendingPair(tunnel);
      await tunnel.peer.write(responseNested(id, 4));
      await expectViolation(tunnel, calls, 'PROTOCOL_ERROR', 'nesting deeper than maxDepth 4');
    });

    const clientOnly: [string, Message][] = [
      ['a request', { type: 0, id: 1, method: 'Client.method', params: null }],
      ['a notification', { type: 2, method: 'Client.method', params: null }],
      ['a cancel', { type: 3, id: 1 }],
    ];
    for (const [what, message] of clientOnly) {
      it(`sends goaway PROTOCOL_ERROR when the server sends ${what}`, async () => {
        const tunnel = await openTunnel();
        const { calls } = await pendingPair(tunnel);
        await tunnel.peer.send(message);
        await expectViolation(tunnel, calls, 'PROTOCOL_ERROR', `message of type ${message.type}, which only clients send`);
      });
    }

    it('rejects all 100 pending calls UNAVAILABLE (mayHaveRun) when the server closes the socket', async () => {
      const { peer, client, server } = await openTunnel();
      const calls = Array.from({ length: 100 }, (_, n) => noted(client.call('Echo.echo', n)));
      for (let i = 0; i < calls.length; i++) await peer.nextRequest();
      expect(client.pendingCalls).to.equal(100);
      peer.socket.destroy();
      const outcomes = await Promise.allSettled(calls);
      for (const outcome of outcomes) {
        expect(outcome.status).to.equal('rejected');
        const error = (outcome as PromiseRejectedResult).reason as { code: string; message: string; data: unknown };
        expect(error.code).to.equal('UNAVAILABLE');
        expect(error.message).to.include(`lost the tunnel to ${server.url}`);
        expect(mayHaveRun(error)).to.equal(true);
      }
      expect(client.pendingCalls).to.equal(0);
      const reason = await client.closed;
      expect(reason?.code).to.equal('UNAVAILABLE');
    });

    it('rejects pending calls UNAVAILABLE when the server ends its side of the stream', async () => {
      const { peer, client } = await openTunnel();
      const call = client.call('Echo.echo', 1);
      await peer.nextRequest();
      peer.socket.end();
      expect(mayHaveRun(await expectRejects(call, 'UNAVAILABLE', 'lost the tunnel'))).to.equal(true);
      await peer.closed;
    });
  });

  describe('goaway from the server', () => {
    it('on UNAVAILABLE with lastId k: fails calls above k unsent, answers calls up to k, refuses new calls, then closes', async () => {
      const { peer, client, server } = await openTunnel();
      const calls = [1, 2, 3, 4].map((n) => noted(client.call('Echo.echo', n)));
      const requests: RequestMessage[] = [];
      for (let i = 0; i < calls.length; i++) requests.push(await peer.nextRequest());
      const lastId = requests[1]!.id;
      await peer.send({ type: 8, lastId, code: 'UNAVAILABLE', message: 'server restarting' });
      for (const call of calls.slice(2)) {
        const error = await expectRejects(call, 'UNAVAILABLE', 'was not run: the server is shutting down (goaway)');
        expect(mayHaveRun(error)).to.equal(false);
      }
      const refused = await expectRejects(client.call('Echo.echo', 5), 'UNAVAILABLE', 'not sent: the server is shutting down this tunnel (goaway)');
      expect(mayHaveRun(refused)).to.equal(false);
      await expectRejects(client.notify('Log.write', 1), 'UNAVAILABLE', 'goaway');
      await roundTripPing(peer);
      await peer.respond(requests[0]!.id, 'one');
      await peer.respond(requests[1]!.id, 'two');
      expect(await Promise.all(calls.slice(0, 2))).to.deep.equal(['one', 'two']);
      // Nothing more is sent (no request for the refused calls), and the client ends the stream.
      expect(await peer.messagesUntilEnd()).to.deep.equal([]);
      const reason = await client.closed;
      expect(reason?.code).to.equal('UNAVAILABLE');
      expect(reason?.message).to.include(`the server at ${server.url} shut this tunnel down`);
    });

    it('on UNAVAILABLE with no call at or below lastId: closes at once', async () => {
      const { peer, client } = await openTunnel();
      const call = client.call('Echo.echo', 1);
      const { id } = await peer.nextRequest();
      await peer.send({ type: 8, lastId: id - 1, code: 'UNAVAILABLE', message: 'bye' });
      expect(mayHaveRun(await expectRejects(call, 'UNAVAILABLE', 'was not run'))).to.equal(false);
      expect(await peer.messagesUntilEnd()).to.deep.equal([]);
      expect((await client.closed)?.code).to.equal('UNAVAILABLE');
    });

    for (const code of ['PROTOCOL_ERROR', 'RESOURCE_EXHAUSTED', 'SOMETHING_NEW']) {
      it(`on ${code}: fails every pending call UNAVAILABLE (mayHaveRun) and closes`, async () => {
        const { peer, client } = await openTunnel();
        const calls = [noted(client.call('A.one')), noted(client.call('A.two'))];
        const requests = [await peer.nextRequest(), await peer.nextRequest()];
        await peer.send({ type: 8, lastId: requests[1]!.id, code, message: 'you sent junk' });
        for (const call of calls) {
          const error = await expectRejects(call, 'UNAVAILABLE', `with goaway ${code}: you sent junk`);
          expect(mayHaveRun(error)).to.equal(true);
        }
        expect(await peer.messagesUntilEnd()).to.deep.equal([]);
        const reason = await client.closed;
        expect(reason?.code).to.equal('UNAVAILABLE');
        expect(reason?.data).to.deep.equal({ goaway: code });
      });
    }
  });

  describe('#close', () => {
    it('sends goaway UNAVAILABLE, keeps serving until pending calls are answered, then ends; closed resolves undefined', async () => {
      const { peer, client } = await openTunnel();
      const call = client.call('Slow.op');
      const { id } = await peer.nextRequest();
      const closing = client.close();
      expect(await peer.nextMessage()).to.deep.equal({ type: 8, lastId: 0, code: 'UNAVAILABLE', message: 'client closing' });
      await roundTripPing(peer, 'still there?');
      expect(peer.isEnded).to.equal(false);
      await peer.respond(id, 'finished');
      expect(await call).to.equal('finished');
      expect(await closing).to.equal(undefined);
      expect(await client.closed).to.equal(undefined);
      expect(await peer.messagesUntilEnd()).to.deep.equal([]);
      await peer.closed;
    });

    it('ends at once when nothing is pending', async () => {
      const { peer, client } = await openTunnel();
      await client.close();
      expect(await peer.messagesUntilEnd()).to.deep.equal([{ type: 8, lastId: 0, code: 'UNAVAILABLE', message: 'client closing' }]);
      expect(await client.closed).to.equal(undefined);
    });

    it('still bounds a pending call by its deadline, then ends', async () => {
      const { peer, client } = await openTunnel();
      const call = client.call('Silent.op', null, { timeout: 100 });
      const { id } = await peer.nextRequest();
      const closing = client.close();
      await expectRejects(call, 'DEADLINE_EXCEEDED');
      await closing;
      expect(await peer.messagesUntilEnd()).to.deep.equal([
        { type: 8, lastId: 0, code: 'UNAVAILABLE', message: 'client closing' },
        { type: 3, id },
      ]);
      expect(await client.closed).to.equal(undefined);
    });

    it('rejects calls and notifications after close() with UNAVAILABLE, unsent', async () => {
      const { peer, client } = await openTunnel();
      const pending = client.call('Slow.op');
      const { id } = await peer.nextRequest();
      const closing = client.close();
      const during = await expectRejects(client.call('Late.op'), 'UNAVAILABLE', 'Late.op not sent: close() was called');
      expect(mayHaveRun(during)).to.equal(false);
      await expectRejects(client.notify('Late.note'), 'UNAVAILABLE', 'close() was called');
      await peer.respond(id, 1);
      await pending;
      await closing;
      const after = await expectRejects(client.call('Later.op'), 'UNAVAILABLE', 'Later.op not sent: the tunnel to');
      expect(mayHaveRun(after)).to.equal(false);
      expect(await peer.messagesUntilEnd()).to.deep.equal([{ type: 8, lastId: 0, code: 'UNAVAILABLE', message: 'client closing' }]);
    });

    it('resolves at once when the tunnel is already lost, leaving closed with the error', async () => {
      const { peer, client } = await openTunnel();
      peer.socket.destroy();
      const reason = await client.closed;
      expect(reason?.code).to.equal('UNAVAILABLE');
      expect(await client.close()).to.equal(undefined);
      expect(await client.closed).to.equal(reason);
    });
  });

  describe('#closed', () => {
    it('resolves with UNAVAILABLE naming the target when the tunnel is lost', async () => {
      const { peer, client, server } = await openTunnel();
      peer.socket.end();
      const reason = await client.closed;
      expect(reason?.name).to.equal('RpcError');
      expect(reason?.code).to.equal('UNAVAILABLE');
      expect(reason?.message).to.include(`lost the tunnel to ${server.url}`);
    });

    it('reports the target it dialed', async () => {
      const { client, server } = await openTunnel();
      expect(client.target).to.equal(server.url);
    });
  });
});
