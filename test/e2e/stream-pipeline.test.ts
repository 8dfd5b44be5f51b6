/**
 * Streams pass the same call pipeline as unary calls: interceptors on both sides see the opening (and may refuse
 * it), each message both ways, and the end; headers an interceptor writes reach the stream.
 */
import { expect } from 'chai';
import { z } from 'zod';
import { connect, createClient, RpcError, type Interceptor, type RpcCall } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import { defineService } from '@tunnelrpc/protocol';
import { RpcServer, type ServerOptions } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { expectRejects } from '@tunnelrpc/test-kit';
import { listenRpc, startEchoServer } from '../helpers/servers.js';

const denyAll: Interceptor = () => () => Promise.reject(new RpcError('PERMISSION_DENIED', 'nobody may call this server'));

const Watch = defineService('Watch', {
  headers: { kind: 'serverStream', input: z.void(), serverMessage: z.string(), output: z.number().int() },
});

async function collect(iterable: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const value of iterable) out.push(value);
  return out;
}

describe('Streams through the call pipeline', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function echoClient(server: ServerOptions, interceptors: Interceptor[] = []): Promise<{ echo: ReturnType<typeof createClient<typeof Echo>>; pulls: () => number }> {
    let pulls = 0;
    const counting: Interceptor = (next) => (call) => {
      if (call.kind === 'stream') call.watch({ sent: () => pulls++ });
      return next(call);
    };
    const { url } = await startEchoServer(cleanup, { server: { ...server, interceptors: [...(server.interceptors ?? []), counting] } });
    const rpc = await connect(url, { interceptors });
    cleanup.defer(() => rpc.close());
    return { echo: createClient(Echo, rpc), pulls: () => pulls };
  }

  describe('on the server', () => {
    it('refuses every kind of stream opening with a deny-all interceptor, as it refuses calls', async () => {
      const { echo, pulls } = await echoClient({ interceptors: [denyAll] });
      await expectRejects(echo.add({ a: 1, b: 2 }), 'PERMISSION_DENIED');
      const ticks = echo.ticks({ n: 5 });
      await expectRejects(collect(ticks), 'PERMISSION_DENIED');
      await expectRejects(ticks.result, 'PERMISSION_DENIED');
      await expectRejects(echo.sum(undefined, [40, 2]), 'PERMISSION_DENIED');
      const chat = echo.chat(undefined, ['a']);
      await expectRejects(chat.result, 'PERMISSION_DENIED');
      expect(pulls(), 'no handler produced a message').to.equal(0);
    });

    it('shows an interceptor the opening, each message both ways, and the result at the end', async () => {
      const seen: string[] = [];
      const watching: Interceptor = (next) => async (call) => {
        if (call.kind !== 'stream') return next(call);
        seen.push(`open ${call.streamKind} ${call.method}`);
        call.watch({ received: (message) => seen.push(`in ${String(message)}`), sent: (message) => seen.push(`out ${String(message)}`) });
        const result = await next(call);
        seen.push(`end ${JSON.stringify(result)}`);
        return result;
      };
      const { echo } = await echoClient({ interceptors: [watching] });
      const chat = echo.chat(undefined, ['a', 'b']);
      expect(await collect(chat)).to.deep.equal(['a', 'b']);
      expect(await chat.result).to.deep.equal({ echoed: 2 });
      // Each direction in order; how the two interleave depends on when each frame arrives.
      expect(seen[0]).to.equal('open bidiStream Echo.chat');
      expect(seen.filter((line) => line.startsWith('in '))).to.deep.equal(['in a', 'in b']);
      expect(seen.filter((line) => line.startsWith('out '))).to.deep.equal(['out a', 'out b']);
      expect(seen.indexOf('out a')).to.be.above(seen.indexOf('in a'));
      expect(seen.at(-1)).to.equal('end {"echoed":2}');
    });

    it("lets an interceptor change the stream's result, and shows it the error that ended a cancelled stream", async () => {
      const outcomes: string[] = [];
      const interceptor: Interceptor = (next) => async (call) => {
        try {
          const result = await next(call);
          return call.method === 'Echo.sum' ? (result as number) * 10 : result;
        } catch (error) {
          outcomes.push(`${call.method} ${(error as RpcError).code}`);
          throw error;
        }
      };
      const { echo } = await echoClient({ interceptors: [interceptor] });
      expect(await echo.sum(undefined, [1, 2])).to.equal(30);
      const ticks = echo.ticks({ n: 1_000_000, ms: 5 });
      for await (const tick of ticks) if (tick === 2) break;
      await expectRejects(ticks.result, 'CANCELLED');
      for (let i = 0; i < 50 && outcomes.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(outcomes).to.deep.equal(['Echo.ticks CANCELLED']);
    });

    it('refuses a second next() for a stream instead of running its handler twice', async () => {
      let runs = 0;
      const retrying: Interceptor = (next) => async (call) => {
        if (call.kind !== 'stream') return next(call);
        const first = next(call);
        const second = await next(call).then(
          () => 'resolved',
          (error: unknown) => (error as RpcError).code,
        );
        expect(second).to.equal('FAILED_PRECONDITION');
        return first;
      };
      const counting: Interceptor = (next) => (call) => {
        if (call.kind === 'stream') call.watch({ sent: () => runs++ });
        return next(call);
      };
      const { echo } = await echoClient({ interceptors: [counting, retrying] });
      const ticks = echo.ticks({ n: 3 });
      expect(await collect(ticks)).to.deep.equal([0, 1, 2]);
      expect(await ticks.result).to.deep.equal({ sent: 3 });
      expect(runs).to.equal(3);
    });

    it('ends the stream with the error a watcher throws for one message', async () => {
      const refuseSeven: Interceptor = (next) => (call) => {
        if (call.kind === 'stream') {
          call.watch({
            received: (message) => {
              if (message === 7) throw new RpcError('PERMISSION_DENIED', 'seven is not allowed');
            },
          });
        }
        return next(call);
      };
      const { echo } = await echoClient({ interceptors: [refuseSeven] });
      expect(await echo.sum(undefined, [1, 2, 3])).to.equal(6);
      const error = await expectRejects(echo.sum(undefined, [1, 7, 3]), 'PERMISSION_DENIED');
      expect(error.message).to.equal('seven is not allowed');
    });
  });

  it('tells the tunnel events that a stream is running: active when it opens, idle when it ends', async () => {
    const events: string[] = [];
    const { url } = await startEchoServer(cleanup, { server: { listeners: [(event) => void ((event.type === 'active' || event.type === 'idle') && events.push(event.type))] } });
    const rpc = await connect(url);
    cleanup.defer(() => rpc.close());
    const ticks = createClient(Echo, rpc).ticks({ n: 3, ms: 5 });
    for await (const tick of ticks) if (tick === 0) expect(events).to.deep.equal(['active']);
    await ticks.result;
    for (let i = 0; i < 100 && events.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(events).to.deep.equal(['active', 'idle']);
  });

  it("makes a stream handler's outbound calls inherit the stream's deadline, as a unary handler's do", async () => {
    const back = await startEchoServer(cleanup);
    const backClient = await connect(back.url);
    cleanup.defer(() => backClient.close());
    const outcomes: string[] = [];
    const Front = defineService('Front', {
      relay: { kind: 'serverStream', input: z.void(), serverMessage: z.string(), output: z.void() },
    });
    const rpc = new RpcServer({ logger: () => {} }).register(Front, {
      relay: async function* () {
        yield 'started';
        try {
          await backClient.call('Echo.sleep', { ms: 60_000 });
          outcomes.push('answered');
        } catch (error) {
          outcomes.push((error as RpcError).code);
        }
      },
    });
    const { url } = await listenRpc(cleanup, rpc);
    const client = await connect(url);
    cleanup.defer(() => client.close());
    // The inner call ends with the stream's deadline less the margin, not its own 30 s default: the handler catches
    // that and finishes the stream in time.
    const relay = createClient(Front, client).relay(undefined, { timeout: 1_000 });
    expect(await collect(relay)).to.deep.equal(['started']);
    await relay.result;
    expect(outcomes).to.deep.equal(['DEADLINE_EXCEEDED']);
  });

  describe('on the client', () => {
    it('runs client interceptors for streams: headers reach the handler, messages and the end are seen', async () => {
      const rpc = new RpcServer().register(Watch, {
        headers: async function* (_params, ctx) {
          yield ctx.headers['x-token'] ?? 'none';
          return 1;
        },
      });
      const { url } = await listenRpc(cleanup, rpc);
      const seen: string[] = [];
      const calls: RpcCall[] = [];
      const token: Interceptor = (next) => async (call) => {
        calls.push(call);
        call.headers['x-token'] = 'secret';
        if (call.kind === 'stream') call.watch({ received: (message) => seen.push(`in ${String(message)}`) });
        const result = await next(call);
        seen.push(`end ${String(result)}`);
        return result;
      };
      const client = await connect(url, { interceptors: [token] });
      cleanup.defer(() => client.close());
      const watch = createClient(Watch, client).headers();
      expect(await collect(watch)).to.deep.equal(['secret']);
      expect(await watch.result).to.equal(1);
      expect(seen).to.deep.equal(['in secret', 'end 1']);
      expect(calls.map((call) => [call.kind, call.side, call.kind === 'stream' ? call.streamKind : '-'])).to.deep.equal([['stream', 'client', 'serverStream']]);
    });

    it('never sends a stream whose opening a client interceptor refuses', async () => {
      const { echo, pulls } = await echoClient({}, [denyAll]);
      await expectRejects(echo.sum(undefined, [1]), 'PERMISSION_DENIED');
      await expectRejects(echo.ticks({ n: 3 }).result, 'PERMISSION_DENIED');
      expect(pulls()).to.equal(0);
    });
  });
});
