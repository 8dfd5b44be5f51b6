/**
 * Streams hold what calls hold: a stream message received and not yet taken by its handler counts toward the same
 * server-wide values and bytes caps as a running call's params, shared out fairly, and the top of every cap is kept
 * for peers that hold nothing yet; answers queued for peers that do not read are bounded across connections. Raw
 * tunnels play the attackers; a bystander must be served.
 */
import { expect } from 'chai';
import { z } from 'zod';
import { connect, createClient } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import { defineService } from '@tunnelrpc/protocol';
import { MessageType, encodeMessage, type CreditMessage, type Message, type ResponseMessage } from '@tunnelrpc/protocol/internal';
import type { ServerOptions } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { rawSocket, RawTunnel } from '@tunnelrpc/test-kit';
import { startEchoServer, type EchoServer } from '../helpers/servers.js';

const cleanup = new Cleanup();

/** Late.big answers 1 MiB after `ms`: answers that arrive together, after the peer stopped reading. */
const Late = defineService('Late', { big: { input: z.object({ ms: z.number().int() }), output: z.instanceof(Uint8Array) } });

/** Sink.hold is a client stream whose handler never reads: what arrives stays held until the stream ends. */
const Sink = defineService('Sink', {
  hold: { kind: 'clientStream', input: z.void(), clientMessage: z.unknown(), output: z.void() },
});

async function server(options: ServerOptions): Promise<EchoServer> {
  const started = await startEchoServer(cleanup, { server: { logger: () => {}, ...options } });
  started.rpc.register(Sink, {
    hold: (_params, _messages, ctx) =>
      new Promise<void>((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true })),
  });
  return started;
}

async function tunnel(port: number, localAddress?: string): Promise<RawTunnel> {
  return cleanup.add(await RawTunnel.open(port, undefined, localAddress), (raw) => raw.destroy());
}

function send(raw: RawTunnel, message: Message): void {
  raw.write(encodeMessage(message));
}

async function nextOf(raw: RawTunnel, type: number): Promise<Message> {
  for (;;) {
    const message = await raw.next();
    if (message.type === type) return message;
  }
}

describe('Stream budget: held messages count in decoded terms, and a newcomer always gets a slot', function () {
  this.timeout(60_000);
  afterEach(() => cleanup.run());

  it('ends the streams of a peer whose unread messages pass its share of maxItemsInFlight; others are served', async () => {
    const { port: maybePort, url } = await server({ maxItemsInFlight: 200_000 });
    const port = maybePort!;
    const attacker = await tunnel(port);
    // Four client streams whose handler never reads, each granted the default window of 32 messages.
    const ids = [1, 3, 5, 7];
    for (const id of ids) send(attacker, { type: MessageType.Request, id, method: 'Sink.hold', params: undefined, meta: { timeout: 60_000 } });
    const grants = new Map<number, number>();
    while (grants.size < ids.length) {
      const grant = (await nextOf(attacker, MessageType.Credit)) as CreditMessage;
      grants.set(grant.id, grant.n);
    }
    // Each message is 10,000 empty maps: 10 KB on the wire, about 60 times that once decoded.
    const heavy = Array.from({ length: 10_000 }, () => ({}));
    for (const id of ids) for (let i = 0; i < grants.get(id)!; i++) send(attacker, { type: MessageType.StreamMessage, id, message: heavy });
    const ended = new Map<number, ResponseMessage>();
    while (ended.size < ids.length) {
      const response = (await nextOf(attacker, MessageType.Response)) as ResponseMessage;
      ended.set(response.id, response);
    }
    for (const response of ended.values()) {
      expect(response.error?.code, JSON.stringify(response.error)).to.equal('RESOURCE_EXHAUSTED');
      expect(response.error?.message).to.include('unread stream messages');
      expect(response.error?.message).to.include('maxItemsInFlight');
    }
    // The tunnel itself was not closed: the peer broke no rule, it only held too much.
    send(attacker, { type: MessageType.Request, id: 9, method: 'Echo.add', params: { a: 1, b: 2 } });
    expect(((await nextOf(attacker, MessageType.Response)) as ResponseMessage).result).to.equal(3);
    // Everything held was given back: a bystander's stream of the same weight runs to its end.
    const bystander = cleanup.add(await connect(url), (client) => client.close());
    const echo = createClient(Echo, bystander);
    expect(await echo.sum(undefined, Array.from({ length: 100 }, (_, i) => i))).to.equal(4950);
  });

  it('bounds unread stream bytes across connections by maxBytesInFlight', async () => {
    const { port: maybePort } = await server({ maxBytesInFlight: 4 * 1024 * 1024 });
    const port = maybePort!;
    const chunk = Buffer.alloc(100 * 1024, 7);
    let refused = 0;
    let accepted = 0;
    // 8 connections from one address, one stream each, each sending its whole window (32 x 100 KiB = 3.2 MiB).
    const tunnels = await Promise.all(Array.from({ length: 8 }, () => tunnel(port)));
    for (const raw of tunnels) send(raw, { type: MessageType.Request, id: 1, method: 'Sink.hold', params: undefined, meta: { timeout: 60_000 } });
    for (const raw of tunnels) {
      const grant = (await nextOf(raw, MessageType.Credit)) as CreditMessage;
      for (let i = 0; i < grant.n; i++) send(raw, { type: MessageType.StreamMessage, id: 1, message: chunk });
    }
    for (const raw of tunnels) {
      // Either the stream is ended for holding too much, or it is still open holding what it sent.
      send(raw, { type: MessageType.Ping, data: 1 });
      const message = await Promise.race([nextOf(raw, MessageType.Response), nextOf(raw, MessageType.Pong)]);
      if (message.type === MessageType.Response) {
        expect((message as ResponseMessage).error?.code).to.equal('RESOURCE_EXHAUSTED');
        refused++;
      } else {
        accepted++;
      }
    }
    // 8 x 3.2 MiB were sent against a 4 MiB cap: at most one stream can still be holding its whole window.
    expect(refused, `refused ${refused}, open ${accepted}`).to.be.at.least(7);
  });

  it('serves a newcomer from a fourth address while three addresses hold every stream slot they can get', async () => {
    const { port: maybePort } = await server({ maxCallsInFlight: 40 });
    const port = maybePort!;
    const admittedBy = new Map<string, number>();
    for (const address of ['127.0.0.3', '127.0.0.4', '127.0.0.5']) {
      const raw = await tunnel(port, address);
      const count = 40;
      for (let i = 0; i < count; i++) {
        send(raw, { type: MessageType.Request, id: 2 * i + 1, method: 'Echo.ticks', params: { n: 1_000_000, ms: 60_000 }, meta: { timeout: 60_000, credit: 1, maxMessageSize: 1024 } });
      }
      // Each opening is answered: a first tick (the stream holds a slot) or a refusal.
      let admitted = 0;
      for (let i = 0; i < count; i++) {
        const message = await raw.next();
        if (message.type === MessageType.StreamMessage) admitted++;
        else expect((message as ResponseMessage).error?.code, JSON.stringify(message)).to.equal('RESOURCE_EXHAUSTED');
      }
      admittedBy.set(address, admitted);
    }
    const held = [...admittedBy.values()].reduce((sum, n) => sum + n, 0);
    expect(held, JSON.stringify([...admittedBy])).to.be.below(40);
    // A peer from 127.0.0.2 that holds nothing gets its stream, and then its call.
    const newcomer = await tunnel(port, '127.0.0.2');
    send(newcomer, { type: MessageType.Request, id: 1, method: 'Echo.ticks', params: { n: 2 }, meta: { credit: 2, maxMessageSize: 1024 } });
    expect(await newcomer.next()).to.deep.include({ type: MessageType.StreamMessage, id: 1, message: 0 });
    expect(await newcomer.next()).to.deep.include({ type: MessageType.StreamMessage, id: 1, message: 1 });
    expect(((await nextOf(newcomer, MessageType.Response)) as ResponseMessage).result).to.deep.equal({ sent: 2 });
    send(newcomer, { type: MessageType.Request, id: 3, method: 'Echo.add', params: { a: 40, b: 2 } });
    expect(((await nextOf(newcomer, MessageType.Response)) as ResponseMessage).result).to.equal(42);
  });
});

describe('Unsent answers across connections', function () {
  this.timeout(60_000);
  afterEach(() => cleanup.run());

  it('cuts off peers that do not read once their unread answers pass maxUnsentBytes, and serves a bystander', async () => {
    const closes: string[] = [];
    const { port, url, rpc } = await startEchoServer(cleanup, {
      server: { logger: () => {}, maxUnsentBytes: 8 * 1024 * 1024, maxWriteBuffer: 64 * 1024 * 1024, listeners: [(event) => void (event.type === 'close' && closes.push(event.reason))] },
    });
    const answer = Buffer.alloc(1024 * 1024, 1);
    rpc.register(Late, { big: async ({ ms }) => new Promise((resolve) => setTimeout(() => resolve(answer), ms)) });
    // Six peers each ask for 12 answers of 1 MiB that all come at once, later, and never read them.
    const hogs = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const socket = await rawSocket(port!);
        socket.on('error', () => undefined);
        const requests = Array.from({ length: 12 }, (_, i) => encodeMessage({ type: MessageType.Request, id: i + 1, method: 'Late.big', params: { ms: 200 } }));
        socket.write(Buffer.concat([Buffer.from(`CONNECT /_rpc HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`, 'latin1'), ...requests]));
        socket.pause();
        cleanup.defer(() => socket.destroy());
        return socket;
      }),
    );
    // Some of them are cut off for it; the server holds no more than twice the cap meanwhile.
    while (!closes.some((reason) => reason.includes('maxUnsentBytes'))) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(hogs.length).to.equal(6);
    const bystander = cleanup.add(await connect(url), (client) => client.close());
    expect(await createClient(Echo, bystander).add({ a: 1, b: 2 })).to.equal(3);
  });
});
