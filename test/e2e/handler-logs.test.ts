/**
 * What the server logs when a handler throws: "handler threw; the caller got INTERNAL" only when the caller did get
 * INTERNAL. A handler that obeyed ctx.signal after the caller had gone (a cancel, a break out of a stream) throws
 * its AbortError; the log says the call had ended with CANCELLED and that the throw is ignored, at debug level.
 */
import { expect } from 'chai';
import { EventEmitter, once } from 'node:events';
import { z } from 'zod';
import { connect, createClient } from '@tunnelrpc/client';
import { defineService } from '@tunnelrpc/protocol';
import { RpcServer, type LogEntry } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { expectRejects } from '@tunnelrpc/test-kit';

const Waiter = defineService('Waiter', {
  wait: { input: z.void(), output: z.null() },
  watch: { kind: 'serverStream', input: z.void(), serverMessage: z.number(), output: z.null() },
  crash: { input: z.void(), output: z.null() },
});

describe('handler throws in the server log', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function start() {
    const entries: LogEntry[] = [];
    const waiters: Array<{ test: (entry: LogEntry) => boolean; resolve: (entry: LogEntry) => void }> = [];
    const started = new EventEmitter();
    let markFinished!: () => void;
    const finished = new Promise<void>((resolve) => (markFinished = resolve));
    const never = new EventEmitter();
    const rpc = new RpcServer({
      logger: (entry) => {
        entries.push(entry);
        for (const waiter of waiters.filter((each) => each.test(entry))) waiter.resolve(entry);
      },
    }).register(Waiter, {
      wait: async (_input, ctx) => {
        started.emit('wait');
        await once(never, 'tick', { signal: ctx.signal });
        return null;
      },
      watch: async function* (_input, ctx) {
        try {
          yield 1;
          for await (const [tick] of EventEmitter.on(never, 'tick', { signal: ctx.signal })) yield tick as number;
          return null;
        } finally {
          markFinished();
        }
      },
      crash: () => {
        throw new Error('boom');
      },
    });
    cleanup.defer(() => rpc.close());
    const { url } = await rpc.listen(0);
    const client = createClient(Waiter, cleanup.add(await connect(url, { reconnect: false }), (each) => each.close()));
    const logged = (test: (entry: LogEntry) => boolean): Promise<LogEntry> => new Promise((resolve) => waiters.push({ test, resolve }));
    return { client, entries, started, logged, finished };
  }

  const ENDED = "the call had ended with CANCELLED; the handler's throw after that is ignored";

  it('logs a cancelled call whose handler rejects with an AbortError as ended with CANCELLED, at debug', async () => {
    const { client, entries, started, logged } = await start();
    const controller = new AbortController();
    const running = client.wait(undefined, { signal: controller.signal });
    await once(started, 'wait');
    controller.abort();
    await expectRejects(running, 'CANCELLED');
    // The first entry about this method is the one for the handler's throw.
    const entry = await logged((each) => each.method === 'Waiter.wait');
    expect(entry).to.deep.include({ level: 'debug', message: ENDED, code: 'CANCELLED' });
    expect((entry.error as Error).name).to.equal('AbortError');
    expect(entries.filter((each) => each.message.includes('the caller got INTERNAL'))).to.deep.equal([]);
  });

  it('never logs a stream the client broke out of, whose handler threw from events.on, as INTERNAL', async () => {
    const { client, entries, logged, finished } = await start();
    const watch = client.watch();
    for await (const _tick of watch) break;
    await expectRejects(watch.result, 'CANCELLED');
    await finished;
    // The handler's throw is handled in promise callbacks; a later call over the socket is logged after them.
    const crashLogged = logged((each) => each.method === 'Waiter.crash');
    await expectRejects(client.crash(), 'INTERNAL');
    await crashLogged;
    const about = entries.filter((each) => each.method === 'Waiter.watch');
    expect(about.filter((each) => each.message.includes('the caller got INTERNAL'))).to.deep.equal([]);
    for (const entry of about) expect(entry).to.deep.include({ level: 'debug', message: ENDED, code: 'CANCELLED' });
  });

  it('still logs a handler that throws while its call runs as INTERNAL, at error', async () => {
    const { client, logged } = await start();
    const gotInternal = logged((entry) => entry.message === 'handler threw; the caller got INTERNAL');
    await expectRejects(client.crash(), 'INTERNAL');
    expect(await gotInternal).to.deep.include({ level: 'error', method: 'Waiter.crash', code: 'INTERNAL' });
  });
});
