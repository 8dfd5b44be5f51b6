/**
 * The Upgrade handshake end to end, with no box in between: the real client asks with `handshake: 'upgrade'`, the
 * real server answers 101, and everything a tunnel does works as after a CONNECT (PROTOCOL.md 2.5).
 */
import { expect } from 'chai';
import { Cleanup } from '../helpers/cleanup.js';
import { runNode } from '../helpers/processes.js';
import { startEchoServer } from '../helpers/servers.js';
import { expectCancel, expectDrain, expectMultiplexed, expectOneCall, openThrough } from '../helpers/through.js';

describe('Upgrade handshake (real client, real server)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('serves a call, 1,000 multiplexed calls and a cancel over a tunnel opened with GET + Upgrade', async () => {
    const server = await startEchoServer(cleanup);
    const client = await openThrough(cleanup, server.url, { handshake: 'upgrade' });
    await expectOneCall(client);
    await expectMultiplexed(client);
    await expectCancel(client, server);
  });

  it('drains an upgraded tunnel on close(): the running call gets its answer', async () => {
    const server = await startEchoServer(cleanup);
    await expectDrain(await openThrough(cleanup, server.url, { handshake: 'upgrade' }), server);
  });

  it('serves CONNECT and Upgrade tunnels side by side on one port', async () => {
    const server = await startEchoServer(cleanup);
    await expectOneCall(await openThrough(cleanup, server.url, { handshake: 'connect' }));
    await expectOneCall(await openThrough(cleanup, server.url, { handshake: 'upgrade' }));
    expect(server.rpc.connectionCount).to.equal(2);
  });

  it('tunnelrpc call --upgrade prints the result', async () => {
    const server = await startEchoServer(cleanup);
    const result = await runNode(['packages/client/dist/cli.js', 'call', server.url, 'Echo.add', '{"a":1,"b":2}', '--upgrade']);
    expect(result).to.deep.include({ code: 0, stdout: '3\n', stderr: '' });
  });
});
