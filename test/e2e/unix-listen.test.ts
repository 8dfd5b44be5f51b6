/**
 * RpcServer#listen on a unix socket path: the file mode decides who may connect, close() removes the file, a stale
 * file from a dead process is replaced, and a socket another process serves (or a file that is not a socket) is
 * left alone with FAILED_PRECONDITION.
 */
import { existsSync } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { expect } from 'chai';
import { connect } from '@tunnelrpc/client';
import { RpcServer } from '@tunnelrpc/server';
import { Echo, createEchoService } from '@tunnelrpc/examples';
import { Cleanup } from '../helpers/cleanup.js';
import { spawnNode, waitForLine } from '../helpers/processes.js';
import { expectRejection } from '../helpers/rpc-error.js';
import { tempSocketPath } from '../helpers/servers.js';

// A process that listens on `path` with a bare net server and prints "up".
const HOLDER = "require('net').createServer((s) => s.end()).listen(process.argv[1], () => console.log('up'))";

describe('RpcServer#listen on a unix socket', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  function socketPath(): string {
    const path = tempSocketPath();
    cleanup.defer(() => rm(path, { force: true }));
    return path;
  }

  function server(): RpcServer {
    const rpc = new RpcServer({ logger: () => {} }).register(Echo, createEchoService());
    cleanup.defer(() => rpc.close());
    return rpc;
  }

  async function holder(path: string): Promise<ReturnType<typeof spawnNode>> {
    const child = cleanup.add(spawnNode(['-e', HOLDER, path]), (each) => {
      if (each.exitCode === null && each.signalCode === null) each.kill('SIGKILL');
    });
    await waitForLine(child, /^up$/);
    return child;
  }

  it('serves calls at the unix: URL it reports, with mode 0o600 by default, and close() removes the file', async () => {
    const path = socketPath();
    const rpc = server();
    const address = await rpc.listen({ path });
    expect(address).to.deep.include({ host: 'unix', path, url: `unix:${path}` });
    expect((await stat(path)).mode & 0o777).to.equal(0o600);
    const client = await connect(address.url, { reconnect: false });
    expect(await client.call('Echo.add', { a: 2, b: 3 })).to.equal(5);
    await client.close();
    await rpc.close();
    expect(existsSync(path)).to.equal(false);
  });

  it('gives the socket file the mode asked for', async () => {
    const path = socketPath();
    await server().listen({ path, mode: 0o660 });
    expect((await stat(path)).mode & 0o777).to.equal(0o660);
  });

  it('replaces a stale socket file left by a process that died', async () => {
    const path = socketPath();
    const child = await holder(path);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(existsSync(path)).to.equal(true);
    const address = await server().listen({ path });
    const client = await connect(address.url, { reconnect: false });
    expect(await client.call('Echo.echo', 'fresh')).to.equal('fresh');
    await client.close();
  });

  it('refuses with FAILED_PRECONDITION, and leaves alone, a socket another process is serving', async () => {
    const path = socketPath();
    await holder(path);
    await expectRejection(server().listen({ path }), 'FAILED_PRECONDITION', 'another process is serving that socket; it was left alone');
    // The other process still answers on its socket.
    const socket = netConnect({ path });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.destroy();
  });

  it('refuses with FAILED_PRECONDITION, and leaves alone, a file that is not a socket', async () => {
    const path = socketPath();
    await writeFile(path, 'keep me');
    await expectRejection(server().listen({ path }), 'FAILED_PRECONDITION', 'a file that is not a socket is there');
    expect(await readFile(path, 'utf8')).to.equal('keep me');
  });

  it('refuses a bad mode or an empty path with INVALID_ARGUMENT', async () => {
    await expectRejection(server().listen({ path: socketPath(), mode: 0o1000 }), 'INVALID_ARGUMENT', 'must be a file mode from 0 to 0o777');
    await expectRejection(server().listen({ path: '' }), 'INVALID_ARGUMENT', 'non-empty socket file path');
  });
});
