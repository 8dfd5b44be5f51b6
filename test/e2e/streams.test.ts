/**
 * Streams end to end (PROTOCOL.md 12): the real client against the real server over real sockets. All four kinds
 * typed, 1,000 streams beside calls, a stalled reader that keeps both sides' memory flat, the per-connection budget,
 * and every way a stream ends, each running the handler's finally.
 */
import { expect } from 'chai';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { connect, createClient, RpcError, type RpcClient } from '@tunnelrpc/client';
import { Echo, createEchoService } from '@tunnelrpc/examples';
import { defineService } from '@tunnelrpc/protocol';
import { RpcServer } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { expectRejects } from '@tunnelrpc/test-kit';
import { Counter, startEchoServer } from '../helpers/servers.js';

const Streams = defineService('Streams', {
  /** Yields `n` messages of `bytes` bytes (0: the index), counting every pull. */
  feed: {
    kind: 'serverStream',
    input: z.strictObject({ n: z.number().int(), bytes: z.number().int().optional() }),
    serverMessage: z.union([z.number(), z.instanceof(Uint8Array)]),
    output: z.number(),
  },
  /** Yields one message, then waits for its signal. */
  hang: { kind: 'serverStream', input: z.void(), serverMessage: z.string(), output: z.void() },
  /** Reads every message, then answers how many; never reads when `stall`. */
  drain: { kind: 'clientStream', input: z.strictObject({ stall: z.boolean() }), clientMessage: z.string(), output: z.number() },
  /** Fails with the given code after one message. */
  die: { kind: 'bidiStream', input: z.strictObject({ code: z.literal('ABORTED') }), clientMessage: z.number(), serverMessage: z.number(), output: z.void() },
  add: { input: z.strictObject({ a: z.number(), b: z.number() }), output: z.number() },
});

interface Probe {
  pulls: Counter;
  finals: Counter;
  reasons: unknown[];
}

async function startStreams(cleanup: Cleanup, options: ConstructorParameters<typeof RpcServer>[0] = {}): Promise<{ url: string; rpc: RpcServer; http: HttpServer; probe: Probe; sockets: Set<import('node:stream').Duplex> }> {
  const probe: Probe = { pulls: new Counter(), finals: new Counter(), reasons: [] };
  const ended = (signal: AbortSignal): void => {
    probe.reasons.push(signal.aborted ? signal.reason : undefined);
    probe.finals.increment();
  };
  const rpc = new RpcServer({ logger: () => {}, shutdownTimeout: 100, ...options }).register(Streams, {
    feed: async function* ({ n, bytes = 0 }, ctx) {
      try {
        for (let i = 0; i < n; i++) {
          probe.pulls.increment();
          yield bytes > 0 ? new Uint8Array(bytes).fill(i & 0xff) : i;
        }
        return n;
      } finally {
        ended(ctx.signal);
      }
    },
    hang: async function* (_params, ctx) {
      try {
        yield 'started';
        await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      } finally {
        ended(ctx.signal);
      }
    },
    drain: async ({ stall }, messages, ctx) => {
      try {
        if (stall) await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        let count = 0;
        for await (const _message of messages) count++;
        return count;
      } finally {
        ended(ctx.signal);
      }
    },
    die: async function* ({ code }, messages, ctx) {
      try {
        for await (const value of messages) {
          yield value;
          throw new RpcError(code, 'the handler gave up on this stream');
        }
      } finally {
        ended(ctx.signal);
      }
    },
    add: ({ a, b }) => a + b,
  });
  const http = createServer();
  const sockets = new Set<import('node:stream').Duplex>();
  http.on('connect', (_req, socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  rpc.attach(http);
  http.listen(0, '127.0.0.1');
  await new Promise((resolve) => http.once('listening', resolve));
  cleanup.defer(async () => {
    await rpc.close();
    for (const socket of sockets) socket.destroy();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  });
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/_rpc`, rpc, http, probe, sockets };
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const value of iterable) out.push(value);
  return out;
}

function memory(): { heap: number; rss: number } {
  global.gc?.();
  const usage = process.memoryUsage();
  return { heap: usage.heapUsed, rss: usage.rss };
}

const MiB = 1024 * 1024;

describe('streams end to end', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function client(url: string, options: Parameters<typeof connect>[1] = {}): Promise<RpcClient> {
    return cleanup.add(await connect(url, options), (each) => each.close());
  }

  describe('the Echo fixture, typed', () => {
    it('serves all four kinds with their types', async () => {
      const server = await startEchoServer(cleanup);
      const echo = createClient(Echo, await client(server.url));
      const ticks = echo.ticks({ n: 4 });
      const seen: number[] = [];
      for await (const tick of ticks) seen.push(tick);
      expect(seen).to.deep.equal([0, 1, 2, 3]);
      expect(await ticks.result).to.deep.equal({ sent: 4 });

      async function* numbers(): AsyncGenerator<number> {
        yield 1;
        yield 2.5;
      }
      expect(await echo.sum(undefined, numbers())).to.equal(3.5);
      expect(await echo.sum(undefined, [])).to.equal(0);

      const chat = echo.chat(undefined, ['a', { b: 1 }]);
      expect(await collect(chat)).to.deep.equal(['a', { b: 1 }]);
      expect(await chat.result).to.deep.equal({ echoed: 2 });
      expect(await echo.add({ a: 1, b: 2 })).to.equal(3);

      // Compile-time checks: the message types come from the contract.
      const check = async (): Promise<void> => {
        // @ts-expect-error sum takes numbers
        void echo.sum(undefined, ['one']);
        // @ts-expect-error ticks yields numbers
        for await (const tick of echo.ticks({ n: 1 }) as AsyncIterable<number>) { const text: string = tick; void text; }
        // @ts-expect-error ticks needs n
        void echo.ticks({});
        // @ts-expect-error the result of ticks is {sent}
        void echo.ticks({ n: 1 }).result.then((result) => result.count);
      };
      void check;
      // The server's handler types come from the same contract.
      const handlers = (): void => {
        new RpcServer().register(Echo, {
          ...createEchoService(),
          // @ts-expect-error ticks must yield numbers
          ticks: async function* () {
            yield 'not a number';
            return { sent: 1 };
          },
        });
        new RpcServer().register(Echo, {
          ...createEchoService(),
          // @ts-expect-error sum receives numbers, and must return one
          sum: async (_params: undefined, numbers: AsyncIterable<string>) => {
            for await (const text of numbers) return text;
            return '';
          },
        });
      };
      void handlers;
    });

    it('runs a bidi stream fed with send() and end(), and one piped through duplex()', async () => {
      const server = await startEchoServer(cleanup);
      const echo = createClient(Echo, await client(server.url));
      const chat = echo.chat(undefined);
      const reading = collect(chat);
      await chat.send('one');
      await chat.send('two');
      chat.end();
      expect(await reading).to.deep.equal(['one', 'two']);
      expect(await chat.result).to.deep.equal({ echoed: 2 });

      const piped = echo.chat(undefined);
      const out: unknown[] = [];
      await pipeline(
        Readable.from(['x', 'y', 'z']),
        piped.duplex(),
        new Writable({ objectMode: true, write: (chunk: unknown, _encoding, callback) => (out.push(chunk), callback()) }),
      );
      expect(out).to.deep.equal(['x', 'y', 'z']);
      expect(await piped.result).to.deep.equal({ echoed: 3 });
    });

    it('streams over a tunnel opened with the Upgrade handshake as over CONNECT', async () => {
      const server = await startEchoServer(cleanup);
      const echo = createClient(Echo, await client(server.url, { handshake: 'upgrade' }));
      const ticks = echo.ticks({ n: 3 });
      expect(await collect(ticks)).to.deep.equal([0, 1, 2]);
      expect(await echo.sum(undefined, [1, 2])).to.equal(3);
    });

    it('fails a client stream with INVALID_ARGUMENT for a message its schema refuses, on the server', async () => {
      const server = await startEchoServer(cleanup);
      const rpc = await client(server.url);
      const error = await expectRejects(rpc.stream('Echo.sum', null, 'clientStream', {}, [1, 'two']).result, 'INVALID_ARGUMENT');
      expect(error.message).to.include('invalid stream message for Echo.sum');
    });
  });

  describe('ending', () => {
    it('break in for-await cancels the stream and runs the handler finally with CANCELLED', async () => {
      const { url, probe } = await startStreams(cleanup);
      const streams = createClient(Streams, await client(url));
      const feed = streams.feed({ n: 1_000_000 });
      let read = 0;
      for await (const _value of feed) if (++read === 3) break;
      await expectRejects(feed.result, 'CANCELLED');
      await probe.finals.reach(1);
      expect((probe.reasons[0] as RpcError).code).to.equal('CANCELLED');
      expect(await streams.add({ a: 1, b: 1 })).to.equal(2);
    });

    it('cancel() from the client and an error from the server end the stream with their codes', async () => {
      const { url, probe } = await startStreams(cleanup);
      const streams = createClient(Streams, await client(url));
      const hang = streams.hang();
      const iterator = hang[Symbol.asyncIterator]();
      expect((await iterator.next()).value).to.equal('started');
      hang.cancel();
      await expectRejects(iterator.next(), 'CANCELLED');
      await expectRejects(hang.result, 'CANCELLED');
      await probe.finals.reach(1);

      const die = streams.die({ code: 'ABORTED' }, [7, 8, 9]);
      const got: number[] = [];
      const error = await expectRejects((async () => {
        for await (const value of die) got.push(value);
      })(), 'ABORTED');
      expect(error.message).to.include('gave up');
      expect(got).to.deep.equal([7]);
      await probe.finals.reach(2);
    });

    it('keeps a stream open while 1,000 later calls on its tunnel take ids around its slot in the call table', async () => {
      const { url, probe } = await startStreams(cleanup);
      const streams = createClient(Streams, await client(url));
      const hang = streams.hang();
      expect((await hang[Symbol.asyncIterator]().next()).value).to.equal('started');
      // Waves of 50 grow the client's table and walk the ids many times past the stream's slot.
      for (let wave = 0; wave < 20; wave++) {
        const sums = await Promise.all(Array.from({ length: 50 }, (_, i) => streams.add({ a: wave, b: i })));
        expect(sums).to.deep.equal(Array.from({ length: 50 }, (_, i) => wave + i));
      }
      // The cancel finds the stream by its id: the server's handler hears it and ends.
      hang.cancel();
      await expectRejects(hang.result, 'CANCELLED');
      await probe.finals.reach(1);
      expect(probe.reasons[0]).to.be.instanceOf(RpcError);
      expect((probe.reasons[0] as RpcError).code).to.equal('CANCELLED');
    });

    it('a deadline ends a stream DEADLINE_EXCEEDED on both sides', async () => {
      const { url, probe } = await startStreams(cleanup);
      const streams = createClient(Streams, await client(url));
      const hang = streams.hang(undefined, { timeout: 100 });
      await expectRejects(collect(hang), 'DEADLINE_EXCEEDED');
      await probe.finals.reach(1);
      expect(['DEADLINE_EXCEEDED', 'CANCELLED']).to.include((probe.reasons[0] as RpcError).code);
    });

    it('is never re-sent after a message was delivered, even with reconnect on: UNAVAILABLE, may have run', async () => {
      const { url, probe, sockets } = await startStreams(cleanup);
      const streams = createClient(Streams, await client(url));
      const hang = streams.hang();
      expect((await hang[Symbol.asyncIterator]().next()).value).to.equal('started');
      for (const socket of sockets) socket.destroy();
      const error = await expectRejects(hang.result, 'UNAVAILABLE', 'may have run');
      expect((error.data as { mayHaveRun: boolean }).mayHaveRun).to.equal(true);
      await probe.finals.reach(1);
      // The client reconnects for what comes next; the stream itself ran once.
      expect(await streams.add({ a: 2, b: 2 })).to.equal(4);
      expect(probe.finals.value).to.equal(1);
    });

    it('a goaway cut-off and a killed connection end every stream UNAVAILABLE and run every finally', async () => {
      const { url, rpc, probe, sockets } = await startStreams(cleanup);
      const streams = createClient(Streams, await client(url, { reconnect: false }));
      const first = [streams.hang(), streams.hang()];
      for (const each of first) await each[Symbol.asyncIterator]().next();
      for (const socket of sockets) socket.destroy();
      for (const each of first) await expectRejects(each.result, 'UNAVAILABLE');
      await probe.finals.reach(2);

      const again = await startStreams(cleanup);
      const streams2 = createClient(Streams, await client(again.url, { reconnect: false }));
      const hang = streams2.hang();
      await hang[Symbol.asyncIterator]().next();
      await again.rpc.close();
      await expectRejects(hang.result, 'UNAVAILABLE');
      await again.probe.finals.reach(1);
      expect(again.probe.reasons[0]).to.be.instanceOf(RpcError);
      void rpc;
    });
  });

  describe('scale and memory', () => {
    it('runs 1,000 concurrent streams on one tunnel beside unary calls', async () => {
      const { url } = await startStreams(cleanup);
      const streams = createClient(Streams, await client(url, { maxPendingCalls: 4096 }));
      const runs: Promise<unknown>[] = [];
      for (let i = 0; i < 1000; i++) {
        const feed = streams.feed({ n: 5 });
        runs.push(collect(feed).then(async (values) => {
          expect(values).to.deep.equal([0, 1, 2, 3, 4]);
          expect(await feed.result).to.equal(5);
        }));
        runs.push(streams.add({ a: i, b: 1 }).then((sum) => expect(sum).to.equal(i + 1)));
      }
      await Promise.all(runs);
    });

    it('keeps both sides flat while a reader stalls: the producer waits at the window, pings and calls flow', async () => {
      const { url, probe } = await startStreams(cleanup);
      const rpc = await client(url);
      const streams = createClient(Streams, rpc);
      const window = 32;
      const feed = streams.feed({ n: 1_000_000, bytes: 64 * 1024 });
      const iterator = feed[Symbol.asyncIterator]();
      for (let i = 0; i < 100; i++) await iterator.next();
      // Stalled: the server produces what the window allows (after each read the client holds more than half of it
      // granted, else it tops it up), and stops there.
      await probe.pulls.reach(100 + window / 2 + 1);
      // Grants the last reads sent may still be on their way: two round trips on the same tunnel come back only after
      // the server took them and pulled what they allow, so the count read next is where the producer stopped.
      await rpc.call('Streams.add', { a: 0, b: 0 });
      await rpc.call('Streams.add', { a: 0, b: 0 });
      const before = memory();
      const pullsBefore = probe.pulls.value;
      for (let i = 0; i < 2000; i++) expect(await streams.add({ a: i, b: 0 })).to.equal(i);
      await rpc.call('Streams.add', { a: 0, b: 0 });
      const after = memory();
      expect(probe.pulls.value, 'nothing more is produced while the reader sleeps').to.equal(pullsBefore);
      // eslint-disable-next-line no-console
      console.log(`      stalled reader, 64 KiB messages: pulls ${probe.pulls.value} (read 100 + window ${window}); heap ${(before.heap / MiB).toFixed(1)} -> ${(after.heap / MiB).toFixed(1)} MiB, rss ${(before.rss / MiB).toFixed(1)} -> ${(after.rss / MiB).toFixed(1)} MiB`);
      expect(probe.pulls.value, 'the generator runs at most one message ahead of the credit').to.be.at.most(100 + window + 2);
      // What a stalled stream may hold is its window: 32 x 64 KiB = 2 MiB, on each side; the budget is 16 MiB.
      expect(after.heap - before.heap).to.be.below(16 * MiB);
      feed.cancel();
      await probe.finals.reach(1);
    });

    it('holds the per-tunnel budget with 1,000 stalled streams, and pings and calls keep working', async () => {
      const { url, probe } = await startStreams(cleanup);
      const size = 1024;
      const rpc = await client(url, { maxStreamMessageSize: 2 * size, maxStreamBuffer: 128 * 2 * size, maxStreamCredit: 8, maxPendingCalls: 4096 });
      const streams = createClient(Streams, rpc);
      const feeds = Array.from({ length: 1000 }, () => streams.feed({ n: 1_000_000, bytes: size }));
      // The budget holds 128 messages of 2 KiB: the server gets exactly that much credit, whatever the stream count,
      // and each handler runs one message ahead of its credit (held by the server, to learn its end without a grant).
      await probe.pulls.reach(128 + 1000);
      for (let i = 0; i < 500; i++) expect(await streams.add({ a: i, b: 1 })).to.equal(i + 1);
      expect(probe.pulls.value).to.equal(128 + 1000);
      // Reading one stream frees room, which goes to the next stream waiting for a grant.
      const iterator = feeds[0]![Symbol.asyncIterator]();
      for (let i = 0; i < 8; i++) await iterator.next();
      for (const feed of feeds) feed.cancel();
      await probe.finals.reach(1000);
    });

    it('keeps a clientStream producer at the server budget when the handler never reads', async () => {
      const { url, probe } = await startStreams(cleanup, { maxStreamMessageSize: 1024, maxStreamBuffer: 16 * 1024, maxStreamCredit: 4 });
      const streams = createClient(Streams, await client(url));
      let produced = 0;
      function* messages(): Generator<string> {
        for (;;) {
          produced++;
          yield 'x'.repeat(100);
        }
      }
      const abort = new AbortController();
      const result = streams.drain({ stall: true }, messages(), { timeout: 60_000, signal: abort.signal });
      for (let i = 0; i < 200; i++) await streams.add({ a: i, b: 0 });
      expect(produced, 'the source is read only as the server grants').to.be.at.most(4 + 1);
      const second = streams.drain({ stall: false }, ['a', 'b', 'c']);
      expect(await second).to.equal(3);
      abort.abort();
      await expectRejects(result, 'CANCELLED');
      await probe.finals.reach(2);
    });
  });
});
