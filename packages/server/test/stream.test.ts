/**
 * Streams on the server (PROTOCOL.md 12), driven by raw sockets that play the client byte for byte: credit, the
 * per-connection budget, every way a stream ends (with the handler's finally), and every stream violation.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { RpcError, defineService } from '@tunnelrpc/protocol';
import { MessageType, encodeMessage, type CreditMessage, type Message, type StreamMessageMessage } from '@tunnelrpc/protocol/internal';
import { RpcServer, type ServerOptions } from '@tunnelrpc/server';
import { expectErrorResponse, expectGoaway, expectResult, frame, hex, type RawTunnel, request } from '@tunnelrpc/test-kit';
import { cleanup, openTunnel, track } from './helpers.js';

const Streams = defineService('Streams', {
  count: { kind: 'serverStream', input: z.strictObject({ n: z.number().int() }), serverMessage: z.number(), output: z.string() },
  sum: { kind: 'clientStream', input: z.void(), clientMessage: z.number(), output: z.number() },
  chat: { kind: 'bidiStream', input: z.void(), clientMessage: z.string(), serverMessage: z.string(), output: z.number() },
  hang: { kind: 'serverStream', input: z.void(), serverMessage: z.number(), output: z.void() },
  hoard: { kind: 'clientStream', input: z.void(), clientMessage: z.unknown(), output: z.void() },
  big: { kind: 'serverStream', input: z.strictObject({ bytes: z.number().int() }), serverMessage: z.instanceof(Uint8Array), output: z.void() },
  add: { input: z.strictObject({ a: z.number(), b: z.number() }), output: z.number() },
  sleep: { input: z.strictObject({ ms: z.number().int() }), output: z.void() },
  nothing: { input: z.void(), output: z.string() },
});

interface Observed {
  /** How many values each count stream's generator was asked for. */
  pulls: number;
  /** finally blocks run, with the signal's reason at the time. */
  finals: { method: string; reason: unknown }[];
  /** Resolves once `count` finally blocks have run. */
  finalsRun(count?: number): Promise<void>;
}

function observe(): { observed: Observed; ranFinally: (method: string, signal: AbortSignal) => void } {
  const waiters: { count: number; resolve: () => void }[] = [];
  const observed: Observed = {
    pulls: 0,
    finals: [],
    finalsRun: (count = 1) => (observed.finals.length >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve }))),
  };
  return {
    observed,
    ranFinally: (method, signal) => {
      observed.finals.push({ method, reason: signal.aborted ? signal.reason : undefined });
      for (const waiter of waiters.filter((each) => observed.finals.length >= each.count)) waiter.resolve();
    },
  };
}

async function start(options: ServerOptions = {}): Promise<{ port: number; observed: Observed; rpc: RpcServer }> {
  const { observed, ranFinally } = observe();
  const rpc = new RpcServer({ logger: () => {}, shutdownTimeout: 200, ...options });
  rpc.register(Streams, {
    count: async function* ({ n }, ctx) {
      try {
        for (let i = 0; i < n; i++) {
          observed.pulls++;
          yield i;
        }
        return 'done';
      } finally {
        ranFinally('count', ctx.signal);
      }
    },
    sum: async (_params, numbers, ctx) => {
      let total = 0;
      try {
        for await (const value of numbers) total += value;
        return total;
      } finally {
        ranFinally('sum', ctx.signal);
      }
    },
    chat: async function* (_params, messages, ctx) {
      let n = 0;
      try {
        for await (const text of messages) {
          yield text.toUpperCase();
          n++;
        }
        return n;
      } finally {
        ranFinally('chat', ctx.signal);
      }
    },
    hang: async function* (_params, ctx) {
      try {
        yield 1;
        await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      } finally {
        ranFinally('hang', ctx.signal);
      }
    },
    // Never reads its input: what the client sends stays queued, bounded by credit.
    hoard: async (_params, _messages, ctx) => {
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
    },
    big: async function* ({ bytes }) {
      yield new Uint8Array(bytes);
    },
    add: ({ a, b }) => a + b,
    sleep: async ({ ms }, ctx) => {
      await delay(ms, undefined, { signal: ctx.signal }).catch(() => {});
    },
    nothing: () => 'ok',
  });
  track(rpc);
  const { port } = await rpc.listen(0);
  return { port, observed, rpc };
}

const open = (id: number, method: string, params: unknown, credit?: number, extra: Record<string, unknown> = {}): Buffer =>
  request(id, `Streams.${method}`, params, { ...(credit === undefined ? {} : { credit, maxMessageSize: 65536 }), ...extra } as never);
const send = (...messages: Message[]): Buffer => Buffer.concat(messages.map((message) => encodeMessage(message)));
const msg = (id: number, message: unknown): Message => ({ type: MessageType.StreamMessage, id, message });
const grant = (id: number, n: number): Message => ({ type: MessageType.Credit, id, n });

async function expectMessage(tunnel: RawTunnel, id: number): Promise<unknown> {
  const message = await tunnel.next();
  expect(message.type, JSON.stringify(message)).to.equal(MessageType.StreamMessage);
  expect((message as StreamMessageMessage).id).to.equal(id);
  return (message as StreamMessageMessage).message;
}

async function expectGrant(tunnel: RawTunnel, id: number): Promise<CreditMessage> {
  const message = await tunnel.next();
  expect(message.type, JSON.stringify(message)).to.equal(MessageType.Credit);
  expect((message as CreditMessage).id).to.equal(id);
  return message as CreditMessage;
}

describe('ServerStream', () => {
  afterEach(cleanup);

  describe('serverStream', () => {
    it('sends as many messages as the opening credit allows, then waits for a grant', async () => {
      const { port, observed } = await start();
      const tunnel = await openTunnel(port);
      await tunnel.write(open(1, 'count', { n: 5 }, 2));
      expect(await expectMessage(tunnel, 1)).to.equal(0);
      expect(await expectMessage(tunnel, 1)).to.equal(1);
      // A round trip on the same tunnel: had the server sent a third message, it would come before this answer.
      expect(expectResult(await tunnel.call(2, 'Streams.add', { a: 1, b: 2 }), 2)).to.equal(3);
      expect(observed.pulls, 'the generator runs one message ahead of the credit, no further').to.equal(3);
      await tunnel.write(send(grant(1, 10)));
      for (const value of [2, 3, 4]) expect(await expectMessage(tunnel, 1)).to.equal(value);
      expect(expectResult(await tunnel.next(), 1)).to.equal('done');
      await observed.finalsRun();
      expect(observed.finals).to.deep.equal([{ method: 'count', reason: undefined }]);
    });

    it('waits for the first grant when the opening carries credit 0, and learns the end without another', async () => {
      const { port, observed } = await start();
      const tunnel = await openTunnel(port);
      await tunnel.write(open(1, 'count', { n: 1 }, 0));
      expect(expectResult(await tunnel.call(2, 'Streams.add', { a: 1, b: 1 }), 2)).to.equal(2);
      expect(observed.pulls, 'one message is pulled ahead and held for credit').to.equal(1);
      await tunnel.write(send(grant(1, 1)));
      expect(await expectMessage(tunnel, 1)).to.equal(0);
      // The final response spends no credit: it follows the last message without a grant beyond it.
      expect(expectResult(await tunnel.next(), 1)).to.equal('done');
    });

    it('ends a stream of 5 opened with credit 2 after a grant of exactly 3 more', async () => {
      const { port } = await start();
      const tunnel = await openTunnel(port);
      await tunnel.write(open(1, 'count', { n: 5 }, 2));
      for (const value of [0, 1]) expect(await expectMessage(tunnel, 1)).to.equal(value);
      await tunnel.write(send(grant(1, 3)));
      for (const value of [2, 3, 4]) expect(await expectMessage(tunnel, 1)).to.equal(value);
      expect(expectResult(await tunnel.next(), 1)).to.equal('done');
    });

    it('answers INVALID_ARGUMENT when the opening lacks meta.maxMessageSize', async () => {
      const { port, observed } = await start();
      const tunnel = await openTunnel(port);
      const error = expectErrorResponse(await tunnel.call(1, 'Streams.count', { n: 1 }), 1, 'INVALID_ARGUMENT');
      expect(error.message).to.include('meta.maxMessageSize');
      expect(observed.pulls).to.equal(0);
    });

    it("ends the stream RESOURCE_EXHAUSTED when a message exceeds the client's maxMessageSize", async () => {
      const { port } = await start();
      const tunnel = await openTunnel(port);
      await tunnel.write(open(1, 'big', { bytes: 70_000 }, 4));
      const error = expectErrorResponse(await tunnel.next(), 1, 'RESOURCE_EXHAUSTED');
      expect(error.message).to.include('maxMessageSize 65536');
    });
  });

  describe('clientStream', () => {
    it('grants credit with maxMessageSize first, then answers the total after the half-close', async () => {
      const { port, observed } = await start({ maxStreamMessageSize: 1000, maxStreamCredit: 4 });
      const tunnel = await openTunnel(port);
      await tunnel.write(request(1, 'Streams.sum', null));
      const first = await expectGrant(tunnel, 1);
      expect(first).to.deep.equal({ type: MessageType.Credit, id: 1, n: 4, maxMessageSize: 1000 });
      // The 4 granted, taken by the handler as they come: it grants more once half the window is used.
      await tunnel.write(send(msg(1, 1), msg(1, 2), msg(1, 3), msg(1, 4)));
      const more = await expectGrant(tunnel, 1);
      expect(more.maxMessageSize, 'only the first grant carries the size').to.equal(undefined);
      await tunnel.write(send(msg(1, 10), { type: MessageType.HalfClose, id: 1 }));
      let next = await tunnel.next();
      while (next.type === MessageType.Credit) next = await tunnel.next();
      expect(expectResult(next, 1)).to.equal(20);
      await observed.finalsRun();
      expect(observed.finals).to.deep.equal([{ method: 'sum', reason: undefined }]);
    });

    it('ends the stream INVALID_ARGUMENT for a message its schema refuses, and runs finally', async () => {
      const { port, observed } = await start();
      const tunnel = await openTunnel(port);
      await tunnel.write(request(1, 'Streams.sum', null));
      await expectGrant(tunnel, 1);
      await tunnel.write(send(msg(1, 'three')));
      let next = await tunnel.next();
      while (next.type === MessageType.Credit) next = await tunnel.next();
      expect(expectErrorResponse(next, 1, 'INVALID_ARGUMENT').message).to.include('invalid stream message for Streams.sum');
      await observed.finalsRun();
      expect((observed.finals[0]!.reason as RpcError).code).to.equal('INVALID_ARGUMENT');
    });
  });

  describe('bidiStream', () => {
    it('echoes each message as it arrives and answers the count after the half-close', async () => {
      const { port } = await start();
      const tunnel = await openTunnel(port);
      await tunnel.write(open(1, 'chat', null, 8));
      const first = await expectGrant(tunnel, 1);
      expect(first.maxMessageSize).to.be.a('number');
      await tunnel.write(send(msg(1, 'hi')));
      expect(await expectMessage(tunnel, 1)).to.equal('HI');
      await tunnel.write(send(msg(1, 'there'), { type: MessageType.HalfClose, id: 1 }));
      const rest: Message[] = [];
      for (;;) {
        const next = await tunnel.next();
        if (next.type === MessageType.Credit) continue;
        rest.push(next);
        if (next.type === MessageType.Response) break;
      }
      expect((rest[0] as StreamMessageMessage).message).to.equal('THERE');
      expect(expectResult(rest[1]!, 1)).to.equal(2);
    });
  });

  describe('ending', () => {
    for (const method of ['count', 'sum', 'chat', 'hang'] as const) {
      it(`a cancel ends ${method} with CANCELLED and runs its finally`, async () => {
        const { port, observed } = await start();
        const tunnel = await openTunnel(port);
        await tunnel.write(open(1, method, method === 'count' ? { n: 100 } : null, method === 'sum' ? undefined : 1));
        await tunnel.next();
        await tunnel.write(send({ type: MessageType.Cancel, id: 1 }));
        let next = await tunnel.next();
        while (next.type !== MessageType.Response) next = await tunnel.next();
        expectErrorResponse(next, 1, 'CANCELLED');
        await observed.finalsRun();
        expect(observed.finals[0]!.method).to.equal(method);
        expect((observed.finals[0]!.reason as RpcError).code).to.equal('CANCELLED');
      });
    }

    it('a deadline ends a stream with DEADLINE_EXCEEDED and runs its finally', async () => {
      const { port, observed } = await start();
      const tunnel = await openTunnel(port);
      await tunnel.write(open(1, 'hang', null, 5, { timeout: 50 }));
      expect(await expectMessage(tunnel, 1)).to.equal(1);
      expectErrorResponse(await tunnel.next(), 1, 'DEADLINE_EXCEEDED');
      await observed.finalsRun();
      expect((observed.finals[0]!.reason as RpcError).code).to.equal('DEADLINE_EXCEEDED');
    });

    it('a killed connection aborts every stream and runs every finally', async () => {
      const { port, observed } = await start();
      const tunnel = await openTunnel(port);
      await tunnel.write(Buffer.concat([open(1, 'hang', null, 5), open(2, 'chat', null, 5), request(3, 'Streams.sum', null)]));
      for (let i = 0; i < 3; i++) await tunnel.next();
      tunnel.socket.resetAndDestroy();
      await observed.finalsRun(3);
      expect(observed.finals.map((entry) => entry.method).sort()).to.deep.equal(['chat', 'hang', 'sum']);
      for (const entry of observed.finals) expect((entry.reason as RpcError).code).to.equal('CANCELLED');
    });

    it('a goaway cut-off (close() past shutdownTimeout) aborts open streams and runs finally', async () => {
      const { port, observed, rpc } = await start({ shutdownTimeout: 50 });
      const tunnel = await openTunnel(port);
      await tunnel.write(open(1, 'hang', null, 5));
      await expectMessage(tunnel, 1);
      const closing = rpc.close();
      expectGoaway(await tunnel.next(), 'UNAVAILABLE');
      await observed.finalsRun();
      expect(observed.finals[0]!.method).to.equal('hang');
      expect(observed.finals[0]!.reason).to.be.instanceOf(RpcError);
      await closing;
    });

    it('a graceful goaway lets an open stream run to its end while grants still flow', async () => {
      const { port, rpc } = await start({ shutdownTimeout: 5000 });
      const tunnel = await openTunnel(port);
      await tunnel.write(open(1, 'count', { n: 3 }, 1));
      expect(await expectMessage(tunnel, 1)).to.equal(0);
      const closing = rpc.close();
      const goaway = expectGoaway(await tunnel.next(), 'UNAVAILABLE');
      expect(goaway.lastId).to.equal(1);
      await tunnel.write(send(grant(1, 10)));
      expect(await expectMessage(tunnel, 1)).to.equal(1);
      expect(await expectMessage(tunnel, 1)).to.equal(2);
      expect(expectResult(await tunnel.next(), 1)).to.equal('done');
      await tunnel.closed;
      await closing;
    });

    it('a TCP FIN is not a half-close: open streams end CANCELLED, unary calls are still answered', async () => {
      const { port, observed } = await start();
      const tunnel = await openTunnel(port);
      await tunnel.write(Buffer.concat([request(1, 'Streams.sum', null), request(2, 'Streams.sleep', { ms: 30 })]));
      await expectGrant(tunnel, 1);
      await tunnel.write(send(msg(1, 5)));
      tunnel.socket.end();
      const answers = [await tunnel.next(), await tunnel.next()];
      const sum = answers.find((answer) => answer.type === MessageType.Response && answer.id === 1)!;
      expect(expectErrorResponse(sum, 1, 'CANCELLED').message).to.include('not a stream half-close');
      expectResult(answers.find((answer) => answer.type === MessageType.Response && answer.id === 2)!, 2);
      await tunnel.closed;
      expect(observed.finals.map((entry) => entry.method)).to.deep.equal(['sum']);
    });
  });

  describe('budget', () => {
    it('holds unconsumed stream data under maxStreamBuffer with 1,000 stalled streams, while pings and calls flow', async () => {
      const size = 1024;
      const budget = 64 * size;
      const { port } = await start({ maxStreamMessageSize: size, maxStreamBuffer: budget, maxStreamCredit: 8, maxStreams: 1000 });
      const tunnel = await openTunnel(port);
      const opens: Buffer[] = [];
      for (let id = 1; id <= 1000; id++) opens.push(request(id, 'Streams.hoard', null));
      await tunnel.write(Buffer.concat(opens));
      // Everything granted is spent at once and never consumed: the grants must stop at the budget.
      const granted = new Map<number, number>();
      let total = 0;
      await tunnel.write(request(5000, 'Streams.add', { a: 2, b: 2 }));
      for (;;) {
        const next = await tunnel.next();
        if (next.type === MessageType.Response) {
          expect(expectResult(next, 5000)).to.equal(4);
          break;
        }
        const credit = next as CreditMessage;
        expect(credit.type).to.equal(MessageType.Credit);
        granted.set(credit.id, (granted.get(credit.id) ?? 0) + credit.n);
        total += credit.n;
        const spend: Message[] = [];
        for (let i = 0; i < credit.n; i++) spend.push(msg(credit.id, 'x'.repeat(size - 16)));
        await tunnel.write(send(...spend));
      }
      expect(total * size).to.be.at.most(budget);
      expect(total * size).to.equal(budget);
      expect(granted.size).to.equal(8);
      // The tunnel still carries pings and calls.
      await tunnel.write(send({ type: MessageType.Ping, data: 7 }));
      expect(await tunnel.next()).to.deep.equal({ type: MessageType.Pong, data: 7 });
      expect(expectResult(await tunnel.call(5001, 'Streams.add', { a: 1, b: 2 }), 5001)).to.equal(3);
      // Cancelling one stalled stream frees its share for the first waiting stream.
      await tunnel.write(send({ type: MessageType.Cancel, id: [...granted.keys()][0]! }));
      const after = [await tunnel.next(), await tunnel.next()];
      expect(after.some((each) => each.type === MessageType.Response)).to.equal(true);
      const next = after.find((each) => each.type === MessageType.Credit) as CreditMessage;
      expect(next.id).to.equal(9);
      expect(next.maxMessageSize).to.equal(size);
    });

    it('refuses a stream past maxStreams with RESOURCE_EXHAUSTED', async () => {
      const { port } = await start({ maxStreams: 1 });
      const tunnel = await openTunnel(port);
      await tunnel.write(Buffer.concat([open(1, 'hang', null, 1), open(2, 'hang', null, 1)]));
      const answers = [await tunnel.next(), await tunnel.next()];
      const refused = answers.find((answer) => answer.type === MessageType.Response)!;
      expect(expectErrorResponse(refused, 2, 'RESOURCE_EXHAUSTED').message).to.include('maxStreams 1');
    });

    it('serves 1,000 concurrent streams on one connection beside unary calls', async () => {
      const { port } = await start();
      const tunnel = await openTunnel(port);
      const frames: Buffer[] = [];
      for (let id = 1; id <= 1000; id++) frames.push(open(id, 'count', { n: 3 }, 4), request(10_000 + id, 'Streams.add', { a: id, b: 1 }));
      await tunnel.write(Buffer.concat(frames));
      const got = new Map<number, unknown[]>();
      let results = 0;
      let sums = 0;
      while (results + sums < 2000) {
        const next = await tunnel.next();
        if (next.type === MessageType.StreamMessage) {
          const list = got.get(next.id) ?? [];
          list.push(next.message);
          got.set(next.id, list);
        } else if (next.type === MessageType.Response && next.id > 10_000) {
          expect(expectResult(next, next.id)).to.equal(next.id - 10_000 + 1);
          sums++;
        } else {
          const response = next as Message & { id: number };
          expect(expectResult(response, response.id)).to.equal('done');
          expect(got.get(response.id)).to.deep.equal([0, 1, 2]);
          results++;
        }
      }
    });
  });

  describe('violations', () => {
    const cases: { name: string; setup?: (tunnel: RawTunnel) => Promise<void>; bytes: Buffer; says: string; options?: ServerOptions }[] = [
      {
        name: 'a message beyond credit',
        setup: async (tunnel) => {
          await tunnel.write(request(1, 'Streams.hoard', null));
          expect((await expectGrant(tunnel, 1)).n).to.equal(2);
        },
        bytes: send(msg(1, 1), msg(1, 2), msg(1, 3)),
        says: 'beyond the credit',
        options: { maxStreamCredit: 2 },
      },
      { name: 'a grant of 0', setup: async (tunnel) => tunnel.write(open(1, 'hang', null, 1)), bytes: frame(hex('93 09 01 00')), says: 'credit n' },
      {
        name: 'credit past 2^31-1',
        setup: async (tunnel) => {
          await tunnel.write(open(1, 'hang', null, 0));
        },
        bytes: send(grant(1, 0x7fff_ffff), grant(1, 1)),
        says: 'exceed 2147483647',
      },
      {
        name: 'a stream message for a unary call',
        setup: async (tunnel) => tunnel.write(request(1, 'Streams.sleep', { ms: 5000 })),
        bytes: send(msg(1, 1)),
        says: 'unary call 1',
      },
      { name: 'a stream message for an id no request opened', bytes: send(msg(7, 1)), says: 'no request opened' },
      {
        name: 'a message above the announced maxMessageSize',
        setup: async (tunnel) => {
          await tunnel.write(request(1, 'Streams.hoard', null));
          expect((await expectGrant(tunnel, 1)).maxMessageSize).to.equal(100);
        },
        bytes: send(msg(1, 'y'.repeat(100))),
        says: 'exceeds the announced maxMessageSize 100',
        options: { maxStreamMessageSize: 100 },
      },
      {
        name: 'a stream message for a serverStream',
        setup: async (tunnel) => tunnel.write(open(1, 'hang', null, 0)),
        bytes: send(msg(1, 1)),
        says: 'whose client sends none',
      },
      {
        name: 'a half-close for a serverStream',
        setup: async (tunnel) => tunnel.write(open(1, 'hang', null, 0)),
        bytes: send({ type: MessageType.HalfClose, id: 1 }),
        says: 'whose client sends no messages',
      },
      {
        name: 'a second half-close',
        setup: async (tunnel) => {
          await tunnel.write(open(1, 'chat', null, 0));
          await expectGrant(tunnel, 1);
        },
        bytes: send({ type: MessageType.HalfClose, id: 1 }, { type: MessageType.HalfClose, id: 1 }),
        says: 'second half-close',
      },
      {
        name: 'a client grant that carries maxMessageSize',
        setup: async (tunnel) => tunnel.write(open(1, 'hang', null, 0)),
        bytes: send({ type: MessageType.Credit, id: 1, n: 1, maxMessageSize: 10 }),
        says: 'opening meta',
      },
      {
        name: 'credit for a clientStream',
        setup: async (tunnel) => {
          await tunnel.write(request(1, 'Streams.sum', null));
          await expectGrant(tunnel, 1);
        },
        bytes: send(grant(1, 1)),
        says: 'whose server sends no messages',
      },
    ];
    for (const { name, setup, bytes, says, options } of cases) {
      it(`is goaway PROTOCOL_ERROR: ${name}`, async () => {
        const { port } = await start(options);
        const bystander = await openTunnel(port);
        const tunnel = await openTunnel(port);
        await setup?.(tunnel);
        await tunnel.write(bytes);
        let next = await tunnel.next();
        while (next.type !== MessageType.Goaway) next = await tunnel.next();
        expect(expectGoaway(next, 'PROTOCOL_ERROR').message).to.include(says);
        await tunnel.closed;
        expect(expectResult(await bystander.call(1, 'Streams.add', { a: 1, b: 1 }), 1)).to.equal(2);
      });
    }

    it('drops a stream frame that crossed the final response', async () => {
      const { port } = await start();
      const tunnel = await openTunnel(port);
      await tunnel.write(open(1, 'count', { n: 1 }, 5));
      await expectMessage(tunnel, 1);
      expectResult(await tunnel.next(), 1);
      await tunnel.write(send(grant(1, 3)));
      expect(expectResult(await tunnel.call(2, 'Streams.add', { a: 1, b: 1 }), 2)).to.equal(2);
    });
  });

  describe('no-params methods', () => {
    it('accept an empty map wherever nil is accepted', async () => {
      const { port } = await start();
      const tunnel = await openTunnel(port);
      expect(expectResult(await tunnel.call(1, 'Streams.nothing', {}), 1)).to.equal('ok');
      expectErrorResponse(await tunnel.call(2, 'Streams.nothing', { a: 1 }), 2, 'INVALID_ARGUMENT');
      await tunnel.write(request(3, 'Streams.sum', {}));
      await expectGrant(tunnel, 3);
      tunnel.socket.end();
      await once(tunnel.socket, 'close');
    });
  });
});
