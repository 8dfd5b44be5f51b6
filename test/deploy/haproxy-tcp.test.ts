/**
 * HAProxy `mode tcp` with `send-proxy-v2` and a `tcp-check` that performs the real CONNECT handshake (README recipe
 * haproxy-tcp), in front of two RpcServers whose listeners read the PROXY protocol: the health check marks both UP,
 * handlers see the client's address and port rather than HAProxy's, tunnels spread over both servers, and a call,
 * 1,000 multiplexed calls, a cancel and a goaway drain pass. The example server's --proxy-protocol serves the same.
 */
import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import { createClient } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import { defineService } from '@tunnelrpc/protocol';
import { FrameDecoder, decodeMessage, encodeConnectRequest, encodeMessage, parseResponseHead, type Message } from '@tunnelrpc/protocol/internal';
import { RpcServer } from '@tunnelrpc/server';
import { needBox } from '../helpers/boxes.js';
import { Cleanup } from '../helpers/cleanup.js';
import { runNode, spawnNode, waitForLine } from '../helpers/processes.js';
import { logLine, observeEcho, type ObservedEcho } from '../helpers/servers.js';
import { expectCancel, expectDrain, expectMultiplexed, expectOneCall, openThrough } from '../helpers/through.js';
import { startHaproxy } from './start.js';

/** Whoami answers with what the server knows of its caller, and which server answered. */
const Whoami = defineService('Whoami', {
  peer: {
    input: z.void(),
    output: z.object({ server: z.string(), address: z.string().optional(), port: z.number().optional(), socketPort: z.number().optional() }),
  },
});

interface ProxiedServer {
  name: string;
  rpc: RpcServer;
  echo: ObservedEcho;
  port: number;
  logs: string[];
}

async function startProxied(cleanup: Cleanup, name: string): Promise<ProxiedServer> {
  const echo = observeEcho();
  const logs: string[] = [];
  const rpc = new RpcServer({ proxyProtocol: { trusted: ['127.0.0.1'] }, logger: (entry) => logs.push(logLine(entry)) })
    .register(Echo, echo.impl)
    .register(Whoami, { peer: (_input, ctx) => ({ server: name, address: ctx.peer.address, port: ctx.peer.port, socketPort: ctx.socket.remotePort }) });
  cleanup.defer(() => rpc.close());
  const { port } = await rpc.listen(0);
  return { name, rpc, echo, port, logs };
}

// HAProxy's runtime API: `show stat` as CSV, one line per proxy and server.
async function showStat(socketPath: string): Promise<string> {
  const socket = netConnect({ path: socketPath });
  let text = '';
  // HAProxy may take the port before its runtime socket exists: an error reads as "nothing UP yet".
  socket.on('error', () => {});
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  socket.end('show stat\n');
  await once(socket, 'close');
  return text;
}

/** waitUntilUp polls HAProxy until its health checks have marked every server of `backend` UP. */
async function waitUntilUp(socketPath: string, servers: string[]): Promise<void> {
  for (;;) {
    const lines = (await showStat(socketPath)).split('\n');
    const up = servers.every((server) => lines.some((line) => line.startsWith(`tunnelrpc,${server},`) && line.split(',')[17] === 'UP'));
    if (up) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** rawWhoami plays the client by hand through the balancer, so it knows its own source port. */
async function rawWhoami(port: number): Promise<{ localPort: number; answer: Message }> {
  const socket: Socket = netConnect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  const decoder = new FrameDecoder(1 << 20);
  let head: Buffer | undefined = Buffer.alloc(0);
  const answer = new Promise<Message>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      let bytes = chunk;
      if (head !== undefined) {
        head = Buffer.concat([head, chunk]);
        const parsed = parseResponseHead(head);
        if (parsed === undefined) return;
        if (parsed.status !== 200) reject(new Error(`refused: ${head.toString('latin1')}`));
        bytes = parsed.rest;
        head = undefined;
      }
      for (const payload of decoder.push(bytes)) resolve(decodeMessage(payload, { maxFrameSize: 1 << 20, maxDepth: 32, maxItemsPerFrame: 1000 }));
    });
    socket.once('close', () => reject(new Error('closed before an answer')));
  });
  socket.write(Buffer.concat([encodeConnectRequest('/_rpc', 'balancer'), encodeMessage({ type: 0, id: 1, method: 'Whoami.peer', params: undefined })]));
  const result = { localPort: socket.localPort!, answer: await answer };
  socket.destroy();
  return result;
}

describe('deploy: HAProxy mode tcp, tcp-check and PROXY v2', function () {
  const cleanup = new Cleanup();
  let haproxy: string;
  before(function () {
    haproxy = needBox(this, 'haproxy');
  });
  afterEach(() => cleanup.run());

  async function start(ports?: [number, number]) {
    const app1 = ports === undefined ? await startProxied(cleanup, 'app1') : undefined;
    const app2 = ports === undefined ? await startProxied(cleanup, 'app2') : undefined;
    const [port1, port2] = ports ?? [app1!.port, app2!.port];
    // The harness adds only HAProxy's runtime socket, to see the health checks' verdicts.
    const box = await startHaproxy(cleanup, haproxy, 'haproxy-tcp', '127.0.0.1:8003', [['127.0.0.1:8080', port1], ['127.0.0.1:8081', port2]], [
      ['defaults\n', 'global\n    stats socket {dir}/admin.sock level admin\n\ndefaults\n'],
    ]);
    await waitUntilUp(join(box.box.dir, 'admin.sock'), ['app1', 'app2']);
    return { app1, app2, url: `http://127.0.0.1:${box.port}/_rpc`, port: box.port };
  }

  it("marks both servers UP with the real handshake, and the handler sees the client's address and port, not HAProxy's", async () => {
    const { port, app1, app2 } = await start();
    const { localPort, answer } = await rawWhoami(port);
    expect(answer.type).to.equal(1);
    const result = (answer as { result: { server: string; address: string; port: number; socketPort: number } }).result;
    expect(result.address).to.equal('127.0.0.1');
    expect(result.port).to.equal(localPort);
    // The tunnel's socket comes from HAProxy's own port: the header is what told the server the client's.
    expect(result.socketPort).to.not.equal(localPort);
    expect([app1!.name, app2!.name]).to.include(result.server);
    // The health checks' tunnels (a PROXY header, CONNECT, 200, close) leave nothing in the servers' logs.
    expect([...app1!.logs, ...app2!.logs]).to.deep.equal([]);
  });

  it('spreads tunnels over both servers (leastconn)', async () => {
    const { url } = await start();
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const client = await openThrough(cleanup, url, {});
      seen.add(((await client.call('Whoami.peer')) as { server: string }).server);
    }
    expect([...seen].sort()).to.deep.equal(['app1', 'app2']);
  });

  it('passes a call, 1,000 multiplexed calls, a cancel and a goaway drain', async () => {
    const { url, app1, app2 } = await start();
    const client = await openThrough(cleanup, url, {});
    await expectOneCall(client);
    await expectMultiplexed(client);
    const { server } = (await client.call('Whoami.peer')) as { server: string };
    const serving = server === 'app1' ? app1! : app2!;
    await expectCancel(client, serving);
    await expectDrain(client, serving, 1);
  });

  it('serves pnpm example:server --proxy-protocol processes behind it: the CLI call goes through', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 2; i++) {
      const child: ChildProcess = cleanup.add(spawnNode(['examples/dist/example-server.js', '--port', '0', '--proxy-protocol']), (process) => {
        if (process.exitCode === null && process.signalCode === null) process.kill('SIGKILL');
      });
      const match = await waitForLine(child, /^listening http:\/\/127\.0\.0\.1:(\d+)\/_rpc .*\(PROXY protocol required, from 127\.0\.0\.1 and ::1 only\)$/);
      ports.push(Number(match[1]));
    }
    const { url } = await start([ports[0]!, ports[1]!]);
    const result = await runNode(['packages/client/dist/cli.js', 'call', url, 'Echo.add', '{"a":40,"b":2}']);
    expect(result).to.deep.include({ code: 0, stdout: '42\n' });
    expect(await createClient(Echo, await openThrough(cleanup, url, {})).echo('behind HAProxy')).to.equal('behind HAProxy');
  });
});
