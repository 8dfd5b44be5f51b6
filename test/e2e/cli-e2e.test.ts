/**
 * The shipped entry points as processes: the example server (`examples/dist/example-server.js`) and the tunnelrpc
 * CLI (`packages/client/dist/cli.js`), started with the current node binary from the repository root.
 */
import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createClient } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import { Cleanup } from '../helpers/cleanup.js';
import { REPO_ROOT, exitOf, runNode, spawnNode, waitForLine } from '../helpers/processes.js';
import { tempSocketPath } from '../helpers/servers.js';

const EXAMPLE_SERVER = 'examples/dist/example-server.js';

/** runNodeless runs a program (not node) in the repository root and resolves with what it printed. */
function runNodeless(program: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(program, args, { cwd: REPO_ROOT }, (error, stdout) => (error === null ? resolve(stdout) : reject(error)));
  });
}
const CLI = 'packages/client/dist/cli.js';

describe('example server and CLI processes', () => {
  const cleanup = new Cleanup();
  let server: ChildProcess;
  let url: string;

  beforeEach(async () => {
    server = cleanup.add(spawnNode([EXAMPLE_SERVER, '--port', '0']), (child) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const match = await waitForLine(server, /^listening (http:\/\/127\.0\.0\.1:(\d+)\/_rpc) \(loopback only; --host 0\.0\.0\.0 listens on every interface\)$/);
    url = match[1]!;
    expect(Number(match[2])).to.be.greaterThan(0);
  });
  afterEach(() => cleanup.run());

  it('prints the result of Echo.add as JSON and exits 0', async () => {
    const result = await runNode([CLI, 'call', url, 'Echo.add', '{"a":1,"b":2}']);
    expect(result.stderr).to.equal('');
    expect(result.stdout).to.equal('3\n');
    expect(result.code).to.equal(0);
  });

  it('prints one JSON line per stream message, then the result (Echo.ticks)', async () => {
    const result = await runNode([CLI, 'call', url, 'Echo.ticks', '{"n":3}']);
    expect(result.stderr).to.equal('');
    expect(result.stdout).to.equal('0\n1\n2\n{"sent":3}\n');
    expect(result.code).to.equal(0);
  });

  it('feeds a client stream and a bidi stream from JSON lines with --stdin', async () => {
    const sum = await runNode([CLI, 'call', url, 'Echo.sum', '--stdin'], '1\n2.5\n\n3\n');
    expect(sum.stderr).to.equal('');
    expect(sum.stdout).to.equal('6.5\n');
    const chat = await runNode([CLI, 'call', url, 'Echo.chat', '--stdin'], '"hi"\n{"a":[1]}\n');
    expect(chat.stdout).to.equal('"hi"\n{"a":[1]}\n{"echoed":2}\n');
    expect(chat.code).to.equal(0);
    const bad = await runNode([CLI, 'call', url, 'Echo.sum', '--stdin'], '1\nnot json\n');
    expect(bad.stderr).to.match(/^CANCELLED: .*line 2 of standard input is not valid JSON/);
    expect(bad.code).to.equal(1);
  });

  it('prints a structured echo as JSON', async () => {
    const params = { text: 'héllo 🎉', list: [1, null, true], nested: { x: -1.5 } };
    const result = await runNode([CLI, 'call', url, 'Echo.echo', JSON.stringify(params)]);
    expect(result.code).to.equal(0);
    expect(JSON.parse(result.stdout)).to.deep.equal(params);
  });

  it('prints CODE: message on stderr and exits 1 for an RPC error', async () => {
    const result = await runNode([CLI, 'call', url, 'Echo.fail', '{"code":"NOT_FOUND","message":"gone"}']);
    expect(result.stdout).to.equal('');
    expect(result.stderr).to.equal('NOT_FOUND: gone\n');
    expect(result.code).to.equal(1);
  });

  it('exits 1 with UNIMPLEMENTED for an unknown method', async () => {
    const result = await runNode([CLI, 'call', url, 'Echo.nope']);
    expect(result.stderr).to.match(/^UNIMPLEMENTED: /);
    expect(result.code).to.equal(1);
  });

  it('exits 1 with DEADLINE_EXCEEDED when --timeout passes', async () => {
    const result = await runNode([CLI, 'call', url, 'Echo.sleep', '{"ms":60000}', '--timeout', '100']);
    expect(result.stderr).to.match(/^DEADLINE_EXCEEDED: /);
    expect(result.code).to.equal(1);
  });

  it('exits 2 with a sentence on stderr when it cannot connect', async () => {
    const result = await runNode([CLI, 'call', `unix:${tempSocketPath()}`, 'Echo.add', '{"a":1,"b":2}']);
    expect(result.stdout).to.equal('');
    expect(result.stderr).to.match(/^tunnelrpc: .*ENOENT.*\[UNAVAILABLE\]\n$/);
    expect(result.code).to.equal(2);
  });

  it('exits 2 with the usage for params that are not JSON', async () => {
    const result = await runNode([CLI, 'call', url, 'Echo.add', '{a:1}']);
    expect(result.stderr).to.include('not valid JSON');
    expect(result.stderr).to.include('usage: tunnelrpc call');
    expect(result.code).to.equal(2);
  });

  it('ends quietly with exit 0 when the reader of its output leaves (| head)', async () => {
    const child = spawnNode([CLI, 'call', url, 'Echo.ticks', '{"n":1000000000}']);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    // The first line read, the pipe closes under the CLI as `head -1` closes it: the next write meets EPIPE.
    await once(child.stdout!, 'data');
    child.stdout!.destroy();
    expect(await exitOf(child)).to.deep.equal({ code: 0, signal: null });
    expect(stderr).to.equal('');
  });

  it('takes --timeout 0 as no deadline', async () => {
    const result = await runNode([CLI, 'call', url, 'Echo.sleep', '{"ms":50}', '--timeout', '0']);
    expect(result.stderr).to.equal('');
    expect(result.stdout).to.equal('{"slept":50}\n');
    expect(result.code).to.equal(0);
  });

  it('checks the params against the described schema and sends nothing when they fail it', async () => {
    const client = cleanup.add(await connect(url), (each) => each.close());
    const result = await runNode([CLI, 'call', url, 'Echo.add', '{"a":1,"b":"two"}']);
    expect(result.stdout).to.equal('');
    expect(result.stderr).to.equal(
      'INVALID_ARGUMENT: the params do not match the schema Echo.add describes, so nothing was sent: b: Invalid input: expected number, received string ' +
        '(tunnelrpc describe shows the schema; --no-validate sends anyway)\n' +
        'data: {"mayHaveRun":false,"issues":[{"path":["b"],"message":"Invalid input: expected number, received string"}]}\n',
    );
    expect(result.code).to.equal(1);
    // --no-validate sends them: the server's own check answers.
    const unchecked = await runNode([CLI, 'call', url, 'Echo.add', '{"a":1,"b":"two"}', '--no-validate']);
    expect(unchecked.stderr).to.match(/^INVALID_ARGUMENT: /);
    expect(unchecked.stderr).to.not.include('nothing was sent');
    expect(unchecked.code).to.equal(1);
    expect(await createClient(Echo, client).count()).to.equal(0);
  });

  it('prints one indented document with --format json, and errors as JSON on stderr', async () => {
    const stream = await runNode([CLI, 'call', url, 'Echo.ticks', '{"n":2}', '--format', 'json']);
    expect(JSON.parse(stream.stdout)).to.deep.equal({ messages: [0, 1], result: { sent: 2 } });
    expect(stream.stdout).to.include('\n  "messages"');
    const unary = await runNode([CLI, 'call', url, 'Echo.echo', '{"a":[1]}', '--format', 'json']);
    expect(unary.stdout).to.equal('{\n  "a": [\n    1\n  ]\n}\n');
    const failed = await runNode([CLI, 'call', url, 'Echo.fail', '{"code":"NOT_FOUND","message":"gone"}', '--format', 'json']);
    expect(JSON.parse(failed.stderr)).to.deep.equal({ code: 'NOT_FOUND', message: 'gone', data: { mayHaveRun: true } });
    expect(failed.code).to.equal(1);
    const ndjson = await runNode([CLI, 'call', url, 'Echo.ticks', '{"n":2}', '--format', 'ndjson']);
    expect(ndjson.stdout).to.equal('0\n1\n{"sent":2}\n');
  });

  it('prints each phase on stderr with -v, in order', async () => {
    const result = await runNode([CLI, 'call', url, 'Echo.add', '{"a":1,"b":2}', '-v']);
    expect(result.stdout).to.equal('3\n');
    const phases = result.stderr.split('\n').filter((line) => line.length > 0).map((line) => /^\* ([a-z ]+) \d+\.\d ms/.exec(line)?.[1]);
    expect(phases).to.deep.equal(['connect', 'reflect', 'first answer', 'call', 'total']);
  });

  describe('tunnelrpc bench', () => {
    interface BenchJson {
      method: string;
      concurrency: number;
      connections: number;
      rps: number | null;
      calls: number;
      callsPerSecond: number;
      latencyMs: Record<'min' | 'mean' | 'p50' | 'p90' | 'p99' | 'p999' | 'max', number>;
      codes: Record<string, number>;
    }

    it('runs -n calls with -c in flight over --connections tunnels and prints one JSON object with --json', async () => {
      const result = await runNode([CLI, 'bench', url, 'Echo.add', '-d', '{"a":1,"b":2}', '-n', '200', '-c', '8', '--connections', '2', '--json']);
      // Not a terminal: no progress line.
      expect(result.stderr).to.equal('');
      expect(result.code).to.equal(0);
      const report = JSON.parse(result.stdout) as BenchJson;
      expect(report).to.deep.include({ method: 'Echo.add', concurrency: 8, connections: 2, rps: null, calls: 200, codes: { OK: 200 } });
      const { min, p50, p90, p99, p999, max } = report.latencyMs;
      expect([min, p50, p90, p99, p999, max]).to.deep.equal([min, p50, p90, p99, p999, max].sort((a, b) => a - b));
      expect(min).to.be.greaterThan(0);
      expect(report.callsPerSecond).to.be.greaterThan(0);
    });

    it('counts each outcome by code, and paces with --rps', async () => {
      const result = await runNode([CLI, 'bench', url, 'Echo.fail', '-d', '{"code":"NOT_FOUND","message":"gone"}', '-n', '20', '-c', '2', '--rps', '2000', '--json']);
      expect(result.code).to.equal(0);
      expect(JSON.parse(result.stdout)).to.deep.include({ calls: 20, rps: 2000, codes: { NOT_FOUND: 20 } });
    });

    it('prints the latency distribution and the codes for people', async () => {
      const result = await runNode([CLI, 'bench', url, 'Echo.add', '-d', '{"a":1,"b":2}', '-n', '50', '-c', '4']);
      expect(result.code).to.equal(0);
      // Standard error is not a terminal here: no progress line.
      expect(result.stderr).to.equal('');
      const labels = result.stdout.split('\n').map((line) => /^ {2}(\S+)/.exec(line)?.[1]).filter((label) => label !== undefined);
      expect(labels).to.deep.equal(['calls', 'calls/s', 'min', 'mean', 'p50', 'p90', 'p99', 'p99.9', 'max', 'OK']);
      expect(result.stdout).to.match(/^ {2}OK +50$/m);
    });

    it('refuses a stream method and params its schema refuses, before loading the server', async () => {
      const stream = await runNode([CLI, 'bench', url, 'Echo.ticks', '-d', '{"n":1}', '-n', '1']);
      expect(stream.stderr).to.equal('INVALID_ARGUMENT: bench calls unary methods; Echo.ticks is a serverStream\n');
      expect(stream.code).to.equal(1);
      const bad = await runNode([CLI, 'bench', url, 'Echo.add', '-d', '{"a":1}', '-n', '1']);
      expect(bad.stderr).to.match(/^INVALID_ARGUMENT: the params do not match the schema Echo\.add describes/);
      expect(bad.code).to.equal(1);
    });

    it('shows a live progress line on a terminal (run under script(1) for a pty), and none without one', async function () {
      const script = '/usr/bin/script';
      if (!existsSync(script)) this.skip();
      const command = [process.execPath, CLI, 'bench', url, 'Echo.add', '-d', '{"a":1,"b":2}', '-n', '20', '-c', '2'].map((arg) => `'${arg.replace(/'/g, "'\\''")}'`).join(' ');
      const result = await runNodeless(script, ['-qec', command, '/dev/null']);
      expect(result).to.match(/\r0\.\d s {2}\d+ calls {2}\d+ calls\/s {2}p99 [\d.]+ ms {2}errors 0/);
      expect(result).to.match(/^ {2}OK +20\r?$/m);
    });

    it('exits 2 with the usage for a bad --duration', async () => {
      const result = await runNode([CLI, 'bench', url, 'Echo.add', '--duration', '10 parsecs']);
      expect(result.stderr).to.include('tunnelrpc: --duration takes a time such as 10s, 500ms or 2m; got 10 parsecs');
      expect(result.code).to.equal(2);
    });
  });

  describe('tunnelrpc breaking', () => {
    const fixture = (name: string) => `test/dist/fixtures/${name}.js`;

    it('lists what breaks old clients and exits 1', async () => {
      const result = await runNode([CLI, 'breaking', fixture('orders-v1'), fixture('orders-v2-breaking')]);
      expect(result.stdout.split('\n')).to.deep.equal([
        'BREAKING shop.Orders.place params.note: was made required: old clients that leave it out are refused',
        'BREAKING shop.Orders.place result.total: was removed: old clients expect it and fail without it',
        'BREAKING shop.Orders.get was removed: old clients calling it get UNIMPLEMENTED',
        `3 breaking changes in shop.Orders: clients on ${fixture('orders-v1')} would fail against a server on ${fixture('orders-v2-breaking')}`,
        '',
      ]);
      expect(result.code).to.equal(1);
    });

    it('passes additive changes with exit 0, noting what needs servers upgraded first', async () => {
      const result = await runNode([CLI, 'breaking', fixture('orders-v1'), fixture('orders-v2-additive')]);
      expect(result.stdout).to.equal('note shop.Orders.cancel is new: old servers answer it UNIMPLEMENTED\nno breaking changes in shop.Orders (1 note: upgrade servers before clients)\n');
      expect(result.code).to.equal(0);
    });

    it('exits 2 for a module that exports no contract', async () => {
      const result = await runNode([CLI, 'breaking', fixture('orders-v1'), 'test/dist/helpers/bytes.js']);
      expect(result.stderr).to.equal('tunnelrpc: cannot compare the contracts: test/dist/helpers/bytes.js exports no service contract (a defineService result)\n');
      expect(result.code).to.equal(2);
    });
  });

  it('serves an in-process client too, and counts notifications across its connections', async () => {
    const client = cleanup.add(await connect(url), (each) => each.close());
    const echo = createClient(Echo, client);
    echo.notify(1);
    echo.notify(2);
    expect(await echo.count()).to.equal(2);
    const result = await runNode([CLI, 'call', url, 'Echo.count']);
    expect(result.stdout).to.equal('2\n');
  });

  it('exits 0 on SIGTERM', async () => {
    server.kill('SIGTERM');
    expect(await exitOf(server)).to.deep.equal({ code: 0, signal: null });
  });

  it('exits 0 on SIGTERM while a client is connected, closing that client', async () => {
    const client = cleanup.add(await connect(url, { reconnect: false }), (each) => each.close());
    expect(await createClient(Echo, client).add({ a: 1, b: 1 })).to.equal(2);
    server.kill('SIGTERM');
    expect(await exitOf(server)).to.deep.equal({ code: 0, signal: null });
    expect((await client.closed)?.code).to.equal('UNAVAILABLE');
  });

  it('exits 0 on SIGTERM after letting a running call finish', async () => {
    const client = cleanup.add(await connect(url), (each) => each.close());
    const echo = createClient(Echo, client);
    const running = echo.sleep({ ms: 300 });
    // The server reads one tunnel's frames in order: once add is answered, the sleep sent before it was taken.
    expect(await echo.add({ a: 0, b: 0 })).to.equal(0);
    server.kill('SIGTERM');
    expect(await running).to.deep.equal({ slept: 300 });
    expect(await exitOf(server)).to.deep.equal({ code: 0, signal: null });
  });
});
