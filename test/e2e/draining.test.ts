/**
 * Shutting down with long streams: handlers learn that the server is draining (ctx.draining) and can end with a
 * result; shutdownTimeout is the whole grace counted from close(); a method may declare a longer deadline than the
 * server's maxTimeout.
 */
import { expect } from 'chai';
import { z } from 'zod';
import { connect, createClient } from '@tunnelrpc/client';
import { defineService } from '@tunnelrpc/protocol';
import { MessageType, encodeMessage } from '@tunnelrpc/protocol/internal';
import { RpcServer, type ServerOptions } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { RawTunnel } from '@tunnelrpc/test-kit';
import { listenRpc } from '../helpers/servers.js';

const Feed = defineService('Feed', {
  /** Ticks every `ms` until the server drains, then ends with how many it sent. */
  watch: { kind: 'serverStream', input: z.object({ ms: z.number().int() }), serverMessage: z.number().int(), output: z.object({ sent: z.number().int(), drained: z.boolean() }), maxTimeout: 3_600_000 },
  /** Never answers on its own. */
  hang: { input: z.void(), output: z.void() },
  /** Reports the ms left to the deadline it was given; declared long-lived. */
  deadline: { input: z.void(), output: z.number(), maxTimeout: 3_600_000 },
  /** The same, under the server's maxTimeout. */
  bounded: { input: z.void(), output: z.number() },
});

describe('Draining and long-lived methods', function () {
  this.timeout(30_000);
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function start(options: ServerOptions): Promise<{ rpc: RpcServer; port: number; url: string }> {
    const rpc = new RpcServer({ logger: () => {}, ...options }).register(Feed, {
      watch: async function* ({ ms }, ctx) {
        let sent = 0;
        while (!ctx.draining.aborted) {
          yield sent++;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, ms);
            ctx.draining.addEventListener('abort', () => {
              clearTimeout(timer);
              resolve();
            }, { once: true });
          });
        }
        return { sent, drained: true };
      },
      hang: (_params, ctx) => new Promise<void>((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true })),
      deadline: (_params, ctx) => ctx.deadline - Date.now(),
      bounded: (_params, ctx) => ctx.deadline - Date.now(),
    });
    return { rpc, ...(await listenRpc(cleanup, rpc)) };
  }

  it('tells a stream handler the server is draining, so the stream ends with its result, not cut off', async () => {
    const { rpc, url } = await start({ shutdownTimeout: 20_000 });
    const client = cleanup.add(await connect(url, { reconnect: false }), (c) => c.close());
    const watch = createClient(Feed, client).watch({ ms: 10 }, { timeout: 600_000 });
    const ticks: number[] = [];
    const closing = (async () => {
      for await (const tick of watch) {
        ticks.push(tick);
        if (tick === 3) void rpc.close();
      }
    })();
    await closing;
    const result = await watch.result;
    expect(result.drained).to.equal(true);
    expect(result.sent).to.equal(ticks.length);
    expect(ticks.length).to.be.at.least(4);
  });

  it('counts shutdownTimeout from close(), shutdownDelay included: a call outliving both is cut during the delay', async () => {
    const { rpc, port } = await start({ shutdownDelay: 2_000, shutdownTimeout: 300 });
    const raw = cleanup.add(await RawTunnel.open(port), (t) => t.destroy());
    raw.write(encodeMessage({ type: MessageType.Request, id: 1, method: 'Feed.hang', params: undefined, meta: { timeout: 60_000 } }));
    // The call is running once a second call on the tunnel has been answered after it.
    raw.write(encodeMessage({ type: MessageType.Request, id: 3, method: 'Feed.bounded', params: undefined }));
    expect((await raw.next()).type).to.equal(MessageType.Response);
    const closed = rpc.close();
    const messages = await raw.messagesUntilClose();
    // The cut came at shutdownTimeout from close(), before the goaway that waits for shutdownDelay.
    expect(messages.filter((message) => message.type === MessageType.Goaway)).to.deep.equal([]);
    await closed;
  });

  it("grants a method's own maxTimeout above the server's, and keeps other methods under the server's", async () => {
    const { url } = await start({ maxTimeout: 1_000 });
    const client = cleanup.add(await connect(url), (c) => c.close());
    const feed = createClient(Feed, client);
    expect(await feed.bounded(undefined, { timeout: 60_000 })).to.be.at.most(1_000);
    expect(await feed.deadline(undefined, { timeout: 60_000 })).to.be.above(1_000);
  });

  it('cuts off the calls of a client that half-closed once halfCloseTimeout passes, giving back their slots', async () => {
    const { port } = await start({ halfCloseTimeout: 200, maxCallsInFlight: 4 });
    const raw = cleanup.add(await RawTunnel.open(port), (t) => t.destroy());
    raw.write(encodeMessage({ type: MessageType.Request, id: 1, method: 'Feed.hang', params: undefined, meta: { timeout: 60_000 } }));
    raw.write(encodeMessage({ type: MessageType.Request, id: 3, method: 'Feed.bounded', params: undefined }));
    expect((await raw.next()).type).to.equal(MessageType.Response);
    // FIN: from now on the client can send nothing, not even a cancel; it still reads.
    raw.socket.end();
    await raw.messagesUntilClose();
    // Its slot is free again: a new tunnel holds its fair half of maxCallsInFlight 4, two hanging calls; a third is refused.
    const fresh = cleanup.add(await RawTunnel.open(port), (t) => t.destroy());
    for (const id of [1, 3, 5]) fresh.write(encodeMessage({ type: MessageType.Request, id, method: 'Feed.hang', params: undefined, meta: { timeout: 60_000 } }));
    const refused = await fresh.next();
    expect(refused).to.deep.include({ type: MessageType.Response, id: 5 });
  });

  it('refuses a maxTimeout that is not a whole number of ms', () => {
    expect(() => defineService('Bad', { m: { input: z.void(), output: z.void(), maxTimeout: 1.5 } })).to.throw(/maxTimeout 1.5/);
    expect(() => defineService('Bad', { m: { input: z.void(), output: z.void(), maxTimeout: 0 } })).to.throw(/maxTimeout 0/);
  });
});
