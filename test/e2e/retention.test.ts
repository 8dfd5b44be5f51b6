/**
 * Nothing settled keeps anything alive. A settled call's record may outlive it (a scavenge promoted it, an
 * interceptor kept its context, a deadline group or an attempt watch still lists it, a stream stays open after the
 * message went by), and whatever it still points to lives on with it: 64 KiB results kept that way made the client
 * run a mark-compact for nearly every scavenge. Each case forces scavenges while calls are in flight, lets the
 * calls settle while other calls, contexts and streams stay alive, then runs a full collection and checks through
 * WeakRefs that every result and message is gone.
 */
import { expect } from 'chai';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { z } from 'zod';
import { connect, createClient, type Interceptor as ClientInterceptor, type RpcCall } from '@tunnelrpc/client';
import { defineService } from '@tunnelrpc/protocol';
import { RpcServer, type Interceptor as ServerInterceptor } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { listenRpc } from '../helpers/servers.js';

// gc() without --expose-gc on mocha's command line: the flag set at run time exposes it to a fresh context.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options?: { type?: 'minor' | 'major'; execution?: 'sync' }) => void;

const Big = defineService('Big', {
  /**
   * A fresh 64 KiB string in a map: each result is its own object, so each WeakRef watches one result (a string
   * cannot be a WeakRef's target). unknown() keeps the decoded object as it is, so the caller holds what was decoded.
   */
  fetch: { input: z.object({ seed: z.number() }), output: z.unknown(), idempotent: true },
  /** Answers when the test releases it: keeps calls in flight (their deadline group and tunnel slots alive). */
  hold: { input: z.void(), output: z.number() },
  /** A stream of fresh 64 KiB strings that stays open until the client cancels it. */
  feed: { kind: 'serverStream', input: z.object({ n: z.number().int() }), serverMessage: z.unknown(), output: z.number() },
});

const SIZE = 64 * 1024;
const CALLS = 32;

function fresh(seed: number): { blob: string } {
  return { blob: String.fromCharCode(97 + (seed % 26)).repeat(SIZE - 8) + String(seed).padStart(8, '0') };
}

// Collects in a macrotask of its own: a WeakRef's target stays alive until the job that made or read it ends.
const collectInNextTurn = (): Promise<void> =>
  new Promise((resolve) =>
    setImmediate(() => {
      gc();
      setImmediate(resolve);
    }),
  );

async function collectedCount(refs: readonly WeakRef<object>[]): Promise<number> {
  await collectInNextTurn();
  return refs.filter((ref) => ref.deref() === undefined).length;
}

async function* produce(n: number, sent: WeakRef<object>[]): AsyncGenerator<{ blob: string }, void, undefined> {
  for (let i = 0; i < n; i++) {
    const message = fresh(i);
    sent.push(new WeakRef(message));
    yield message;
  }
}

// Takes n messages, forcing scavenges while the stream is busy; returns a WeakRef to each. Its own function, so
// that no local of the test's frame still holds the last message.
async function take(iterator: AsyncIterator<unknown>, n: number): Promise<WeakRef<object>[]> {
  const taken: WeakRef<object>[] = [];
  for (let i = 0; i < n; i++) {
    const next = await iterator.next();
    expect(next.done).to.equal(false);
    const message = next.value as { blob: string };
    expect(message.blob.length).to.equal(SIZE);
    taken.push(new WeakRef(message));
    if (i === 2) {
      gc({ type: 'minor' });
      gc({ type: 'minor' });
    }
  }
  return taken;
}

describe('Settled calls keep nothing alive (WeakRef after a full collection)', function () {
  this.timeout(60_000);
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('sees objects nothing holds collected (the check itself works)', async () => {
    const refs = Array.from({ length: CALLS }, (_, seed) => new WeakRef(fresh(seed)));
    expect(await collectedCount(refs)).to.equal(CALLS);
  });

  it('lets go of each result on both sides while contexts, deadline groups, attempt watches and held calls live on', async () => {
    const serverResults: WeakRef<object>[] = [];
    const serverContexts: unknown[] = [];
    const clientContexts: RpcCall[] = [];
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const keepServerContexts: ServerInterceptor = (next) => (call) => {
      serverContexts.push(call);
      return next(call);
    };
    const rpc = new RpcServer({ interceptors: [keepServerContexts] }).register(Big, {
      fetch: ({ seed }) => {
        const result = fresh(seed);
        serverResults.push(new WeakRef(result));
        return result;
      },
      hold: async () => {
        await released;
        return 1;
      },
      feed: async function* () {
        yield fresh(0);
        return 0;
      },
    });
    const { url } = await listenRpc(cleanup, rpc);
    // Like a tracer batching spans: every call context is kept past its call.
    const keepClientContexts: ClientInterceptor = (next) => (call) => {
      clientContexts.push(call);
      return next(call);
    };
    const client = await connect(url, { interceptors: [keepClientContexts], attemptTimeout: 30_000 });
    cleanup.defer(() => client.close());
    const big = createClient(Big, client);

    // Each fetch is followed at once by a held call, so that they share a deadline group (same millisecond, same
    // timeout) which outlives every fetch.
    const held: Promise<number>[] = [];
    cleanup.defer(async () => {
      release();
      await Promise.allSettled(held);
    });
    const clientResults: WeakRef<object>[] = [];
    const pending: Promise<void>[] = [];
    for (let seed = 0; seed < CALLS; seed++) {
      pending.push(
        big.fetch({ seed }, { timeout: 30_000 }).then((value) => {
          const result = value as { blob: string };
          expect(result.blob.length).to.equal(SIZE);
          clientResults.push(new WeakRef(result));
        }),
      );
      held.push(big.hold(undefined, { timeout: 30_000 }));
    }
    // The scavenges a busy client runs while these calls wait: their records and promises get promoted.
    gc({ type: 'minor' });
    gc({ type: 'minor' });
    await Promise.all(pending);

    expect(clientResults).to.have.length(CALLS);
    expect(serverResults).to.have.length(CALLS);
    expect(clientContexts.length).to.be.at.least(CALLS);
    expect(serverContexts.length).to.be.at.least(CALLS);
    expect(await collectedCount(serverResults), 'server results collected').to.equal(CALLS);
    expect(await collectedCount(clientResults), 'client results collected').to.equal(CALLS);
    release();
    expect(await Promise.all(held)).to.deep.equal(Array(CALLS).fill(1));
  });

  it('lets go of each stream message once it is taken, while the stream stays open', async () => {
    const sent: WeakRef<object>[] = [];
    const rpc = new RpcServer().register(Big, {
      fetch: ({ seed }) => fresh(seed),
      hold: () => 1,
      feed: async function* ({ n }, ctx) {
        // The messages come from a generator of their own that has ended before this one waits: a suspended
        // generator's frame may keep its last local value, which would be the test holding it, not the server.
        yield* produce(n, sent);
        // Open until the client cancels: the stream's records live on.
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        return n;
      },
    });
    const { url } = await listenRpc(cleanup, rpc);
    const client = await connect(url);
    cleanup.defer(() => client.close());
    const big = createClient(Big, client);
    const n = 24;
    const abort = new AbortController();
    const stream = big.feed({ n }, { signal: abort.signal, timeout: 30_000 });
    stream.result.catch(() => undefined);
    const taken = await take(stream[Symbol.asyncIterator](), n);
    expect(sent).to.have.length(n);
    expect(await collectedCount(sent), 'messages the server sent').to.equal(n);
    expect(await collectedCount(taken), 'messages the client took').to.equal(n);
    abort.abort();
  });
});
