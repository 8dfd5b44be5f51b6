import { expect } from 'chai';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { RpcError, defineService } from '@tunnelrpc/protocol';
import { MessageType, type Message } from '@tunnelrpc/protocol/internal';
import { SECRET } from './fixture.js';
import { expectErrorResponse, expectGoaway, expectResponse, expectResult, hex, packValue, rawRequest, type RawTunnel, request } from '@tunnelrpc/test-kit';
import { cleanup, expectNoPollution, openTunnel, startServer, type TestServer } from './helpers.js';

/** until resolves once `condition` holds, looking again every few ms (the mocha timeout bounds it). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await delay(5);
}

describe('RpcServer dispatch', () => {
  let server: TestServer;
  let tunnel: RawTunnel;

  beforeEach(async () => {
    server = await startServer();
    tunnel = await openTunnel(server.port);
  });
  afterEach(cleanup);

  /** stillWorks asserts that the tunnel answers a fresh call correctly. */
  async function stillWorks(id = 999): Promise<void> {
    expect(expectResult(await tunnel.call(id, 'Svc.add', { a: 40, b: 2 }), id)).to.equal(42);
  }

  describe('answering calls', () => {
    it('answers a fast call before a slow call sent earlier (responses out of order)', async () => {
      await tunnel.write(Buffer.concat([request(1, 'Svc.slow', { ms: 200 }), request(2, 'Svc.add', { a: 1, b: 1 })]));
      expect(expectResult(await tunnel.next(), 2)).to.equal(2);
      expect(expectResult(await tunnel.next(), 1)).to.deep.equal({ slept: 200 });
    });

    it('answers UNIMPLEMENTED to an unknown method with the same id, and keeps the connection', async () => {
      const error = expectErrorResponse(await tunnel.call(5, 'Svc.nope', null), 5, 'UNIMPLEMENTED');
      expect(error.message).to.include('Svc.nope');
      expectErrorResponse(await tunnel.call(6, 'Other.add', null), 6, 'UNIMPLEMENTED');
      await stillWorks();
    });

    for (const method of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'Svc.__proto__', 'Svc.constructor', 'Svc.hasOwnProperty', '']) {
      it(`answers UNIMPLEMENTED to the method name ${JSON.stringify(method)}`, async () => {
        expectErrorResponse(await tunnel.call(3, method, { polluted: true }), 3, 'UNIMPLEMENTED');
        expect(server.probe.entries).to.have.length(0);
        expectNoPollution();
        await stillWorks();
      });
    }

    it('passes meta.headers to the handler as ctx.headers', async () => {
      const result = expectResult(
        await tunnel.call(4, 'Svc.context', null, { headers: { 'x-trace-id': 'abc123', authorization: 'Bearer t' } }),
        4,
      ) as { headers: unknown; method: string; notification: boolean; deadlineInFuture: boolean; peerAddress: string; auth: unknown };
      expect(result.headers).to.deep.equal({ 'x-trace-id': 'abc123', authorization: 'Bearer t' });
      expect(result.method).to.equal('Svc.context');
      expect(result.notification).to.equal(false);
      expect(result.deadlineInFuture).to.equal(true);
      expect(result.peerAddress).to.equal('127.0.0.1');
      expect(result).to.not.have.property('auth'); // a property holding undefined is left out (JSON semantics)
    });

    it('gives ctx.headers as an empty object when the request has no meta', async () => {
      const result = expectResult(await tunnel.call(4, 'Svc.context', null), 4) as { headers: unknown };
      expect(result.headers).to.deep.equal({});
    });
  });

  describe('validateParams: false', () => {
    it('hands params to the handler unchecked, for trusted peers', async () => {
      const trusting = await startServer({ validateParams: false, validateResults: false });
      const peer = await openTunnel(trusting.port);
      // A strict schema would refuse the extra key and the string; unchecked, the handler adds what it gets.
      expect(expectResult(await peer.call(1, 'Svc.add', { a: 'x', b: 'y', extra: true }), 1)).to.equal('xy');
      expect(trusting.probe.entered('add')).to.equal(1);
    });
  });

  describe('log levels', () => {
    it('logs a handler that throws its AbortError after a deadline at debug level, not as a crash', async () => {
      const Waits = defineService('Waits', { wait: { input: z.void(), output: z.void() } });
      server.rpc.register(Waits, {
        // What the README shows: hand ctx.signal to the work; it rejects with an AbortError when the call ends.
        wait: async (_, ctx) => {
          await delay(60_000, undefined, { signal: ctx.signal });
        },
      });
      expectErrorResponse(await tunnel.call(1, 'Waits.wait', null, { timeout: 50 }), 1, 'DEADLINE_EXCEEDED');
      await until(() => server.logs.some((entry) => entry.method === 'Waits.wait'));
      const entries = server.logs.filter((entry) => entry.method === 'Waits.wait');
      expect(entries.map((entry) => entry.level)).to.deep.equal(['debug']);
    });
  });

  describe('results', () => {
    it('answers INTERNAL without the values for a result that does not match the contract, and logs the issues, with validateResults on', async () => {
      const checking = await startServer({ validateParams: false, validateResults: true });
      const peer = await openTunnel(checking.port);
      // Unchecked params make add return a string where the contract says number.
      const error = expectErrorResponse(await peer.call(1, 'Svc.add', { a: 'secret-x', b: 'y' }), 1, 'INTERNAL');
      expect(error.message).to.equal('the result of Svc.add does not match its contract; the server logged the details');
      expect(JSON.stringify(error)).to.not.include('secret-x');
      const logged = checking.logs.find((entry) => entry.method === 'Svc.add');
      expect(logged).to.include({ level: 'error', code: 'INTERNAL' });
      expect(logged?.message).to.include('does not match the contract');
      expect(expectResult(await peer.call(2, 'Svc.add', { a: 1, b: 2 }), 2)).to.equal(3);
    });

    it('sends results unchecked by default: the client checks what it receives', async () => {
      const trusting = await startServer({ validateParams: false });
      const peer = await openTunnel(trusting.port);
      expect(expectResult(await peer.call(1, 'Svc.add', { a: 'x', b: 'y' }), 1)).to.equal('xy');
    });

    it('answers INTERNAL and logs when a result cannot be laid out for the wire (Maps nested past the stack)', async () => {
      const Tree: z.ZodType<Map<string, unknown>> = z.lazy(() => z.map(z.string(), Tree));
      const Deep = defineService('Deep', { tree: { input: z.void(), output: Tree } });
      const unchecked = await startServer({ validateResults: false });
      unchecked.rpc.register(Deep, {
        tree: () => {
          let node = new Map<string, unknown>();
          for (let i = 0; i < 200_000; i++) node = new Map([['k', node]]);
          return node as Map<string, unknown>;
        },
      });
      const peer = await openTunnel(unchecked.port);
      const error = expectErrorResponse(await peer.call(1, 'Deep.tree', null), 1, 'INTERNAL');
      expect(error.message).to.equal('the result of Deep.tree cannot be sent; the server logged the details');
      expect(error.data).to.deep.equal({ mayHaveRun: true });
      expect(unchecked.logs.find((entry) => entry.method === 'Deep.tree')).to.include({ level: 'error', code: 'INTERNAL' });
      expect(expectResult(await peer.call(2, 'Svc.add', { a: 1, b: 2 }), 2)).to.equal(3);
    });
  });

  describe('invalid params', () => {
    it('answers INVALID_ARGUMENT with the same id and the zod issues in data, and keeps the connection', async () => {
      const error = expectErrorResponse(await tunnel.call(11, 'Svc.add', { a: 1, b: 'two' }), 11, 'INVALID_ARGUMENT');
      const data = error.data as { issues: { path: unknown[]; code: string }[]; total: number };
      expect(data.issues).to.have.length(1);
      expect(data.issues[0]!.path).to.deep.equal(['b']);
      expect(server.probe.entered('add')).to.equal(0);
      await stillWorks();
    });

    it('answers INVALID_ARGUMENT to extra keys of a strict schema', async () => {
      expectErrorResponse(await tunnel.call(12, 'Svc.add', { a: 1, b: 2, c: 3 }), 12, 'INVALID_ARGUMENT');
      await stillWorks();
    });

    for (const [name, bytes] of [
      ['NaN', 'cb 7f f8 00 00 00 00 00 00'],
      ['Infinity', 'cb 7f f0 00 00 00 00 00 00'],
      ['2^64-1', 'cf ff ff ff ff ff ff ff ff'],
    ] as const) {
      it(`answers INVALID_ARGUMENT to add with b = ${name}`, async () => {
        // {a: 1, b: <value>}
        await tunnel.write(rawRequest(13, 'Svc.add', Buffer.concat([hex('82 a1 61 01 a1 62'), hex(bytes)])));
        expectErrorResponse(await tunnel.next(), 13, 'INVALID_ARGUMENT');
        await stillWorks();
      });
    }

    it('caps the issues at 10 for a 100000-element array of the wrong type', async () => {
      const wrong = new Array<string>(100_000).fill('s');
      const error = expectErrorResponse(await tunnel.call(14, 'Svc.sum', wrong), 14, 'INVALID_ARGUMENT');
      const data = error.data as { issues: unknown[]; total: number };
      expect(data.issues.length).to.be.at.most(10).and.at.least(1);
      expect(data.total).to.equal(100_000);
      expect(JSON.stringify(data).length).to.be.at.most(4096);
      expect(error.message.length).to.be.below(4096);
      await stillWorks();
    });

    it('does not let __proto__ or constructor keys in params pollute Object.prototype', async () => {
      // {"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}
      const params = Buffer.concat([
        hex('82'),
        packValue('__proto__'),
        packValue({ polluted: true }),
        packValue('constructor'),
        packValue({ prototype: { polluted: true } }),
      ]);
      await tunnel.write(rawRequest(15, 'Svc.context', params));
      const result = expectResult(await tunnel.next(), 15) as { keys: string[]; inheritedPolluted: unknown };
      expect(result.inheritedPolluted).to.equal(null);
      expect(result.keys).to.include('constructor');
      expectNoPollution();

      // The same keys against a strict schema: refused or ignored, never merged into a prototype.
      const strict = Buffer.concat([hex('83 a1 61 01 a1 62 02'), packValue('__proto__'), packValue({ polluted: true })]);
      await tunnel.write(rawRequest(16, 'Svc.add', strict));
      const answer = expectResponse(await tunnel.next(), 16);
      if (answer.error === undefined) expect(answer.result).to.equal(3);
      else expect(answer.error.code).to.equal('INVALID_ARGUMENT');
      expectNoPollution();
      await stillWorks();
    });
  });

  describe('handler errors', () => {
    it('sends the code, message and data of an RpcError the handler throws', async () => {
      const error = expectErrorResponse(
        await tunnel.call(21, 'Svc.fail', { code: 'NOT_FOUND', message: 'no user 42; create it first', data: { user: 42 } }),
        21,
        'NOT_FOUND',
      );
      expect(error.message).to.equal('no user 42; create it first');
      expect(error.data, 'the data as thrown, marked: the handler ran').to.deep.equal({ user: 42, mayHaveRun: true });
      await stillWorks();
    });

    it('marks a rethrown error from another hop as may have run (mayHaveRun describes this hop only)', async () => {
      const error = expectErrorResponse(
        await tunnel.call(24, 'Svc.fail', { code: 'UNAVAILABLE', message: 'downstream did not run it', data: { mayHaveRun: false } }),
        24,
        'UNAVAILABLE',
      );
      expect(error.data).to.deep.equal({ mayHaveRun: true });
      await stillWorks();
    });

    it('sends INTERNAL without the thrown text for a plain Error, and logs the detail', async () => {
      const error = expectErrorResponse(await tunnel.call(22, 'Svc.crash', null), 22, 'INTERNAL');
      expect(error.message).to.not.include(SECRET);
      expect(error.message).to.not.include('hunter2');
      expect(error.message).to.include('Svc.crash');
      expect(error.data, 'a handler ran, so its error says it may have run').to.deep.equal({ mayHaveRun: true });
      const logged = server.logs.find((entry) => entry.error instanceof Error);
      expect(logged, 'the logger receives the thrown Error').to.not.equal(undefined);
      expect(logged).to.include({ level: 'error', method: 'Svc.crash', code: 'INTERNAL' });
      expect((logged!.error as Error).message).to.equal(SECRET);
      await stillWorks();
    });

    for (const [kind, what] of [
      ['string', 'throws a string'],
      ['null', 'throws null'],
      ['undefined', 'throws undefined'],
      ['reject', 'returns a promise rejected with an Error'],
      ['rejectNull', 'returns a promise rejected with null'],
    ] as const) {
      it(`sends INTERNAL when the handler ${what}`, async () => {
        const error = expectErrorResponse(await tunnel.call(23, 'Svc.throwValue', kind), 23, 'INTERNAL');
        expect(error.message).to.not.include('x marks the spot');
        expect(error.message).to.not.include(SECRET);
        expect(server.logs.length).to.be.at.least(1);
        await stillWorks();
      });
    }

    it('includes the thrown text in the INTERNAL message when exposeInternalErrors is on', async () => {
      const exposing = await startServer({ exposeInternalErrors: true });
      const other = await openTunnel(exposing.port);
      expect(expectErrorResponse(await other.call(1, 'Svc.crash', null), 1, 'INTERNAL').message).to.include(SECRET);
      expect(expectErrorResponse(await other.call(2, 'Svc.throwValue', 'string'), 2, 'INTERNAL').message).to.include('x marks the spot');
    });
  });

  describe('deadlines and cancel', () => {
    it('answers DEADLINE_EXCEEDED at meta.timeout and aborts the handler signal', async () => {
      await tunnel.write(request(31, 'Svc.hang', null, { timeout: 100 }));
      const { ctx } = await server.probe.waitFor('hang');
      expect(ctx.signal.aborted).to.equal(false);
      const error = expectErrorResponse(await tunnel.next(), 31, 'DEADLINE_EXCEEDED');
      expect(error.message).to.include('100 ms');
      expect(ctx.signal.aborted).to.equal(true);
      expect(ctx.signal.reason).to.be.instanceOf(RpcError);
      expect((ctx.signal.reason as RpcError).code).to.equal('DEADLINE_EXCEEDED');
      await stillWorks();
    });

    it('answers DEADLINE_EXCEEDED to meta.timeout 0 without running the handler', async () => {
      expectErrorResponse(await tunnel.call(32, 'Svc.hang', null, { timeout: 0 }), 32, 'DEADLINE_EXCEEDED');
      expect(server.probe.entered('hang')).to.equal(0);
      await stillWorks();
    });

    it('answers CANCELLED at once to a cancel and aborts the handler signal', async () => {
      await tunnel.write(request(33, 'Svc.hang', null));
      const { ctx } = await server.probe.waitFor('hang');
      await tunnel.send({ type: MessageType.Cancel, id: 33 });
      expectErrorResponse(await tunnel.next(), 33, 'CANCELLED');
      expect(ctx.signal.aborted).to.equal(true);
      expect((ctx.signal.reason as RpcError).code).to.equal('CANCELLED');
      // The id is free again.
      expect(expectResult(await tunnel.call(33, 'Svc.add', { a: 1, b: 2 }), 33)).to.equal(3);
    });

    it('ignores a cancel for an unknown id', async () => {
      await tunnel.send({ type: MessageType.Cancel, id: 12345 });
      await stillWorks();
    });

    it('ignores a cancel for a call that has already been answered', async () => {
      expect(expectResult(await tunnel.call(34, 'Svc.add', { a: 1, b: 2 }), 34)).to.equal(3);
      await tunnel.send({ type: MessageType.Cancel, id: 34 });
      await stillWorks();
    });
  });

  describe('ping, pong and notifications', () => {
    it('answers a ping with a pong carrying the same data', async () => {
      const data = { seq: 7, at: 'now', nested: [1, [2, [3]]], bin: Buffer.from([1, 2, 3]) };
      await tunnel.send({ type: MessageType.Ping, data });
      const pong = await tunnel.next();
      expect(pong.type).to.equal(MessageType.Pong);
      expect((pong as { data: typeof data }).data.seq).to.equal(7);
      expect((pong as { data: typeof data }).data.nested).to.deep.equal([1, [2, [3]]]);
      expect(Buffer.from((pong as { data: typeof data }).data.bin)).to.deep.equal(Buffer.from([1, 2, 3]));
    });

    it('ignores an unrequested pong', async () => {
      await tunnel.send({ type: MessageType.Pong, data: 'nobody asked' });
      await stillWorks();
    });

    it('runs the handler of a notification and never answers it', async () => {
      const notified = new Promise((resolve) => server.probe.once('notified', resolve));
      await tunnel.send({ type: MessageType.Notification, method: 'Svc.notify', params: { n: 1 } });
      expect(await notified).to.deep.equal({ n: 1 });
      // The next message is the answer to the next call: nothing was sent for the notification.
      expect(expectResult(await tunnel.call(41, 'Svc.count', null), 41)).to.equal(1);
      const entry = server.probe.entries.find((each) => each.method === 'notify')!;
      expect(entry.ctx.notification).to.equal(true);
    });

    it('drops a notification for an unknown method without an answer and keeps the connection', async () => {
      await tunnel.send({ type: MessageType.Notification, method: 'Svc.nope', params: null });
      await tunnel.send({ type: MessageType.Notification, method: '__proto__', params: null });
      await tunnel.send({ type: MessageType.Ping, data: 'after' });
      const next: Message = await tunnel.next();
      expect(next).to.deep.equal({ type: MessageType.Pong, data: 'after' });
      expect(server.logs.some((entry) => entry.message.includes('Svc.nope'))).to.equal(true);
      await stillWorks();
    });

    it('drops a notification with invalid params without an answer', async () => {
      await tunnel.send({ type: MessageType.Notification, method: 'Svc.count', params: { unexpected: 1 } });
      await tunnel.send({ type: MessageType.Ping, data: 'after' });
      expect(await tunnel.next()).to.deep.equal({ type: MessageType.Pong, data: 'after' });
      expect(server.probe.entered('count')).to.equal(0);
    });

    it('aborts the signal of a notification handler at its meta.timeout and sends nothing', async () => {
      await tunnel.send({ type: MessageType.Notification, method: 'Svc.hold', params: null, meta: { timeout: 100 } });
      const { ctx } = await server.probe.waitFor('hold');
      expect(ctx.notification).to.equal(true);
      if (!ctx.signal.aborted) await once(ctx.signal, 'abort');
      expect((ctx.signal.reason as RpcError).code).to.equal('DEADLINE_EXCEEDED');
      await tunnel.send({ type: MessageType.Ping, data: 'after' });
      expect(await tunnel.next()).to.deep.equal({ type: MessageType.Pong, data: 'after' });
    });

    it('aborts the signal of a running notification handler when its connection closes', async () => {
      await tunnel.send({ type: MessageType.Notification, method: 'Svc.hold', params: null });
      const { ctx } = await server.probe.waitFor('hold');
      await tunnel.write(hex('00 00 00 00'));
      expectGoaway(await tunnel.next(), 'PROTOCOL_ERROR');
      await tunnel.closed;
      expect(ctx.signal.aborted).to.equal(true);
    });

    it('drops a notification with meta.timeout 0 without running it', async () => {
      await tunnel.send({ type: MessageType.Notification, method: 'Svc.notify', params: 1, meta: { timeout: 0 } });
      await tunnel.send({ type: MessageType.Ping, data: 'after' });
      expect(await tunnel.next()).to.deep.equal({ type: MessageType.Pong, data: 'after' });
      expect(server.probe.entered('notify')).to.equal(0);
    });

    it('does not answer a notification whose handler throws', async () => {
      await tunnel.send({ type: MessageType.Notification, method: 'Svc.crash', params: null });
      await tunnel.send({ type: MessageType.Ping, data: 'after' });
      expect(await tunnel.next()).to.deep.equal({ type: MessageType.Pong, data: 'after' });
      expect(server.probe.entered('crash')).to.equal(1);
      await stillWorks();
    });
  });
});
