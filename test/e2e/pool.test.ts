/**
 * The client pool in one process: several URLs, a host name with several addresses, a goaway that moves new calls
 * to the other endpoints while the calls in flight finish, and the INVALID_ARGUMENT answers JavaScript callers get
 * for a bad URL list or pool option. Real servers on 127.0.0.x, real sockets; counts, not times.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { expect } from 'chai';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { connect, createRpcClient, type ClientOptions, type RpcClient } from '@tunnelrpc/client';
import { RpcError, defineService } from '@tunnelrpc/protocol';
import { RpcServer } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { Counter } from '../helpers/servers.js';
import { expectRejects } from '@tunnelrpc/test-kit';

const Tag = defineService('Tag', {
  name: { input: z.void(), output: z.string(), idempotent: true },
  hold: { input: z.strictObject({ ms: z.number().int().min(0).max(10_000) }), output: z.string() },
});

interface TaggedServer {
  readonly name: string;
  readonly rpc: RpcServer;
  readonly url: string;
  readonly port: number;
  /** Handlers of hold that have started. */
  readonly holds: Counter;
}

describe('client pool', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function serve(name: string, port = 0, host = '127.0.0.1'): Promise<TaggedServer> {
    const holds = new Counter();
    const rpc = new RpcServer({ shutdownTimeout: 10_000 }).register(Tag, {
      name: () => name,
      hold: async ({ ms }) => {
        holds.increment();
        await delay(ms);
        return name;
      },
    });
    cleanup.defer(() => rpc.close());
    const address = await rpc.listen(port, host);
    return { name, rpc, url: address.url, port: Number(new URL(address.url).port), holds };
  }

  async function open(urls: string | string[], options: ClientOptions = {}): Promise<RpcClient> {
    return cleanup.add(await connect(urls, options), (client) => client.close());
  }

  async function names(client: RpcClient, calls: number): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    const answers = await Promise.all(Array.from({ length: calls }, () => client.call('Tag.name', undefined, { idempotent: true })));
    for (const answer of answers) counts.set(answer as string, (counts.get(answer as string) ?? 0) + 1);
    return counts;
  }

  it('spreads calls over every URL it is given, and says so in endpoints', async () => {
    const servers = await Promise.all(['a', 'b', 'c'].map((name) => serve(name)));
    const client = await open(servers.map((server) => server.url));
    while (client.endpoints.some((endpoint) => endpoint.state !== 'ready')) await delay(5);
    const counts = await names(client, 300);
    expect([...counts.keys()].sort()).to.deep.equal(['a', 'b', 'c']);
    const endpoints = client.endpoints;
    expect(Object.isFrozen(endpoints) && endpoints.every((endpoint) => Object.isFrozen(endpoint))).to.equal(true);
    expect(endpoints.map((endpoint) => endpoint.url)).to.deep.equal(servers.map((server) => server.url));
    expect(endpoints.reduce((sum, endpoint) => sum + endpoint.sent, 0)).to.equal(300);
    expect(endpoints.map((endpoint) => endpoint.sent)).to.deep.equal(servers.map((server) => counts.get(server.name)));
    expect(client.target).to.equal(servers.map((server) => server.url).join(', '));
  });

  it('keeps an endpoint per address of a host name (A records from the lookup option) and calls each', async () => {
    const first = await serve('one');
    const second = await serve('two', first.port, '127.0.0.2');
    const asked: string[] = [];
    const lookup = (hostname: string): Array<{ address: string; family: number }> => {
      asked.push(hostname);
      return [{ address: '127.0.0.1', family: 4 }, { address: '127.0.0.2', family: 4 }];
    };
    const client = await open(`http://fleet.test:${first.port}/_rpc`, { lookup });
    while (client.endpoints.length < 2 || client.endpoints.some((endpoint) => endpoint.state !== 'ready')) await delay(5);
    expect(asked).to.deep.equal(['fleet.test']);
    expect(client.endpoints.map((endpoint) => endpoint.address)).to.deep.equal(['127.0.0.1', '127.0.0.2']);
    expect([...(await names(client, 200)).keys()].sort()).to.deep.equal(['one', 'two']);
    void second;
  });

  it('resolves the host name again after an endpoint fails: a new address gets calls, one that left the answer is closed', async () => {
    const first = await serve('one');
    const second = await serve('two', first.port, '127.0.0.2');
    let answer = ['127.0.0.1'];
    let lookups = 0;
    const lookup = (): Array<{ address: string }> => {
      lookups++;
      return answer.map((address) => ({ address }));
    };
    const client = await open(`http://fleet.test:${first.port}/_rpc`, { lookup, minResolveInterval: 0, minReconnectDelay: 10, maxReconnectDelay: 50 });
    expect(await client.call('Tag.name')).to.equal('one');
    // The record moves to the second server, and the first one goes away: its failed redial asks DNS again.
    answer = ['127.0.0.2'];
    await first.rpc.close();
    while (client.endpoints.length !== 1 || client.endpoints[0]!.address !== '127.0.0.2' || client.endpoints[0]!.state !== 'ready') await delay(5);
    expect([...(await names(client, 50)).keys()]).to.deep.equal(['two']);
    expect(lookups).to.be.at.least(2);
    void second;
  });

  it('closes, failing waiting calls, while a lookup never answers', async () => {
    const client = createRpcClient('http://stuck.test:8080/_rpc', { lookup: () => new Promise(() => {}) });
    const waiting = client.call('Tag.name');
    await client.close();
    await expectRejects(waiting, 'UNAVAILABLE', 'close() was called');
    expect(await client.closed).to.equal(undefined);
  });

  it('rejects connect with UNAVAILABLE when a host name does not resolve, naming the URL', async () => {
    const lookup = (): never => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.test'), { code: 'ENOTFOUND' });
    };
    const error = await expectRejects(connect('http://nowhere.test:8080/_rpc', { lookup }), 'UNAVAILABLE', 'cannot connect to http://nowhere.test:8080/_rpc: ENOTFOUND (the host name does not resolve)');
    expect(error.data).to.deep.equal({ errno: 'ENOTFOUND' });
  });

  it('moves new calls to the other endpoints on a goaway while the calls in flight there finish', async () => {
    const [a, b] = await Promise.all([serve('a'), serve('b')]);
    const client = await open([a.url, b.url], { minReconnectDelay: 10_000, maxReconnectDelay: 10_000 });
    while (client.endpoints.some((endpoint) => endpoint.state !== 'ready')) await delay(5);
    const holding = Array.from({ length: 20 }, () => client.call('Tag.hold', { ms: 300 }));
    const inFlightOnA = client.endpoints[0]!.outstanding;
    // Every call sent to a is running there before the goaway, so none of them is refused by its lastId.
    await a.holds.reach(inFlightOnA);
    const closing = a.rpc.close();
    while (client.endpoints[0]!.state === 'ready') await delay(5);
    const after = await names(client, 100);
    const held = await Promise.all(holding);
    await closing;
    expect(after).to.deep.equal(new Map([['b', 100]]));
    // Every call that was running on a finished there, with its result.
    expect(held.filter((name) => name === 'a').length).to.equal(inFlightOnA);
    expect(held.length).to.equal(20);
  });

  it('routes around an endpoint that refuses the CONNECT (401), and fails waiting calls with that code only when every endpoint refuses', async () => {
    const refuse = (): never => {
      throw new RpcError('UNAUTHENTICATED', 'no token');
    };
    const locked = new RpcServer({ authorize: refuse, logger: () => {} });
    cleanup.defer(() => locked.close());
    const lockedUrl = (await locked.listen(0)).url;
    const open2 = await serve('open');
    const client = await open([lockedUrl, open2.url], { minReconnectDelay: 10, maxReconnectDelay: 50 });
    expect([...(await names(client, 50)).keys()]).to.deep.equal(['open']);
    expect(client.endpoints[0]!.ejections).to.be.at.least(1);
    expect(client.endpoints[0]!.tunnels).to.equal(0);
    expect(client.endpoints[0]!.lastError?.code).to.equal('UNAUTHENTICATED');

    const other = new RpcServer({ authorize: refuse, logger: () => {} });
    cleanup.defer(() => other.close());
    const waiting = createRpcClient([lockedUrl, (await other.listen(0)).url]);
    cleanup.defer(() => waiting.close());
    await expectRejects(waiting.call('Tag.name'), 'UNAUTHENTICATED', 'no token');
  });

  it('probes an endpoint that does not answer with one dial at a time, not tunnelsPerEndpoint at once (no reconnect storm)', async () => {
    // Accepts TCP and never answers the CONNECT: every dial ends at handshakeTimeout.
    let open = 0;
    let most = 0;
    let accepted = 0;
    const reached = new Counter();
    const silent = createServer((socket) => {
      accepted++;
      most = Math.max(most, ++open);
      socket.on('error', () => {});
      socket.once('close', () => open--);
      // Read (and drop) the CONNECT head, so the client's close reaches this side as 'end' then 'close'.
      socket.resume();
      reached.increment();
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    cleanup.defer(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const client = createRpcClient(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/_rpc`, { tunnelsPerEndpoint: 4, handshakeTimeout: 50, minReconnectDelay: 20, maxReconnectDelay: 40 });
    cleanup.defer(() => client.close());
    await reached.reach(5);
    expect(most).to.equal(1);
    expect(client.endpoints[0]!.failures).to.be.at.least(4);
    expect(accepted).to.be.at.least(5);
  });

  it('rejects connect naming each endpoint when none can be reached', async () => {
    const error = await expectRejects(connect(['http://127.0.0.1:1/_rpc', 'http://127.0.0.1:2/_rpc'], { reconnect: false }), 'UNAVAILABLE', 'none of 2 endpoints could be reached');
    expect(error.message).to.include('http://127.0.0.1:1/_rpc').and.include('http://127.0.0.1:2/_rpc');
  });

  describe('bad arguments from JavaScript callers', () => {
    const cases: Array<[string, unknown, ClientOptions | undefined, string]> = [
      ['a number for the URL', 42, undefined, 'connect() needs a URL or a list of URLs; got number'],
      ['null for the URL', null, undefined, 'got null'],
      ['an empty list', [], undefined, 'empty list of URLs'],
      ['a list holding a number', ['http://127.0.0.1:1/_rpc', 7], undefined, 'URL 1 of the list given to connect() is a number'],
      ['the same URL twice', ['http://127.0.0.1:1/_rpc', 'http://127.0.0.1:1/_rpc'], undefined, 'got http://127.0.0.1:1/_rpc twice'],
      ['a list holding a bad URL', ['http://127.0.0.1:1/_rpc', 'ftp://x/'], undefined, 'the scheme ftp: is not supported'],
      ['tunnelsPerEndpoint 0', 'http://127.0.0.1:1/_rpc', { tunnelsPerEndpoint: 0 }, 'tunnelsPerEndpoint'],
      ['tunnelsPerEndpoint 257', 'http://127.0.0.1:1/_rpc', { tunnelsPerEndpoint: 257 }, 'tunnelsPerEndpoint'],
      ['tunnelsPerEndpoint 1.5', 'http://127.0.0.1:1/_rpc', { tunnelsPerEndpoint: 1.5 }, 'tunnelsPerEndpoint'],
      ['resolveInterval -1', 'http://127.0.0.1:1/_rpc', { resolveInterval: -1 }, 'resolveInterval'],
      ['minResolveInterval as a string', 'http://127.0.0.1:1/_rpc', { minResolveInterval: '5' as unknown as number }, 'minResolveInterval'],
      ['lookup that is not a function', 'http://127.0.0.1:1/_rpc', { lookup: 'dns' as never }, 'option lookup must be a function'],
    ];
    for (const [name, urls, options, message] of cases) {
      it(`refuses ${name} with INVALID_ARGUMENT, from connect() and createRpcClient()`, async () => {
        await expectRejects(connect(urls as string, options), 'INVALID_ARGUMENT', message);
        await expectRejects(Promise.resolve().then(() => createRpcClient(urls as string, options)), 'INVALID_ARGUMENT', message);
      });
    }

    it('takes a list of one URL (it threw TypeError: url.startsWith is not a function)', async () => {
      const server = await serve('only');
      const client = await open([server.url]);
      expect(await client.call('Tag.name')).to.equal('only');
    });
  });
});
