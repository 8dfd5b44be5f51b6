/**
 * Interceptors on both sides and the ambient deadline, over real tunnels: order, short-circuits, header changes,
 * async work that finishes before the answer, and calls made from a handler that inherit its deadline and its
 * cancellation.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { z } from 'zod';
import { connect, createClient, RpcError, type Interceptor, type RpcCall } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import { defineService } from '@tunnelrpc/protocol';
import { RpcServer, type ServerOptions, type ServiceImpl } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { expectRejects, ScriptedServer } from '@tunnelrpc/test-kit';
import { mayHaveRunOf } from '../helpers/rpc-error.js';
import { Counter, listenRpc, startEchoServer } from '../helpers/servers.js';

/** Records what each named interceptor saw, in order, as `name>` on the way in and `<name` on the way out. */
function recorder(log: string[], name: string): Interceptor {
  return (next) => async (call) => {
    log.push(`${name}>${call.side}:${call.method}`);
    try {
      return await next(call);
    } finally {
      log.push(`<${name}`);
    }
  };
}

const Headers = defineService('Headers', {
  read: { input: z.object({ name: z.string() }), output: z.string().nullable() },
});

async function listen(cleanup: Cleanup, rpc: RpcServer): Promise<string> {
  return (await listenRpc(cleanup, rpc)).url;
}

describe('Interceptors', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  describe('on the server', () => {
    it('runs in the order given, around the handler, and sees the call fields', async () => {
      const log: string[] = [];
      const seen: RpcCall[] = [];
      const capture: Interceptor = (next) => async (call) => {
        seen.push(call);
        return next(call);
      };
      const server = await startEchoServer(cleanup, { server: { interceptors: [recorder(log, 'a'), recorder(log, 'b'), capture] } });
      const client = cleanup.add(await connect(server.url), (each) => each.close());
      expect(await createClient(Echo, client).add({ a: 2, b: 3 }, { timeout: 5000, headers: { 'X-Trace': 't1' } })).to.equal(5);
      expect(log).to.deep.equal(['a>server:Echo.add', 'b>server:Echo.add', '<b', '<a']);
      const call = seen[0]!;
      expect(call.kind).to.equal('unary');
      expect(call.service).to.equal('Echo');
      expect(call.name).to.equal('add');
      expect(call.params).to.deep.equal({ a: 2, b: 3 });
      expect(call.headers['x-trace']).to.equal('t1');
      expect(call.notification).to.equal(false);
      expect(call.peer).to.match(/^127\.0\.0\.1:\d+$/);
      expect(call.deadline).to.be.a('number').greaterThan(0);
      expect(call.signal).to.be.instanceOf(AbortSignal);
    });

    it('lets an unknown method through them and still answers UNIMPLEMENTED with mayHaveRun: false', async () => {
      const seen: string[] = [];
      const server = await startEchoServer(cleanup, { server: { interceptors: [(next) => (call) => (seen.push(call.method), next(call))] } });
      const client = cleanup.add(await connect(server.url), (each) => each.close());
      const error = await expectRejects(client.call('Echo.nope', null), 'UNIMPLEMENTED');
      expect(mayHaveRunOf(error)).to.equal(false);
      expect(seen).to.deep.equal(['Echo.nope']);
    });

    it('short-circuits with an RpcError: the handler never runs and the caller gets the code', async () => {
      let ran = 0;
      const deny: Interceptor = () => async (call) => {
        throw new RpcError('PERMISSION_DENIED', `${call.method} needs a token; send header authorization`);
      };
      const rpc = new RpcServer({ interceptors: [deny], logger: () => {} }).register(Headers, {
        read: () => {
          ran++;
          return null;
        },
      });
      const client = cleanup.add(await connect(await listen(cleanup, rpc)), (each) => each.close());
      await expectRejects(createClient(Headers, client).read({ name: 'x' }), 'PERMISSION_DENIED', 'needs a token');
      expect(ran).to.equal(0);
    });

    it('passes header changes made before next() to the handler (ctx.headers)', async () => {
      const addHeader: Interceptor = (next) => async (call) => {
        call.headers['x-added'] = 'by-interceptor';
        call.headers['x-from-client'] = `${call.headers['x-from-client'] ?? ''}+changed`;
        return next(call);
      };
      const impl: ServiceImpl<typeof Headers> = { read: ({ name }, ctx) => ctx.headers[name] ?? null };
      const rpc = new RpcServer({ interceptors: [addHeader] }).register(Headers, impl);
      const headers = createClient(Headers, cleanup.add(await connect(await listen(cleanup, rpc)), (each) => each.close()));
      expect(await headers.read({ name: 'x-added' })).to.equal('by-interceptor');
      expect(await headers.read({ name: 'x-from-client' }, { headers: { 'x-from-client': 'c' } })).to.equal('c+changed');
    });

    it('finishes async work in an interceptor before the call is answered (grpc-node#1984)', async () => {
      const done: string[] = [];
      const slowAfter: Interceptor = (next) => async (call) => {
        const result = await next(call);
        await new Promise((resolve) => setImmediate(resolve));
        done.push(`after ${call.method}`);
        return result;
      };
      const server = await startEchoServer(cleanup, { server: { interceptors: [slowAfter] } });
      const client = cleanup.add(await connect(server.url), (each) => each.close());
      await createClient(Echo, client).echo('x');
      expect(done).to.deep.equal(['after Echo.echo']);
    });

    it('sees the code the caller got when a handler throws, and INTERNAL stays generic', async () => {
      const outcomes: string[] = [];
      const outcome: Interceptor = (next) => async (call) => {
        try {
          return await next(call);
        } catch (error) {
          outcomes.push(`${call.method} ${error instanceof RpcError ? error.code : 'plain Error'}`);
          throw error;
        }
      };
      const server = await startEchoServer(cleanup, { server: { interceptors: [outcome] } });
      const echo = createClient(Echo, cleanup.add(await connect(server.url), (each) => each.close()));
      await expectRejects(echo.fail({ code: 'NOT_FOUND', message: 'no such row' }), 'NOT_FOUND', 'no such row');
      await expectRejects(echo.crash(), 'INTERNAL');
      expect(outcomes).to.deep.equal(['Echo.fail NOT_FOUND', 'Echo.crash plain Error']);
    });

    it('sees a call end with DEADLINE_EXCEEDED at its deadline even when the handler ignores its signal', async () => {
      const outcomes: string[] = [];
      const ended = new Counter();
      const outcome: Interceptor = (next) => async (call) => {
        try {
          return await next(call);
        } catch (error) {
          outcomes.push((error as RpcError).code);
          ended.increment();
          throw error;
        }
      };
      let release!: () => void;
      const stuck = new Promise<void>((resolve) => (release = resolve));
      // The server's cap (maxTimeout 50 ms) ends the call, well before the caller's own 60 s.
      const rpc = new RpcServer({ interceptors: [outcome], maxTimeout: 50 }).register(Headers, {
        read: async () => {
          await stuck;
          return null;
        },
      });
      const headers = createClient(Headers, cleanup.add(await connect(await listen(cleanup, rpc)), (each) => each.close()));
      await expectRejects(headers.read({ name: 'x' }, { timeout: 60_000 }), 'DEADLINE_EXCEEDED');
      await ended.reach(1);
      release();
      expect(outcomes).to.deep.equal(['DEADLINE_EXCEEDED']);
    });

    it('wraps notifications too, with notification set', async () => {
      const seen = new Counter();
      const methods: string[] = [];
      const watch: Interceptor = (next) => async (call) => {
        if (call.notification) methods.push(call.method);
        try {
          return await next(call);
        } finally {
          if (call.notification) seen.increment();
        }
      };
      const server = await startEchoServer(cleanup, { server: { interceptors: [watch] } });
      const echo = createClient(Echo, cleanup.add(await connect(server.url), (each) => each.close()));
      await echo.notify({ n: 1 });
      await seen.reach(1);
      expect(methods).to.deep.equal(['Echo.notify']);
    });

    it('answers INTERNAL, generic, when an interceptor throws something that is not an RpcError, and logs it', async () => {
      const buggy: Interceptor = () => async () => {
        throw new TypeError('secret interceptor detail');
      };
      const server = await startEchoServer(cleanup, { server: { interceptors: [buggy] } });
      const client = cleanup.add(await connect(server.url), (each) => each.close());
      const error = await expectRejects(client.call('Echo.echo', 1), 'INTERNAL', 'internal error in Echo.echo; the server logged the details');
      expect(error.message).to.not.include('secret');
      expect(server.logs).to.deep.equal(['Echo.echo: handler threw; the caller got INTERNAL']);
    });

    it('refuses an interceptors option that is not an array of functions', () => {
      expect(() => new RpcServer({ interceptors: ['x'] as unknown as ServerOptions['interceptors'] }))
        .to.throw(RpcError, /option interceptors must be an array of interceptor functions/);
    });
  });

  describe('on the client', () => {
    it('runs in the order given, outside the transport, once per call', async () => {
      const log: string[] = [];
      const server = await startEchoServer(cleanup);
      const client = cleanup.add(await connect(server.url, { interceptors: [recorder(log, 'a'), recorder(log, 'b')] }), (each) => each.close());
      expect(await createClient(Echo, client).add({ a: 1, b: 1 })).to.equal(2);
      expect(await client.call('Echo.echo', 'raw')).to.equal('raw');
      expect(log).to.deep.equal(['a>client:Echo.add', 'b>client:Echo.add', '<b', '<a', 'a>client:Echo.echo', 'b>client:Echo.echo', '<b', '<a']);
    });

    it('sends no headers map when interceptors wrote none, as a call without interceptors (the request keeps its short meta)', async () => {
      const server = cleanup.add(await ScriptedServer.start(), (each) => each.close());
      const passThrough: Interceptor = (next) => (call) => next(call);
      const connecting = connect(server.url, { reconnect: false, interceptors: [passThrough] });
      const peer = await server.nextPeer();
      await peer.head;
      await peer.accept();
      const client = cleanup.add(await connecting, (each) => each.close());
      const answered = client.call('Echo.echo', 'plain', { timeout: 5000 });
      answered.catch(() => undefined);
      const request = await peer.nextRequest();
      // The timeout is what is left of the deadline when the request is written: a millisecond may have gone.
      expect(Object.keys(request.meta ?? {})).to.deep.equal(['timeout']);
      await peer.respond(request.id, 'plain');
      expect(await answered).to.equal('plain');
    });

    it('sends header and params changes made before next()', async () => {
      const rewrite: Interceptor = (next) => async (call) => {
        call.headers['x-tenant'] = 'acme';
        if (call.method === 'Echo.echo') call.params = { wrapped: call.params };
        return next(call);
      };
      let seenTenant: string | undefined;
      const spy: Interceptor = (next) => async (call) => {
        seenTenant = call.headers['x-tenant'];
        return next(call);
      };
      const server = await startEchoServer(cleanup, { server: { interceptors: [spy] } });
      const client = cleanup.add(await connect(server.url, { interceptors: [rewrite] }), (each) => each.close());
      expect(await client.call('Echo.echo', 7)).to.deep.equal({ wrapped: 7 });
      expect(seenTenant).to.equal('acme');
    });

    it('short-circuits: nothing is sent and the caller gets the result or the RpcError', async () => {
      const server = await startEchoServer(cleanup);
      const cached: Interceptor = (next) => async (call) => (call.method === 'Echo.count' ? 42 : next(call));
      const refuse: Interceptor = (next) => async (call) => {
        if (call.method === 'Echo.notify') throw new RpcError('FAILED_PRECONDITION', 'circuit open; try again later');
        return next(call);
      };
      const client = cleanup.add(await connect(server.url, { interceptors: [cached, refuse] }), (each) => each.close());
      const echo = createClient(Echo, client);
      expect(await echo.count()).to.equal(42);
      await expectRejects(echo.notify({}), 'FAILED_PRECONDITION', 'circuit open');
      // The server received neither: its own count of notifications is still 0.
      const plain = createClient(Echo, cleanup.add(await connect(server.url), (each) => each.close()));
      expect(await plain.count()).to.equal(0);
    });

    it('turns a throw that is not an RpcError into INTERNAL with the throw as cause', async () => {
      const server = await startEchoServer(cleanup);
      const buggy: Interceptor = () => async () => {
        throw new TypeError('oops');
      };
      const client = cleanup.add(await connect(server.url, { interceptors: [buggy] }), (each) => each.close());
      const error = await expectRejects(client.call('Echo.echo', 1), 'INTERNAL', 'a client interceptor failed on Echo.echo (TypeError: oops)');
      expect(error.cause).to.be.instanceOf(TypeError);
      expect(mayHaveRunOf(error)).to.equal(true);
    });

    it('can retry by calling next() again', async () => {
      const server = await startEchoServer(cleanup);
      let attempts = 0;
      const retry: Interceptor = (next) => async (call) => {
        for (;;) {
          attempts++;
          try {
            return await next({ ...call, method: attempts === 1 ? 'Echo.nope' : call.method } as RpcCall);
          } catch (error) {
            if (attempts >= 2 || (error as RpcError).code !== 'UNIMPLEMENTED') throw error;
          }
        }
      };
      const client = cleanup.add(await connect(server.url, { interceptors: [retry] }), (each) => each.close());
      expect(await client.call('Echo.echo', 'again')).to.equal('again');
      expect(attempts).to.equal(2);
    });

    it('gives a call its deadline and the caller signal', async () => {
      const server = await startEchoServer(cleanup);
      const seen: RpcCall[] = [];
      const capture: Interceptor = (next) => async (call) => {
        seen.push(call);
        return next(call);
      };
      const client = cleanup.add(await connect(server.url, { interceptors: [capture] }), (each) => each.close());
      const controller = new AbortController();
      const before = Date.now();
      await client.call('Echo.echo', 1, { timeout: 60_000, signal: controller.signal });
      const call = seen[0]!;
      expect(call.side).to.equal('client');
      expect(call.peer).to.equal(server.url);
      expect(call.deadline).to.be.at.least(before + 60_000);
      expect(call.signal).to.equal(controller.signal);
      const pending = client.call('Echo.sleep', { ms: 60_000 }, { signal: controller.signal });
      await server.echo.sleepsStarted(1);
      controller.abort();
      await expectRejects(pending, 'CANCELLED');
    });
  });

  describe('ambient deadlines', () => {
    const Front = defineService('Front', {
      viaEcho: { input: z.object({ ms: z.number(), inherit: z.boolean().optional(), timeout: z.number().optional() }), output: z.unknown() },
    });

    async function frontAndBack(frontOptions: ServerOptions = {}, deadlineMargin?: number): Promise<{
      front: ReturnType<typeof createClient<typeof Front>>;
      back: Awaited<ReturnType<typeof startEchoServer>>;
      innerDeadlines: number[];
      innerOutcomes: string[];
    }> {
      const back = await startEchoServer(cleanup, {
        server: {
          interceptors: [
            (next) => async (call) => {
              innerDeadlines.push(call.deadline);
              return next(call);
            },
          ],
        },
      });
      const innerDeadlines: number[] = [];
      const innerOutcomes: string[] = [];
      const backClient = cleanup.add(await connect(back.url, deadlineMargin === undefined ? {} : { deadlineMargin }), (each) => each.close());
      const backEcho = createClient(Echo, backClient);
      const rpc = new RpcServer({ logger: () => {}, ...frontOptions }).register(Front, {
        viaEcho: async ({ ms, inherit, timeout }) => {
          try {
            return await backEcho.sleep({ ms }, { ...(inherit === undefined ? {} : { inheritDeadline: inherit }), ...(timeout === undefined ? {} : { timeout }) });
          } catch (error) {
            innerOutcomes.push((error as RpcError).code);
            throw error;
          }
        },
      });
      const front = createClient(Front, cleanup.add(await connect(await listen(cleanup, rpc)), (each) => each.close()));
      return { front, back, innerDeadlines, innerOutcomes };
    }

    it('gives a call made in a handler what is left of the inbound deadline, less the margin', async () => {
      const back = await startEchoServer(cleanup);
      const sent: number[] = [];
      const capture: Interceptor = (next) => async (call) => {
        sent.push(call.deadline);
        return next(call);
      };
      const backClient = cleanup.add(await connect(back.url, { interceptors: [capture], deadlineMargin: 25 }), (each) => each.close());
      const Outer = defineService('Outer', { go: { input: z.void(), output: z.number() } });
      const rpc = new RpcServer().register(Outer, {
        go: async (_input, ctx) => {
          await backClient.call('Echo.echo', 1);
          return ctx.deadline;
        },
      });
      const client = cleanup.add(await connect(await listen(cleanup, rpc)), (each) => each.close());
      const inbound = (await client.call('Outer.go', undefined, { timeout: 3000 })) as number;
      expect(sent).to.deep.equal([inbound - 25]);
    });

    it('cancels the inner call when the inbound call is cancelled', async () => {
      const { front, back, innerOutcomes } = await frontAndBack();
      const controller = new AbortController();
      const pending = front.viaEcho({ ms: 60_000 }, { signal: controller.signal });
      await back.echo.sleepsStarted(1);
      controller.abort();
      await expectRejects(pending, 'CANCELLED');
      await back.echo.sleepsAborted(1);
      expect(back.echo.aborted[0]).to.be.instanceOf(RpcError);
      expect((back.echo.aborted[0] as RpcError).code).to.equal('CANCELLED');
      expect(innerOutcomes).to.deep.equal(['CANCELLED']);
    });

    it('ends the inner call before the inbound deadline, so the handler can still answer', async () => {
      // A margin well above timer jitter on a loaded machine: the inner deadline must come first, not tie.
      const { front, back, innerOutcomes } = await frontAndBack({}, 100);
      const error = await expectRejects(front.viaEcho({ ms: 60_000 }, { timeout: 300 }), 'DEADLINE_EXCEEDED');
      expect(error).to.be.instanceOf(RpcError);
      await back.echo.sleepsAborted(1);
      expect(innerOutcomes).to.deep.equal(['DEADLINE_EXCEEDED']);
    });

    it('keeps its own shorter timeout', async () => {
      const { front, innerOutcomes } = await frontAndBack();
      await expectRejects(front.viaEcho({ ms: 60_000, timeout: 50 }, { timeout: 60_000 }), 'DEADLINE_EXCEEDED');
      expect(innerOutcomes).to.deep.equal(['DEADLINE_EXCEEDED']);
    });

    it('opts out per call with inheritDeadline: false', async () => {
      const { front, back } = await frontAndBack();
      const controller = new AbortController();
      const pending = front.viaEcho({ ms: 100, inherit: false }, { signal: controller.signal });
      await back.echo.sleepsStarted(1);
      controller.abort();
      await expectRejects(pending, 'CANCELLED');
      // The inner sleep was not cancelled with the inbound call: it runs to its end.
      expect(back.echo.aborted).to.deep.equal([]);
    });

    it('never starts a call whose inherited deadline has passed (no negative timeout)', async () => {
      const Late = defineService('Late', { go: { input: z.void(), output: z.string() } });
      const { back, innerDeadlines } = await frontAndBack();
      const backClient = cleanup.add(await connect(back.url), (each) => each.close());
      const inner = new Counter();
      const innerOutcomes: string[] = [];
      const rpc = new RpcServer({ logger: () => {} }).register(Late, {
        go: async (_input, ctx) => {
          // Wait until what is left of the inbound deadline is inside the margin (10 ms), then call out.
          while (ctx.deadline - Date.now() > 10) await new Promise((resolve) => setTimeout(resolve, 1));
          try {
            await backClient.call('Echo.echo', 1);
            innerOutcomes.push('sent');
          } catch (error) {
            innerOutcomes.push(`${(error as RpcError).code} mayHaveRun=${String(mayHaveRunOf(error as RpcError))}`);
          }
          inner.increment();
          return 'done';
        },
      });
      const client = cleanup.add(await connect(await listen(cleanup, rpc)), (each) => each.close());
      await client.call('Late.go', undefined, { timeout: 200 }).catch(() => undefined);
      await inner.reach(1);
      expect(innerOutcomes).to.deep.equal(['DEADLINE_EXCEEDED mayHaveRun=false']);
      expect(innerDeadlines).to.deep.equal([]);
    });
  });
});
