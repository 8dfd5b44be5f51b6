/**
 * createPrometheus over real tunnels: a known mix of calls, then /metrics scraped over HTTP from the same port and
 * parsed, with exact counts per method and code on both sides.
 */
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { z } from 'zod';
import { connect, createClient, type RpcClient } from '@tunnelrpc/client';
import { ERROR_CODES, RpcError, defineService } from '@tunnelrpc/protocol';
import { RpcServer } from '@tunnelrpc/server';
import { OTHER_METHOD, RPC_DURATION_BUCKETS, createPrometheus, type TunnelMetrics } from '@tunnelrpc/prometheus';
import { httpGet, type HttpPage } from '@tunnelrpc/test-kit';

const Calc = defineService('Calc', {
  add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
  fail: { input: z.object({ code: z.enum(ERROR_CODES) }), output: z.void() },
  crash: { input: z.void(), output: z.void() },
  ping: { input: z.unknown(), output: z.void(), notification: true },
  pings: { input: z.void(), output: z.number() },
  count: { kind: 'serverStream', input: z.object({ n: z.number().int() }), serverMessage: z.number(), output: z.number() },
  total: { kind: 'clientStream', input: z.void(), clientMessage: z.number(), output: z.number() },
  echo: { kind: 'bidiStream', input: z.void(), clientMessage: z.string(), serverMessage: z.string(), output: z.void() },
});

/** Sample is one line of the text exposition: name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** parseExposition reads the Prometheus text format (version 0.0.4) into samples; comments are skipped. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

function scrape(port: number, path = '/metrics'): Promise<HttpPage> {
  return httpGet(`http://127.0.0.1:${port}${path}`);
}

describe('createPrometheus', () => {
  let http: Server;
  let rpc: RpcServer;
  let client: RpcClient;
  let metrics: TunnelMetrics;
  let port: number;

  beforeEach(async () => {
    metrics = createPrometheus({ services: [Calc] });
    let pings = 0;
    rpc = new RpcServer({ observers: [metrics.serverObserver], listeners: [metrics.serverListener], logger: () => {} }).register(Calc, {
      add: ({ a, b }) => a + b,
      fail: ({ code }) => {
        throw new RpcError(code, `failing with ${code} as asked`);
      },
      crash: () => {
        throw new Error('secret');
      },
      ping: () => {
        pings++;
      },
      pings: () => pings,
      count: async function* ({ n }) {
        for (let i = 0; i < n; i++) yield i;
        return n;
      },
      total: async (_params, numbers) => {
        let sum = 0;
        for await (const number of numbers) sum += number;
        if (sum > 100) throw new RpcError('OUT_OF_RANGE', 'too much');
        return sum;
      },
      echo: async function* (_params, messages) {
        for await (const message of messages) yield message;
      },
    });
    http = createServer((_req, res) => res.end('app route\n'));
    rpc.attach(http);
    metrics.serve(http);
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    port = (http.address() as AddressInfo).port;
    client = await connect(`http://127.0.0.1:${port}/_rpc`, { observers: [metrics.clientObserver], listeners: [metrics.clientListener] });
  });

  afterEach(async () => {
    await client.close();
    await rpc.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });

  it('counts streams by their type, code and messages both ways, exactly, on both sides', async () => {
    const calc = createClient(Calc, client);
    for (const n of [3, 0]) {
      const count = calc.count({ n });
      for await (const _ of count) void _;
      expect(await count.result).to.equal(n);
    }
    expect(await calc.total(undefined, [1, 2, 3, 4])).to.equal(10);
    await calc.total(undefined, [99, 2]).catch(() => undefined);
    const echo = calc.echo(undefined, ['a', 'b']);
    for await (const _ of echo) void _;
    await echo.result;
    const samples = parseExposition((await scrape(port)).body);
    const value = (name: string, labels: Record<string, string>): number | undefined =>
      samples.find((sample) => sample.name === name && Object.entries(labels).every(([k, v]) => sample.labels[k] === v) && Object.keys(sample.labels).length === Object.keys(labels).length)?.value;
    const series = (method: string, type: string): Record<string, string> => ({ service: 'Calc', method, type });
    for (const [side, out, into] of [['server', 'sent', 'received'], ['client', 'received', 'sent']] as const) {
      expect(value(`tunnelrpc_${side}_started_total`, series('count', 'server_stream')), side).to.equal(2);
      expect(value(`tunnelrpc_${side}_handled_total`, { ...series('count', 'server_stream'), code: 'OK' }), side).to.equal(2);
      expect(value(`tunnelrpc_${side}_msg_${out}_total`, series('count', 'server_stream')), side).to.equal(3);
      expect(value(`tunnelrpc_${side}_msg_${into}_total`, series('count', 'server_stream')), side).to.equal(0);
      expect(value(`tunnelrpc_${side}_handled_total`, { ...series('total', 'client_stream'), code: 'OK' }), side).to.equal(1);
      expect(value(`tunnelrpc_${side}_handled_total`, { ...series('total', 'client_stream'), code: 'OUT_OF_RANGE' }), side).to.equal(1);
      expect(value(`tunnelrpc_${side}_msg_${into}_total`, series('total', 'client_stream')), side).to.equal(6);
      expect(value(`tunnelrpc_${side}_msg_${out}_total`, series('echo', 'bidi_stream')), side).to.equal(2);
      expect(value(`tunnelrpc_${side}_msg_${into}_total`, series('echo', 'bidi_stream')), side).to.equal(2);
      expect(value(`tunnelrpc_${side}_handling_seconds_count`, series('echo', 'bidi_stream')), side).to.equal(1);
      expect(value(`tunnelrpc_${side}_calls_in_flight`, {}), side).to.equal(0);
    }
  });

  it('counts a known mix of calls exactly per method and code, scraped over HTTP from the same port', async () => {
    const calc = createClient(Calc, client);
    for (let i = 0; i < 3; i++) expect(await calc.add({ a: i, b: 1 })).to.equal(i + 1);
    for (let i = 0; i < 2; i++) await calc.fail({ code: 'NOT_FOUND' }).catch(() => undefined);
    await calc.fail({ code: 'PERMISSION_DENIED' }).catch(() => undefined);
    await calc.crash().catch(() => undefined);
    await calc.ping('x');
    expect(await calc.pings()).to.equal(1);
    for (let i = 0; i < 2; i++) await client.call('Calc.nope', {}).catch(() => undefined);
    // A CONNECT to another path is refused with 404, counted by status.
    await new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port, method: 'CONNECT', path: '/elsewhere' });
      req.on('connect', (res, socket) => {
        socket.destroy();
        expect(res.statusCode).to.equal(404);
        resolve();
      });
      req.on('response', () => resolve());
      req.end();
    });

    const { status, type, body } = await scrape(port);
    expect(status).to.equal(200);
    expect(type).to.equal('text/plain; version=0.0.4; charset=utf-8');
    const samples = parseExposition(body);
    const value = (name: string, labels: Record<string, string>): number | undefined =>
      samples.find((sample) => sample.name === name && Object.entries(labels).every(([k, v]) => sample.labels[k] === v) && Object.keys(sample.labels).length === Object.keys(labels).length)?.value;
    const handled = (side: string, service: string, method: string, code: string, type = 'unary'): number | undefined =>
      value(`tunnelrpc_${side}_handled_total`, { service, method, type, code });

    for (const side of ['server', 'client']) {
      expect(value(`tunnelrpc_${side}_started_total`, { service: 'Calc', method: 'add', type: 'unary' }), side).to.equal(3);
      expect(handled(side, 'Calc', 'add', 'OK'), side).to.equal(3);
      expect(handled(side, 'Calc', 'fail', 'NOT_FOUND'), side).to.equal(2);
      expect(handled(side, 'Calc', 'fail', 'PERMISSION_DENIED'), side).to.equal(1);
      expect(handled(side, 'Calc', 'crash', 'INTERNAL'), side).to.equal(1);
      expect(handled(side, 'Calc', 'ping', 'OK', 'notification'), side).to.equal(1);
      expect(handled(side, 'Calc', 'pings', 'OK'), side).to.equal(1);
      // Every registered method x code series exists from the start, at zero.
      expect(handled(side, 'Calc', 'add', 'NOT_FOUND'), side).to.equal(0);
      expect(handled(side, 'Calc', 'pings', 'DATA_LOSS'), side).to.equal(0);
      expect(value(`tunnelrpc_${side}_handling_seconds_count`, { service: 'Calc', method: 'add', type: 'unary' }), side).to.equal(3);
      expect(value(`tunnelrpc_${side}_handling_seconds_bucket`, { service: 'Calc', method: 'add', type: 'unary', le: '+Inf' }), side).to.equal(3);
      // Cumulative and non-decreasing; every call on loopback took less than the last bound, 10 s.
      const cumulative = samples.filter((sample) => sample.name === `tunnelrpc_${side}_handling_seconds_bucket` && sample.labels['method'] === 'fail').map((sample) => sample.value);
      expect(cumulative.every((count, i) => i === 0 || count >= cumulative[i - 1]!), side).to.equal(true);
      expect(value(`tunnelrpc_${side}_handling_seconds_bucket`, { service: 'Calc', method: 'fail', type: 'unary', le: '10' }), side).to.equal(3);
      expect(value(`tunnelrpc_${side}_handling_seconds_sum`, { service: 'Calc', method: 'fail', type: 'unary' }), side).to.be.greaterThan(0);
      expect(value(`tunnelrpc_${side}_calls_in_flight`, {}), side).to.equal(0);
    }
    // The server labels a method nobody registered _OTHER, so a peer cannot create series.
    expect(handled('server', OTHER_METHOD, OTHER_METHOD, 'UNIMPLEMENTED')).to.equal(2);
    expect(samples.filter((sample) => sample.labels['method'] === 'nope' && sample.name.startsWith('tunnelrpc_server_'))).to.deep.equal([]);
    // The client knows what it called.
    expect(handled('client', 'Calc', 'nope', 'UNIMPLEMENTED')).to.equal(2);
    const buckets = samples.filter((sample) => sample.name === 'tunnelrpc_server_handling_seconds_bucket' && sample.labels['method'] === 'add').map((sample) => sample.labels['le']);
    expect(buckets).to.deep.equal([...RPC_DURATION_BUCKETS.map(String), '+Inf']);

    expect(value('tunnelrpc_server_tunnels_open', {})).to.equal(1);
    expect(value('tunnelrpc_server_tunnels_opened_total', {})).to.equal(1);
    expect(value('tunnelrpc_server_tunnels_refused_total', { status: '404' })).to.equal(1);
    expect(value('tunnelrpc_client_tunnels_open', {})).to.equal(1);
    expect(value('tunnelrpc_client_connects_total', {})).to.equal(1);
  });

  it('counts tunnel bytes and the open gauge when a tunnel closes', async () => {
    await client.call('Calc.add', { a: 1, b: 2 });
    await client.close();
    await new Promise<void>((resolve) => {
      const check = (): void => void (rpc.connectionCount === 0 ? resolve() : setImmediate(check));
      check();
    });
    const samples = parseExposition((await scrape(port)).body);
    const find = (name: string): number | undefined => samples.find((sample) => sample.name === name)?.value;
    expect(find('tunnelrpc_server_tunnels_open')).to.equal(0);
    expect(find('tunnelrpc_server_received_bytes_total')).to.be.greaterThan(0);
    expect(find('tunnelrpc_server_sent_bytes_total')).to.be.greaterThan(0);
    expect(find('tunnelrpc_client_tunnels_open')).to.equal(0);
    // The client counts when its tunnel ends, which can be before its socket has read or sent its last bytes.
    expect(find('tunnelrpc_client_received_bytes_total')).to.be.greaterThan(0);
    expect(find('tunnelrpc_client_sent_bytes_total')).to.be.greaterThan(0);
    expect(samples.find((sample) => sample.name === 'tunnelrpc_client_disconnects_total')?.labels).to.deep.equal({ code: 'OK' });
  });

  it('shows each open tunnel\'s TCP_INFO (rtt, cwnd, retransmits…) as gauges read at scrape time, on Linux with koffi', async function () {
    if (process.platform !== 'linux') this.skip();
    await client.call('Calc.add', { a: 1, b: 2 });
    const samples = parseExposition((await scrape(port)).body);
    const of = (name: string): Sample[] => samples.filter((sample) => sample.name === name);
    // One server tunnel (this client's) and one client tunnel; the scrape's own HTTP connection is no tunnel.
    const [serverRtt] = of('tunnelrpc_server_tunnel_rtt_seconds');
    expect(of('tunnelrpc_server_tunnel_rtt_seconds')).to.have.length(1);
    expect(serverRtt!.labels).to.have.keys(['tunnel', 'peer']);
    expect(serverRtt!.labels.peer).to.match(/^127\.0\.0\.1:\d+$/);
    expect(serverRtt!.value).to.be.above(0).and.below(1);
    expect(of('tunnelrpc_client_tunnel_rtt_seconds')).to.have.length(1);
    for (const side of ['server', 'client']) {
      for (const suffix of ['rtt_variance_seconds', 'retransmits', 'retransmitted_segments', 'congestion_window_segments', 'unacked_segments', 'lost_segments', 'acked_bytes', 'received_bytes']) {
        expect(of(`tunnelrpc_${side}_tunnel_${suffix}`), `${side} ${suffix}`).to.have.length(1);
      }
      expect(of(`tunnelrpc_${side}_tunnel_congestion_window_segments`)[0]!.value).to.be.at.least(1);
      expect(of(`tunnelrpc_${side}_tunnel_received_bytes`)[0]!.value).to.be.above(0);
    }
    // A closed tunnel leaves the gauges at the next scrape.
    await client.close();
    await new Promise<void>((resolve) => {
      const check = (): void => void (rpc.connectionCount === 0 ? resolve() : setImmediate(check));
      check();
    });
    const after = parseExposition((await scrape(port)).body);
    expect(after.filter((sample) => sample.name.endsWith('_tunnel_rtt_seconds'))).to.deep.equal([]);
  });

  it('keeps the application routes and the RPC path, and answers 405 to a POST on /metrics', async () => {
    expect((await scrape(port, '/hello')).body).to.equal('app route\n');
    const post = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/metrics', method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(post).to.equal(405);
    expect((await scrape(port, '/_rpc')).status).to.equal(405);
  });

  it('uses a private registry by default and reuses metrics on a shared one', () => {
    const first = createPrometheus();
    const second = createPrometheus();
    expect(first.registry).to.not.equal(second.registry);
    const shared = new Registry();
    const a = createPrometheus({ registry: shared });
    const b = createPrometheus({ registry: shared });
    expect(a.registry).to.equal(b.registry);
    expect(shared.getMetricsAsArray().length).to.be.greaterThan(0);
  });

  it('refuses buckets that are not ascending positive numbers', () => {
    expect(() => createPrometheus({ buckets: [1, 0.5] })).to.throw(RpcError, /option buckets must be a non-empty array of ascending positive numbers/);
  });

  it("refuses collectDefaultMetrics: 'true', 1 or null instead of silently leaving the process metrics off", () => {
    for (const value of ['true', 1, null]) {
      expect(() => createPrometheus({ registry: new Registry(), collectDefaultMetrics: value as never })).to.throw(RpcError, /option collectDefaultMetrics must be true or false; got /);
    }
  });
});
