/**
 * TCP_INFO per tunnel, read through the optional koffi on Linux: the server's ctx.peer.tcpInfo(), the reader on the
 * 'open' event, the debug page's JSON and the client's endpoints snapshot all show plausible loopback figures (the
 * Prometheus gauges are tested with the prometheus package). Where the machine lets a test make a network namespace whose loopback delays every packet
 * (`ip netns`, `tc qdisc … netem`), the RTT read matches the delay; without that permission the test says so in
 * one line and skips.
 */
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import { z } from 'zod';
import { connect, createClient, type TcpInfo } from '@tunnelrpc/client';
import { defineService } from '@tunnelrpc/protocol';
import { RpcServer, type DebugSnapshot } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { until } from '../helpers/load.js';
import { runNode } from '../helpers/processes.js';
import { httpGet } from '@tunnelrpc/test-kit';

const Kernel = defineService('Kernel', {
  /** The TCP_INFO the handler reads of its own tunnel, or null where it cannot. */
  tcpInfo: { input: z.void(), output: z.record(z.string().max(32), z.number()).nullable() },
});

// The first line of what a failed command said: its stderr when there is one.
function firstLine(error: unknown): string {
  const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
  return (stderr === '' ? String((error as Error).message) : stderr).split('\n')[0]!;
}

async function getJson(port: number, path: string): Promise<unknown> {
  return JSON.parse((await httpGet(`http://127.0.0.1:${port}${path}`)).body);
}

// What a loopback tunnel that carried a few calls must show: a small positive RTT, nothing lost or retransmitted,
// a congestion window, bytes both ways.
function expectPlausibleLoopback(info: TcpInfo | Record<string, number> | null | undefined, side: string): void {
  expect(info, `${side} TCP_INFO`).to.be.an('object');
  const fields = info as TcpInfo;
  expect(Object.keys(fields).sort()).to.deep.equal(['bytesAcked', 'bytesReceived', 'congestionWindow', 'lost', 'retransmits', 'rtt', 'rttVariance', 'totalRetransmits', 'unacked']);
  expect(fields.rtt, `${side} rtt`).to.be.above(0).and.below(1000);
  expect(fields.rttVariance, `${side} rttVariance`).to.be.at.least(0).and.below(1000);
  expect(fields.congestionWindow, `${side} cwnd`).to.be.at.least(1);
  expect(fields.retransmits).to.equal(0);
  expect(fields.lost).to.equal(0);
  expect(fields.bytesAcked, `${side} bytesAcked`).to.be.above(0);
  expect(fields.bytesReceived, `${side} bytesReceived`).to.be.above(0);
}

describe('TCP_INFO per tunnel', function () {
  this.timeout(30_000);
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  before(function () {
    if (process.platform !== 'linux') this.skip();
  });

  it('is read on demand on ctx.peer, the open event, the debug page and client.endpoints', async () => {
    let openReader: (() => TcpInfo | undefined) | undefined;
    const server = new RpcServer({
      debugPath: '/debug/tunnelrpc',
      listeners: [(event) => {
        if (event.type === 'open') openReader = event.tcpInfo;
      }],
    }).register(Kernel, { tcpInfo: (_input, ctx) => (ctx.peer.tcpInfo() as Record<string, number> | undefined) ?? null });
    const address = await server.listen(0, '127.0.0.1');
    cleanup.defer(() => server.close());
    const client = cleanup.add(await connect(address.url), (each) => each.close());
    const kernel = createClient(Kernel, client);
    for (let i = 0; i < 5; i++) await kernel.tcpInfo();

    expectPlausibleLoopback(await kernel.tcpInfo(), 'ctx.peer');
    expectPlausibleLoopback(openReader?.(), 'open event');
    const snapshot = (await getJson(address.port!, '/debug/tunnelrpc?format=json')) as DebugSnapshot;
    expectPlausibleLoopback(snapshot.tunnels[0]?.tcpInfo, 'debug page');
    const endpoint = client.endpoints[0]!;
    expect(endpoint.tcpInfo).to.have.length(1);
    expectPlausibleLoopback(endpoint.tcpInfo[0], 'client.endpoints');

    // A closed tunnel reads as undefined, never a failure.
    await client.close();
    await until(() => openReader?.() === undefined);
  });

  it('reads an RTT that matches a 40 ms netem delay on loopback in a network namespace (where permitted)', async function () {
    const namespace = `tunnelrpc-rtt-${process.pid}`;
    const sh = (args: string[]): void => void execFileSync('ip', args, { stdio: 'pipe' });
    try {
      sh(['netns', 'add', namespace]);
    } catch (error) {
      console.log(`      skipped: cannot make a network namespace here (ip netns add: ${firstLine(error)}); the RTT is then checked on plain loopback only`);
      this.skip();
    }
    cleanup.defer(() => sh(['netns', 'del', namespace]));
    try {
      sh(['-n', namespace, 'link', 'set', 'lo', 'up']);
      // 20 ms each way on lo: every round trip takes 40 ms.
      execFileSync('ip', ['netns', 'exec', namespace, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '20ms'], { stdio: 'pipe' });
    } catch (error) {
      console.log(`      skipped: cannot add a netem delay in a network namespace here (tc qdisc add … netem: ${firstLine(error)}); the RTT is then checked on plain loopback only`);
      this.skip();
    }
    const result = await runNode(['-e', `require('node:child_process').execFileSync('ip', ['netns', 'exec', ${JSON.stringify(namespace)}, process.execPath, 'test/dist/scripts/rtt-probe.js'], { stdio: 'inherit' })`]);
    expect(result.code, result.stderr).to.equal(0);
    const { client, server } = JSON.parse(result.stdout.trim().split('\n').pop()!) as { client: TcpInfo | null; server: TcpInfo | null };
    console.log(`      rtt with a 40 ms round trip: client ${client?.rtt} ms (var ${client?.rttVariance}), server ${server?.rtt} ms (var ${server?.rttVariance})`);
    // The kernel's smoothed RTT after ten calls sits near the delay; generous bounds for a noisy machine.
    for (const info of [client, server]) {
      expect(info).to.be.an('object');
      expect(info!.rtt).to.be.at.least(35).and.below(200);
    }
  });
});
