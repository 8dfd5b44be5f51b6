/**
 * `pnpm example:server --debug` as a process: metrics at /metrics, the debug page, health and reflection all on,
 * on the one port it prints.
 */
import type { ChildProcess } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import { expect } from 'chai';
import { connect, createClient } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import { Health, Reflection } from '@tunnelrpc/protocol';
import { MessageType, encodeMessage } from '@tunnelrpc/protocol/internal';
import { Cleanup } from '../helpers/cleanup.js';
import { exitOf, spawnNode, waitForLine } from '../helpers/processes.js';
import { RawTunnel, httpGet } from '@tunnelrpc/test-kit';

describe('example server --debug', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('serves calls, /metrics, the debug page, health and reflection on one port, and exits 0 on SIGTERM', async () => {
    const server: ChildProcess = cleanup.add(spawnNode(['examples/dist/example-server.js', '--port', '0', '--debug']), (child) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    // The last of the three lines it prints (listening, metrics, debug); they may come in one chunk.
    const base = (await waitForLine(server, /^debug (http:\/\/127\.0\.0\.1:\d+)\/debug\/tunnelrpc$/))[1]!;
    const url = `${base}/_rpc`;
    const client = cleanup.add(await connect(url), (each) => each.close());
    expect(await createClient(Echo, client).add({ a: 2, b: 3 })).to.equal(5);
    expect(await createClient(Health, client).check()).to.deep.equal({ status: 'SERVING' });
    expect((await createClient(Reflection, client).list()).services.map((service) => service.name)).to.include('Echo');

    const metrics = await httpGet(`${base}/metrics`);
    expect(metrics.status).to.equal(200);
    expect(metrics.body).to.include('tunnelrpc_server_handled_total{service="Echo",method="add",type="unary",code="OK"} 1\n');
    expect(metrics.body).to.include('tunnelrpc_server_tunnels_open 1\n');
    expect(metrics.body).to.include('process_cpu_seconds_total');
    const debug = await httpGet(`${base}/debug/tunnelrpc?format=json`);
    expect(debug.status).to.equal(200);
    const snapshot = JSON.parse(debug.body) as { services: Array<{ name: string; methods: Array<{ name: string; calls: number }> }> };
    expect(snapshot.services.find((service) => service.name === 'Echo')!.methods.find((method) => method.name === 'add')!.calls).to.equal(1);

    await client.close();
    server.kill('SIGTERM');
    expect(await exitOf(server)).to.deep.equal({ code: 0, signal: null });
  });

  it('writes a bounded number of escaped log lines for 2,000 refused CONNECTs', async () => {
    const server: ChildProcess = cleanup.add(spawnNode(['examples/dist/example-server.js', '--port', '0', '--debug']), (child) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    server.stderr!.setEncoding('utf8');
    server.stderr!.on('data', (chunk: string) => (stderr += chunk));
    const port = Number((await waitForLine(server, /^debug http:\/\/127\.0\.0\.1:(\d+)\//))[1]);
    // A CONNECT to another path is refused 404, and the refusal quotes 100 characters of the path the peer chose.
    const head = Buffer.from(`CONNECT /evil${'x'.repeat(100)} HTTP/1.1\r\nHost: a\r\n\r\n`, 'latin1');
    // A goaway whose message tries to clear the screen and forge a second line: it is logged as an event.
    const forged = await RawTunnel.open(port, encodeMessage({ type: MessageType.Goaway, lastId: 0, code: 'UNAVAILABLE', message: '\u001b[2J\u001b[31mFORGED\nsecond line\u202e' }));
    forged.socket.end();
    await forged.closed;
    const refuseOnce = (): Promise<void> => new Promise((resolve, reject) => {
      const socket = netConnect(port, '127.0.0.1', () => socket.end(head));
      socket.on('data', () => {});
      socket.once('error', reject);
      socket.once('close', () => resolve());
    });
    const started = Date.now();
    let sent = 0;
    await Promise.all(Array.from({ length: 50 }, async () => {
      while (sent < 2000) {
        sent++;
        await refuseOnce();
      }
    }));
    const seconds = (Date.now() - started) / 1000;
    server.kill('SIGTERM');
    expect(await exitOf(server)).to.deep.equal({ code: 0, signal: null });
    const lines = stderr.split('\n').filter((line) => line !== '');
    const refusals = lines.filter((line) => line.includes('type="refused"'));
    // At most 100 entries a second pass, plus one "dropped" line per quiet spell; unlimited, it was one per refusal.
    expect(refusals.length).to.be.above(0);
    expect(lines.length).to.be.below(2000);
    expect(lines.length).to.be.at.most(Math.ceil(2 * 100 * (seconds + 1)));
    // Peer text is escaped: the forged goaway is one line, without its control characters.
    expect(stderr).to.not.match(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(lines.some((line) => line.includes('\\u001b[2J\\u001b[31mFORGED\\u000asecond line\\u202e'))).to.equal(true);
    console.log(`      ${lines.length} stderr lines for 2000 refused CONNECTs in ${seconds.toFixed(1)} s`);
  });
});
