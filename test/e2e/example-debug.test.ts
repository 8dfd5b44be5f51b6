/**
 * `pnpm example:server --debug` as a process: metrics at /metrics, the debug page, health and reflection all on,
 * on the one port it prints.
 */
import type { ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { expect } from 'chai';
import { connect, createClient } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import { Health, Reflection } from '@tunnelrpc/protocol';
import { Cleanup } from '../helpers/cleanup.js';
import { exitOf, spawnNode, waitForLine } from '../helpers/processes.js';

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

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

    const metrics = await get(`${base}/metrics`);
    expect(metrics.status).to.equal(200);
    expect(metrics.body).to.include('tunnelrpc_server_handled_total{service="Echo",method="add",type="unary",code="OK"} 1\n');
    expect(metrics.body).to.include('tunnelrpc_server_tunnels_open 1\n');
    expect(metrics.body).to.include('process_cpu_seconds_total');
    const debug = await get(`${base}/debug/tunnelrpc?format=json`);
    expect(debug.status).to.equal(200);
    const snapshot = JSON.parse(debug.body) as { services: Array<{ name: string; methods: Array<{ name: string; calls: number }> }> };
    expect(snapshot.services.find((service) => service.name === 'Echo')!.methods.find((method) => method.name === 'add')!.calls).to.equal(1);

    await client.close();
    server.kill('SIGTERM');
    expect(await exitOf(server)).to.deep.equal({ code: 0, signal: null });
  });
});
