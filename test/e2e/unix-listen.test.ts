/**
 * RpcServer#listen on a unix socket path: the file mode decides who may connect, close() removes the file, a stale
 * file from a dead process is replaced, and a socket another process serves (or a file that is not a socket) is
 * left alone with FAILED_PRECONDITION.
 */
import { existsSync, lstatSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { Server as HttpServer } from 'node:http';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { connect as netConnect } from 'node:net';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { expect } from 'chai';
import { connect } from '@tunnelrpc/client';
import { RpcError, RpcServer, type PeerAddress } from '@tunnelrpc/server';
import { Echo, createEchoService } from '@tunnelrpc/examples';
import { Cleanup } from '../helpers/cleanup.js';
import { REPO_ROOT, runNode, spawnNode, waitForLine } from '../helpers/processes.js';
import { expectRejects } from '@tunnelrpc/test-kit';
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

  // Runs `onListening` with the bound address at the moment the listening socket exists, before listen() resolves:
  // the window in which a socket created first and given its mode afterwards is open to anyone.
  async function listenWatched(rpc: RpcServer, target: { path: string; mode?: number }, onListening: (bound: string) => void): Promise<unknown> {
    const proto = HttpServer.prototype as unknown as { emit: (event: string, ...args: unknown[]) => boolean };
    const emit = proto.emit;
    proto.emit = function (this: HttpServer, event: string, ...args: unknown[]): boolean {
      if (event === 'listening') onListening(this.address() as string);
      return emit.call(this, event, ...args);
    };
    try {
      return await rpc.listen(target).catch((error: unknown) => error);
    } finally {
      proto.emit = emit;
    }
  }

  async function privateFolder(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'tunnelrpc-e2e-mode-'));
    cleanup.defer(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  it('creates the socket with its mode under umask 000: no name ever shows a wider mode', async () => {
    const dir = await privateFolder();
    const path = join(dir, 's.sock');
    const seen: Array<{ name: string; mode: number }> = [];
    const previous = process.umask(0);
    let result: unknown;
    try {
      result = await listenWatched(server(), { path, mode: 0o600 }, (bound) => {
        seen.push({ name: 'bound', mode: statSync(bound).mode & 0o777 });
        seen.push({ name: 'its folder', mode: statSync(join(bound, '..')).mode & 0o777 });
        if (existsSync(path)) seen.push({ name: 'path', mode: statSync(path).mode & 0o777 });
      });
    } finally {
      process.umask(previous);
    }
    expect(result).to.deep.include({ path });
    expect(seen.find((each) => each.name === 'bound')).to.deep.equal({ name: 'bound', mode: 0o600 });
    // The folder is the test's own when the socket is bound at its path directly; otherwise it must be private.
    const folder = seen.find((each) => each.name === 'its folder')!;
    if (folder.mode !== (statSync(dir).mode & 0o777)) expect(folder.mode).to.equal(0o700);
    expect(seen.filter((each) => each.name === 'path').every((each) => each.mode === 0o600)).to.equal(true);
    expect((await stat(path)).mode & 0o777).to.equal(0o600);
    // Only the socket is left beside it: the private folder is gone.
    expect(readdirSync(dir)).to.deep.equal(['s.sock']);
  });

  it('does not follow, and leaves alone, a symlink planted at the path before listen()', async () => {
    const dir = await privateFolder();
    const target = join(dir, 'target');
    await writeFile(target, 'keep me');
    await chmod(target, 0o644);
    const path = join(dir, 's.sock');
    symlinkSync(target, path);
    await expectRejects(server().listen({ path, mode: 0o600 }), 'FAILED_PRECONDITION', 'a file that is not a socket is there');
    expect((await stat(target)).mode & 0o777).to.equal(0o644);
    expect((await lstat(path)).isSymbolicLink()).to.equal(true);
  });

  it('does not follow, and leaves alone, a symlink swapped in while the socket is being created', async () => {
    const dir = await privateFolder();
    const target = join(dir, 'target');
    await writeFile(target, 'keep me');
    await chmod(target, 0o644);
    const path = join(dir, 's.sock');
    const rpc = server();
    const result = await listenWatched(rpc, { path, mode: 0o600 }, () => symlinkSync(target, path));
    expect(result).to.be.instanceOf(RpcError);
    expect(result).to.include({ code: 'FAILED_PRECONDITION' });
    expect((result as RpcError).message).to.include('a file appeared there while the socket was being created; it was left alone');
    expect((await stat(target)).mode & 0o777).to.equal(0o644);
    expect(lstatSync(path).isSymbolicLink()).to.equal(true);
    expect(await readFile(target, 'utf8')).to.equal('keep me');
    // The failed listen() kept nothing: the same server can listen again once the path is free.
    await rm(path);
    const address = await rpc.listen({ path });
    const client = await connect(address.url, { reconnect: false });
    expect(await client.call('Echo.add', { a: 1, b: 2 })).to.equal(3);
    await client.close();
  });

  it('close() leaves alone a file that replaced its socket at the path', async () => {
    const dir = await privateFolder();
    const path = join(dir, 's.sock');
    const rpc = server();
    await rpc.listen({ path });
    await rm(path);
    await writeFile(path, 'someone else');
    await rpc.close();
    expect(await readFile(path, 'utf8')).to.equal('someone else');
  });

  it('gives the socket its mode from a worker thread, which cannot set the umask (umask 000 in the process)', async () => {
    const dir = await privateFolder();
    const path = join(dir, 's.sock');
    const script = join(dir, 'listen.mjs');
    await writeFile(script, [
      `import { parentPort } from 'node:worker_threads';`,
      `import { RpcServer } from '${pathToFileURL(join(REPO_ROOT, 'packages/server/dist/index.js')).href}';`,
      'const rpc = new RpcServer({ logger: () => {} });',
      `const address = await rpc.listen({ path: ${JSON.stringify(path)}, mode: 0o600 });`,
      'parentPort.postMessage(address.path);',
      'await new Promise((resolve) => parentPort.once(\'message\', resolve));',
      'await rpc.close();',
    ].join('\n'));
    const previous = process.umask(0);
    const worker = new Worker(script);
    try {
      const [listened] = (await once(worker, 'message')) as [string];
      expect(listened).to.equal(path);
      expect((await stat(path)).mode & 0o777).to.equal(0o600);
      expect(readdirSync(dir).sort()).to.deep.equal(['listen.mjs', 's.sock']);
      worker.postMessage('close');
      await once(worker, 'exit');
      expect(existsSync(path)).to.equal(false);
    } finally {
      process.umask(previous);
      await worker.terminate();
    }
  });

  it('refuses a path longer than the socket path limit with INVALID_ARGUMENT instead of cutting it short', async () => {
    const dir = await privateFolder();
    const path = join(dir, `${'x'.repeat(108 - dir.length)}.sock`);
    await expectRejects(server().listen({ path }), 'INVALID_ARGUMENT', 'a unix socket path holds at most');
    expect(existsSync(dir) && readdirSync(dir)).to.deep.equal([]);
  });

  it('binds in place, still born with its mode, where the folder leaves no room for the private name', async () => {
    const base = await privateFolder();
    // A folder of 100 bytes: the path (102 bytes) fits the limit, the private name beside it (115) does not.
    const dir = join(base, 'd'.repeat(100 - base.length - 1));
    await mkdir(dir);
    const path = join(dir, 's');
    const seen: number[] = [];
    const previous = process.umask(0);
    let result: unknown;
    try {
      result = await listenWatched(server(), { path, mode: 0o600 }, (bound) => seen.push(statSync(bound).mode & 0o777));
    } finally {
      process.umask(previous);
    }
    expect(result).to.deep.include({ path });
    expect(seen).to.deep.equal([0o600]);
    const client = await connect((result as { url: string }).url, { reconnect: false });
    expect(await client.call('Echo.add', { a: 1, b: 2 })).to.equal(3);
    await client.close();
    expect(readdirSync(dir)).to.deep.equal(['s']);
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
    await expectRejects(server().listen({ path }), 'FAILED_PRECONDITION', 'another process is serving that socket; it was left alone');
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
    await expectRejects(server().listen({ path }), 'FAILED_PRECONDITION', 'a file that is not a socket is there');
    expect(await readFile(path, 'utf8')).to.equal('keep me');
  });

  it('refuses a bad mode or an empty path with INVALID_ARGUMENT', async () => {
    await expectRejects(server().listen({ path: socketPath(), mode: 0o1000 }), 'INVALID_ARGUMENT', 'must be a file mode from 0 to 0o777');
    await expectRejects(server().listen({ path: '' }), 'INVALID_ARGUMENT', 'non-empty socket file path');
  });

  describe('peer credentials (SO_PEERCRED through the optional koffi)', () => {
    it('puts the uid, gid and pid of the connecting process on the peer, on Linux with koffi installed', async function () {
      if (process.platform !== 'linux') this.skip();
      const path = socketPath();
      const seen: PeerAddress[] = [];
      const rpc = new RpcServer({ logger: () => {}, authorize: (_req, peer) => seen.push(peer) }).register(Echo, createEchoService());
      cleanup.defer(() => rpc.close());
      const client = await connect((await rpc.listen({ path })).url, { reconnect: false });
      expect(await client.call('Echo.add', { a: 1, b: 1 })).to.equal(2);
      await client.close();
      expect(seen[0]!.credentials).to.deep.equal({ uid: process.getuid!(), gid: process.getgid!(), pid: process.pid });
    });

    it('has no credentials over TCP', async () => {
      const seen: PeerAddress[] = [];
      const rpc = new RpcServer({ logger: () => {}, authorize: (_req, peer) => seen.push(peer) }).register(Echo, createEchoService());
      cleanup.defer(() => rpc.close());
      const client = await connect((await rpc.listen(0)).url, { reconnect: false });
      await client.call('Echo.echo', 1);
      await client.close();
      expect(seen[0]).to.not.have.property('credentials');
      expect(seen[0]!.address).to.equal('127.0.0.1');
    });

    it('serves unix peers without credentials, and without failing, when koffi cannot be loaded', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'tunnelrpc-e2e-nokoffi-'));
      cleanup.defer(() => rm(dir, { recursive: true, force: true }));
      // A preload that makes require('koffi') fail as if the optional package were not installed.
      const preload = join(dir, 'no-koffi.cjs');
      await writeFile(preload, [
        "const Module = require('node:module');",
        'const resolve = Module._resolveFilename;',
        "Module._resolveFilename = function (request, ...rest) { if (request === 'koffi') { const e = new Error(\"Cannot find module 'koffi'\"); e.code = 'MODULE_NOT_FOUND'; throw e; } return resolve.call(this, request, ...rest); };",
      ].join('\n'));
      const url = (file: string): string => pathToFileURL(join(REPO_ROOT, file)).href;
      const code = [
        `import { RpcServer } from '${url('packages/server/dist/index.js')}';`,
        `import { connect } from '${url('packages/client/dist/index.js')}';`,
        `import { Echo, createEchoService } from '${url('examples/dist/echo-service.js')}';`,
        'const seen = [];',
        'const rpc = new RpcServer({ logger: () => {}, authorize: (_req, peer) => seen.push(peer) }).register(Echo, createEchoService());',
        `const address = await rpc.listen({ path: ${JSON.stringify(join(dir, 's.sock'))} });`,
        "const client = await connect(address.url, { reconnect: false });",
        "const sum = await client.call('Echo.add', { a: 20, b: 22 });",
        'await client.close(); await rpc.close();',
        "console.log(JSON.stringify({ sum, hasCredentials: 'credentials' in seen[0] }));",
      ].join('\n');
      const result = await runNode(['--require', preload, '--input-type=module', '-e', code]);
      expect(result.stderr).to.equal('');
      expect(JSON.parse(result.stdout)).to.deep.equal({ sum: 42, hasCredentials: false });
    });
  });
});
