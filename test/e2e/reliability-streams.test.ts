/**
 * The hostile stream cases of the reliability suite (PROTOCOL.md 12.6): a raw socket attacks the real
 * server on its own tunnel while a real client connected before the attack keeps getting answers; a scripted server
 * attacks the real client. Memory rows use generous bounds, timing rows none.
 */
import { expect } from 'chai';
import { connect, createClient, type RpcClient, type TypedClient } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import { MessageType, encodeMessage, type GoawayMessage, type Message, type StreamMessageMessage } from '@tunnelrpc/protocol/internal';
import type { ServerOptions } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { expectRejects, RawTunnel, type ScriptedPeer, ScriptedServer } from '@tunnelrpc/test-kit';
import { expectPrototypeClean } from '../helpers/rpc-error.js';
import { startEchoServer, type EchoServer } from '../helpers/servers.js';

const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype);
const MiB = 1024 * 1024;

const frames = (...messages: Message[]): Buffer => Buffer.concat(messages.map((message) => encodeMessage(message)));
const openTicks = (id: number, credit: number): Message => ({ type: 0, id, method: 'Echo.ticks', params: { n: 1_000_000_000 }, meta: { credit, maxMessageSize: 1024 } });

describe('reliability: hostile stream peers', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  interface Rig {
    server: EchoServer;
    echo: TypedClient<typeof Echo>;
    port: number;
  }

  async function rig(options: ServerOptions = {}): Promise<Rig> {
    const server = await startEchoServer(cleanup, { server: { shutdownTimeout: 200, ...options } });
    const client = cleanup.add(await connect(server.url, { reconnect: false }), (each) => each.close());
    const echo = createClient(Echo, client);
    expect(await echo.add({ a: 1, b: 1 })).to.equal(2);
    return { server, echo, port: server.port! };
  }

  async function raw(r: Rig): Promise<RawTunnel> {
    return cleanup.add(await RawTunnel.open(r.port), (tunnel) => tunnel.destroy());
  }

  async function expectIsolated(r: Rig): Promise<void> {
    expect(await r.echo.add({ a: 20, b: 22 })).to.equal(42);
    const ticks = r.echo.ticks({ n: 3 });
    const seen: number[] = [];
    for await (const tick of ticks) seen.push(tick);
    expect(seen).to.deep.equal([0, 1, 2]);
    expectPrototypeClean(PROTOTYPE_KEYS);
  }

  async function untilGoaway(tunnel: RawTunnel): Promise<GoawayMessage> {
    for (;;) {
      const message = await tunnel.next();
      if (message.type === MessageType.Goaway) return message;
    }
  }

  describe('server side', () => {
    it('credit overrun: a client stream message beyond the grant is goaway PROTOCOL_ERROR', async () => {
      const r = await rig({ maxStreamCredit: 2 });
      const tunnel = await raw(r);
      tunnel.write(frames({ type: 0, id: 1, method: 'Echo.sum', params: null }));
      expect(await tunnel.next()).to.deep.equal({ type: MessageType.Credit, id: 1, n: 2, maxMessageSize: 131072 });
      // The handler reads as they come, and the server grants more as it does; ten in one write still overrun it.
      tunnel.write(frames(...Array.from({ length: 10 }, (_, value): Message => ({ type: MessageType.StreamMessage, id: 1, message: value }))));
      const goaway = await untilGoaway(tunnel);
      expect(goaway.code).to.equal('PROTOCOL_ERROR');
      expect(goaway.message).to.include('beyond the credit');
      await tunnel.closed;
      await expectIsolated(r);
    });

    it('grant flood: 100,000 grants in one write are counted, not queued, and one past 2^31-1 is PROTOCOL_ERROR', async () => {
      const r = await rig();
      const tunnel = await raw(r);
      tunnel.write(frames(openTicks(1, 0)));
      const flood = Buffer.concat(Array.from({ length: 100_000 }, () => encodeMessage({ type: MessageType.Credit, id: 1, n: 1 })));
      const before = process.memoryUsage().heapUsed;
      tunnel.write(flood);
      // The ticks come as the credit allows; the tunnel answers a ping in between.
      tunnel.write(frames({ type: MessageType.Ping, data: 'alive?' }));
      let ticks = 0;
      for (;;) {
        const message = await tunnel.next();
        if (message.type === MessageType.Pong) break;
        expect(message.type).to.equal(MessageType.StreamMessage);
        ticks++;
      }
      expect(process.memoryUsage().heapUsed - before).to.be.below(64 * MiB);
      tunnel.write(frames({ type: MessageType.Credit, id: 1, n: 0x7fff_ffff }, { type: MessageType.Credit, id: 1, n: 0x7fff_ffff }));
      const goaway = await untilGoaway(tunnel);
      expect(goaway.code).to.equal('PROTOCOL_ERROR');
      expect(goaway.message).to.include('exceed 2147483647');
      expect(ticks).to.be.at.most(100_000);
      await expectIsolated(r);
    });

    it('a peer that opens 1,000 streams and never reads costs what its credit allows, and the server stays up', async () => {
      const r = await rig();
      const tunnel = await raw(r);
      tunnel.socket.pause();
      const before = process.memoryUsage().heapUsed;
      tunnel.write(frames(...Array.from({ length: 1000 }, (_, i) => openTicks(i + 1, 64))));
      // Each stream sends its 64 ticks, then waits for credit that never comes: the server holds nothing more.
      for (let i = 0; i < 50; i++) expect(await r.echo.add({ a: i, b: 1 })).to.equal(i + 1);
      const grown = process.memoryUsage().heapUsed - before;
      expect(grown).to.be.below(64 * MiB);
      expect(r.server.rpc.connectionCount).to.equal(2);
      await expectIsolated(r);
    });

    it('a peer that feeds a bidi stream and never reads stops it at the write high-water mark and the budget', async () => {
      const r = await rig();
      const tunnel = await raw(r);
      tunnel.socket.pause();
      tunnel.write(frames({ type: 0, id: 1, method: 'Echo.chat', params: null, meta: { credit: 1_000_000, maxMessageSize: 131072 } }));
      const chunk = 'z'.repeat(100 * 1024);
      const before = process.memoryUsage().heapUsed;
      // Far more than the window the server grants: what it did not grant it would call an overrun, so the
      // attacker sends exactly its first window, which the server reads and echoes until its writes back up.
      tunnel.write(frames(...Array.from({ length: 32 }, (): Message => ({ type: MessageType.StreamMessage, id: 1, message: chunk }))));
      for (let i = 0; i < 50; i++) expect(await r.echo.add({ a: i, b: 1 })).to.equal(i + 1);
      expect(process.memoryUsage().heapUsed - before).to.be.below(64 * MiB);
      await expectIsolated(r);
      tunnel.socket.resume();
      const echoed: string[] = [];
      while (echoed.length < 32) {
        const message = await tunnel.next();
        if (message.type === MessageType.StreamMessage) echoed.push((message as StreamMessageMessage).message as string);
      }
      expect(echoed.every((text) => text === chunk)).to.equal(true);
    });
  });

  describe('client side', () => {
    async function scripted(): Promise<{ peer: ScriptedPeer; client: RpcClient }> {
      const server = cleanup.add(await ScriptedServer.start(), (each) => each.close());
      const connecting = connect(server.url, { reconnect: false, maxStreamCredit: 2 });
      const peer = await server.nextPeer();
      await peer.head;
      await peer.accept();
      return { peer, client: cleanup.add(await connecting, (each) => each.close()) };
    }

    const cases: Array<[string, (peer: ScriptedPeer, id: number) => Promise<void>, string]> = [
      ['sends stream messages beyond the credit the client granted', async (peer, id) => {
        for (let i = 0; i < 3; i++) await peer.send({ type: MessageType.StreamMessage, id, message: i });
      }, 'beyond the credit'],
      ['sends a stream message above the maxMessageSize the client announced', (peer, id) => peer.send({ type: MessageType.StreamMessage, id, message: 'x'.repeat(200_000) }), 'exceeds the announced maxMessageSize'],
      ['sends a half-close', (peer, id) => peer.send({ type: MessageType.HalfClose, id }), 'type 5'],
      ['sends a stream message for an id with no stream', (peer, id) => peer.send({ type: MessageType.StreamMessage, id: id + 100, message: 1 }), 'no open stream'],
      ['grants credit for a direction that carries no messages', (peer, id) => peer.send({ type: MessageType.Credit, id, n: 1, maxMessageSize: 10 }), 'whose client sends no messages'],
    ];
    for (const [what, script, says] of cases) {
      it(`sends goaway PROTOCOL_ERROR and fails the stream UNAVAILABLE when the server ${what}`, async () => {
        const { peer, client } = await scripted();
        const stream = client.stream('Echo.ticks', { n: 5 }, 'serverStream');
        const opening = await peer.nextRequest();
        expect(opening.meta).to.deep.include({ credit: 2, maxMessageSize: 131072 });
        await script(peer, opening.id);
        const goaway = await peer.nextMessage();
        expect(goaway.type).to.equal(MessageType.Goaway);
        expect((goaway as GoawayMessage).code).to.equal('PROTOCOL_ERROR');
        expect((goaway as GoawayMessage).message).to.include(says);
        await expectRejects(stream.result, 'UNAVAILABLE');
        expectPrototypeClean(PROTOTYPE_KEYS);
      });
    }

    it('sends an old server that knows no streams nothing but the opening: no type 4, 5 or 9 (PROTOCOL.md 12.7)', async () => {
      const { peer, client } = await scripted();
      const stream = client.stream('Old.feed', null, 'bidiStream', {}, [1, 2, 3]);
      const opening = await peer.nextRequest();
      await peer.send({ type: MessageType.Response, id: opening.id, error: { code: 'UNIMPLEMENTED', message: 'no such method' }, result: undefined });
      await expectRejects(stream.result, 'UNIMPLEMENTED');
      const after = client.call('Old.next', null);
      const next = await peer.nextMessage();
      expect(next.type, JSON.stringify(next)).to.equal(MessageType.Request);
      await peer.respond((next as { id: number }).id, 'ok');
      expect(await after).to.equal('ok');
    });

    it("sends goaway PROTOCOL_ERROR when the server's first grant lacks maxMessageSize, and no message before a grant", async () => {
      const { peer, client } = await scripted();
      const stream = client.stream('Echo.sum', null, 'clientStream', {}, [1, 2]);
      const opening = await peer.nextRequest();
      expect(opening.meta?.credit).to.equal(undefined);
      await peer.send({ type: MessageType.Credit, id: opening.id, n: 5 });
      const goaway = (await peer.nextMessage()) as GoawayMessage;
      expect(goaway.type, 'the client sent nothing before the grant').to.equal(MessageType.Goaway);
      expect(goaway.message).to.include('lacks maxMessageSize');
      await expectRejects(stream.result, 'UNAVAILABLE');
    });
  });
});
