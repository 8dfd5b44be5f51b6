/**
 * Cross-language: the Go package (go/) against the Node server and the Node client against the Go server, over
 * real sockets on 127.0.0.1. The Go side runs as processes: the example Echo server (go/examples/echo-server) and
 * the interop client (go/internal/interop), one scenario per run, reporting in JSON lines. Without `go` on the
 * PATH these tests skip and the run prints one line naming what it skipped.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { expect } from 'chai';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { connect, createClient, type RpcClient } from '@tunnelrpc/client';
import { Echo, createEchoService } from '@tunnelrpc/examples';
import { defineService, type RpcError } from '@tunnelrpc/protocol';
import { RpcServer } from '@tunnelrpc/server';
import { Cleanup } from '../helpers/cleanup.js';
import { freePort } from '../helpers/boxes.js';
import { GARBAGE } from '../helpers/hostile-frames.js';
import { GoClientRun, buildGo, needGo, runGoTest, startGoServer, stopChild, type GoBinaries } from '../helpers/go.js';
import { REPO_ROOT, waitForLine } from '../helpers/processes.js';
import { until } from '../helpers/load.js';
import { expectErrorResponse, expectRejects, expectResult, frame, hex, rawRequest, RawTunnel } from '@tunnelrpc/test-kit';
import { mayHaveRunOf } from '../helpers/rpc-error.js';

/** Probe lets the Node server see what the Go client sent: typed values, deadlines, cancels, a call in flight. */
const Probe = defineService('Probe', {
  values: {
    input: z.strictObject({ big: z.bigint(), at: z.date(), blob: z.instanceof(Uint8Array) }),
    output: z.object({ big: z.bigint(), at: z.date(), blob: z.instanceof(Uint8Array) }),
  },
  hold: { input: z.strictObject({ ms: z.number().int() }), output: z.void() },
  slow: { input: z.strictObject({ ms: z.number().int().max(10_000) }), output: z.object({ slept: z.number() }) },
});

/** The values of Probe.values, as the Node client sees them through the Go server's Echo.echo. */
const Typed = defineService('Echo', {
  echo: {
    input: z.strictObject({ big: z.bigint(), at: z.date(), blob: z.instanceof(Uint8Array) }),
    output: z.object({ big: z.bigint(), at: z.date(), blob: z.instanceof(Uint8Array) }),
  },
});

/** isListening is set by a probe connection: true once something accepts on 127.0.0.1:port. */
const listening = new Set<number>();
function isListening(port: number): boolean {
  if (listening.has(port)) return true;
  const socket = netConnect(port, '127.0.0.1');
  socket.once('connect', () => {
    listening.add(port);
    socket.destroy();
  });
  socket.once('error', () => socket.destroy());
  return false;
}

interface ProbeState {
  holds: Array<{ remainingMs: number; abortedWith?: string }>;
  slowStarted: number;
}

describe('Go package interop', function () {
  this.timeout(120_000);
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  let go: GoBinaries;

  before(async function () {
    this.timeout(300_000); // the first compile of the Go programs
    go = await needGo(this);
  });

  it("passes the Go package's own tests (go test, offline from the vendored Debian sources)", async () => {
    const result = await runGoTest();
    expect(result.code, result.output).to.equal(0);
    expect(result.output).to.match(/^ok\s+github\.com\/tunnelrpc\/tunnelrpc\/go\s/m);
  });

  it('runs the README\'s net/rpc example as written: the server and client blocks of "From net/rpc"', async () => {
    const port = await freePort();
    const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
    const block = (name: string): string => {
      const match = new RegExp(`<!-- go: ${name} -->\\n\`\`\`go\\n([\\s\\S]*?)\\n\`\`\`\\n`).exec(readme);
      if (match === null) throw new Error(`README.md has no go block marked ${name}`);
      return match[1]!;
    };
    const dir = join(REPO_ROOT, 'go', '.readme');
    cleanup.defer(() => rm(dir, { recursive: true, force: true }));
    const programs: Record<string, string> = {
      server: block('server').replace('":1234"', `"127.0.0.1:${port}"`),
      client: block('client').replace('"localhost:1234"', `"127.0.0.1:${port}"`),
    };
    for (const [name, source] of Object.entries(programs)) {
      await mkdir(join(dir, name), { recursive: true });
      await writeFile(join(dir, name, 'main.go'), source);
      await buildGo(`./.readme/${name}`, join(dir, name, 'program'));
    }
    const server = cleanup.add(spawn(join(dir, 'server', 'program'), { stdio: 'ignore' }), stopChild);
    await until(() => server.exitCode !== null || isListening(port));
    const client = spawn(join(dir, 'client', 'program'), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    client.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    client.stderr.resume();
    const [code] = (await once(client, 'close')) as [number | null];
    expect(code, stdout).to.equal(0);
    expect(stdout).to.equal('Arith: 7*8=56\nArith: 7/8=0 remainder 7\nArith: 6*7 = 42\nArith: 1/0 failed with INTERNAL - may have run: true\n');
  });

  it('starts the Go example server with `pnpm example:go-server --port 0`, printing the Node example\'s listening line', async () => {
    const child = cleanup.add(spawn('sh', [join(REPO_ROOT, 'go', 'example-server.sh'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] }), stopChild);
    const [line] = await waitForLine(child, /^listening .*/);
    expect(line).to.match(/^listening http:\/\/127\.0\.0\.1:\d+\/_rpc \(loopback only; --host 0\.0\.0\.0 listens on every interface\)$/);
    const scripts = (JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts['example:go-server']).to.equal('sh go/example-server.sh');
  });

  describe('Go client -> Node server', () => {
    async function nodeServer(): Promise<{ server: RpcServer; address: string; probe: ProbeState }> {
      const probe: ProbeState = { holds: [], slowStarted: 0 };
      const server = new RpcServer({ shutdownTimeout: 10_000, logger: () => undefined }).register(Echo, createEchoService()).register(Probe, {
        values: ({ big, at, blob }) => {
          // The schema made them a bigint, a Date and bytes: the Go int64, time.Time and []byte arrived typed.
          return { big: big + 1n, at: new Date(at.getTime() + 1), blob: Uint8Array.from(blob).reverse() };
        },
        hold: async (_params, ctx) => {
          const entry: { remainingMs: number; abortedWith?: string } = { remainingMs: ctx.deadline - Date.now() };
          probe.holds.push(entry);
          await once(ctx.signal, 'abort');
          entry.abortedWith = (ctx.signal.reason as RpcError).code;
          throw ctx.signal.reason;
        },
        slow: async ({ ms }) => {
          probe.slowStarted++;
          await delay(ms);
          return { slept: ms };
        },
      });
      cleanup.defer(() => server.close());
      const { url } = await server.listen(0, '127.0.0.1');
      return { server, address: new URL(url).host, probe };
    }

    it('makes a typed call and carries int64 as bigint, time.Time as Date and []byte as bytes, both ways', async () => {
      const { address } = await nodeServer();
      const run = new GoClientRun(cleanup, go, address, 'typed');
      const result = await run.line();
      expect(result).to.deep.equal({
        sum: 3,
        addError: '<nil>',
        valuesError: '<nil>',
        big: '9007199254740994',
        at: '2023-11-14T22:13:20.124Z',
        blob: Buffer.from([3, 2, 1]).toString('base64'),
      });
    });

    it('answers 1,000 concurrent calls on one connection', async () => {
      const { address } = await nodeServer();
      const result = await new GoClientRun(cleanup, go, address, 'concurrent').line();
      expect(result).to.deep.equal({ correct: 1000, failures: 0 });
    });

    it('sends a context deadline as meta.timeout and fails the call DEADLINE_EXCEEDED', async () => {
      const { address, probe } = await nodeServer();
      const result = await new GoClientRun(cleanup, go, address, 'deadline').line();
      expect(result).to.include({ code: 'DEADLINE_EXCEEDED', mayHaveRun: true });
      // The handler saw the Go context's 300 ms, not the server's 30 s default.
      expect(probe.holds).to.have.length(1);
      expect(probe.holds[0]!.remainingMs).to.be.at.most(300);
      await until(() => probe.holds[0]!.abortedWith !== undefined);
    });

    it('sends a cancel when the context is cancelled, and the handler is aborted CANCELLED', async () => {
      const { address, probe } = await nodeServer();
      const run = new GoClientRun(cleanup, go, address, 'cancel');
      expect(await run.line()).to.deep.equal({ waiting: 'cancel' });
      await until(() => probe.holds.length === 1);
      run.send('go');
      expect(await run.line()).to.include({ code: 'CANCELLED', mayHaveRun: true });
      await until(() => probe.holds[0]!.abortedWith !== undefined);
      expect(probe.holds[0]!.abortedWith).to.equal('CANCELLED');
    });

    it('ends failed calls with the coded *Error: every code of the closed list, INTERNAL, UNIMPLEMENTED, INVALID_ARGUMENT', async () => {
      const { address } = await nodeServer();
      const result = await new GoClientRun(cleanup, go, address, 'errors').line<{
        fail: Record<string, { code: string; message: string; mayHaveRun: boolean }>;
        crash: { code: string; message: string; mayHaveRun: boolean };
        unknown: { code: string; mayHaveRun: boolean };
        badParams: { code: string; mayHaveRun: boolean };
      }>();
      expect(Object.keys(result.fail)).to.have.length(16);
      for (const [code, error] of Object.entries(result.fail)) {
        expect(error, code).to.deep.equal({ code, message: `asked for ${code}`, mayHaveRun: true });
      }
      expect(result.crash).to.include({ code: 'INTERNAL', mayHaveRun: true });
      expect(result.crash.message).not.to.include('secret');
      expect(result.unknown).to.include({ code: 'UNIMPLEMENTED', mayHaveRun: false });
      expect(result.badParams).to.include({ code: 'INVALID_ARGUMENT', mayHaveRun: false });
    });

    it('honours a graceful goaway: the call in flight finishes, a new call fails UNAVAILABLE, not run', async () => {
      const { server, address, probe } = await nodeServer();
      const run = new GoClientRun(cleanup, go, address, 'goaway');
      expect(await run.line()).to.deep.equal({ waiting: 'goaway' });
      await until(() => probe.slowStarted === 1);
      const closed = server.close();
      const result = await run.line<{ inflightError: string; slept: number; after: { code: string; mayHaveRun: boolean } }>();
      await closed;
      expect(result.inflightError).to.equal('<nil>');
      expect(result.slept).to.equal(300);
      expect(result.after).to.include({ code: 'UNAVAILABLE', mayHaveRun: false });
    });
  });

  describe('Node client -> Go server', () => {
    async function open(url: string | string[], options: Parameters<typeof connect>[1] = {}): Promise<RpcClient> {
      return cleanup.add(await connect(url, options), (client) => client.close());
    }

    it('makes a typed call, and a bigint, a Date and bytes come back typed through the Go server', async () => {
      const server = await startGoServer(cleanup, go);
      const client = await open(server.url);
      expect(await createClient(Echo, client).add({ a: 1, b: 2 })).to.equal(3);
      const sent = { big: 2n ** 62n + 1n, at: new Date(1_700_000_000_123), blob: new Uint8Array([0, 1, 255]) };
      const back = await createClient(Typed, client).echo(sent);
      expect(back.big).to.equal(sent.big);
      expect(back.at.getTime()).to.equal(sent.at.getTime());
      expect([...back.blob]).to.deep.equal([0, 1, 255]);
    });

    it('answers 1,000 concurrent calls on one connection', async () => {
      const server = await startGoServer(cleanup, go);
      const client = await open(server.url);
      const echo = createClient(Echo, client);
      const sums = await Promise.all(Array.from({ length: 1000 }, (_, i) => echo.add({ a: i, b: 1 })));
      expect(sums).to.deep.equal(Array.from({ length: 1000 }, (_, i) => i + 1));
    });

    it('answers DEADLINE_EXCEEDED at meta.timeout and CANCELLED at a cancel, each once, the late result dropped', async () => {
      const server = await startGoServer(cleanup, go);
      const tunnel = cleanup.add(await RawTunnel.open(server.port), (each) => each.destroy());
      tunnel.write(rawRequest(3, 'Echo.sleep', { ms: 300 }, { timeout: 50 }));
      expect(expectErrorResponse(await tunnel.next(), 3, 'DEADLINE_EXCEEDED').data).to.deep.equal({ mayHaveRun: true });
      tunnel.write(rawRequest(4, 'Echo.sleep', { ms: 300 }));
      tunnel.write(frame(hex('92 03 04')));
      expectErrorResponse(await tunnel.next(), 4, 'CANCELLED');
      // Both methods return within 300 ms; this longer sleep's answer must be the next frame, nothing for 3 or 4.
      tunnel.write(rawRequest(5, 'Echo.sleep', { ms: 600 }));
      expect(expectResult(await tunnel.next(), 5)).to.deep.equal({ slept: 600 });
      const client = await open(server.url);
      await expectRejects(client.call('Echo.sleep', { ms: 5000 }, { timeout: 100 }), 'DEADLINE_EXCEEDED');
      const abort = new AbortController();
      const call = client.call('Echo.sleep', { ms: 5000 }, { signal: abort.signal });
      abort.abort();
      await expectRejects(call, 'CANCELLED');
    });

    it('answers coded errors: a method\'s code, INTERNAL without the plain error\'s text, UNIMPLEMENTED, INVALID_ARGUMENT', async () => {
      const server = await startGoServer(cleanup, go);
      const client = await open(server.url);
      const notFound = await expectRejects(client.call('Echo.fail', { code: 'NOT_FOUND', message: 'no such key' }), 'NOT_FOUND', 'no such key');
      expect(mayHaveRunOf(notFound)).to.equal(true);
      const crash = await expectRejects(client.call('Echo.crash', undefined), 'INTERNAL');
      expect(crash.message).not.to.include('secret');
      expect(mayHaveRunOf(await expectRejects(client.call('Echo.nope', undefined), 'UNIMPLEMENTED'))).to.equal(false);
      expect(mayHaveRunOf(await expectRejects(client.call('Echo.add', { a: 1, b: 'x' }), 'INVALID_ARGUMENT'))).to.equal(false);
      expect(mayHaveRunOf(await expectRejects(client.call('Echo.ticks', { n: 3 }), 'UNIMPLEMENTED'))).to.equal(false);
    });

    it('drains gracefully on SIGTERM: goaway with lastId, the call in flight answered, then close and exit 0', async () => {
      const server = await startGoServer(cleanup, go);
      const tunnel = cleanup.add(await RawTunnel.open(server.port), (each) => each.destroy());
      tunnel.write(rawRequest(5, 'Echo.sleep', { ms: 300 }));
      tunnel.write(frame(hex('92 06 01')));
      expect((await tunnel.next()).type).to.equal(7); // the pong: request 5 was taken
      const exited = once(server.child, 'exit');
      server.child.kill('SIGTERM');
      const goaway = await tunnel.next();
      expect(goaway).to.deep.include({ type: 8, lastId: 5, code: 'UNAVAILABLE' });
      expect(expectResult(await tunnel.next(), 5)).to.deep.equal({ slept: 300 });
      await tunnel.closed;
      const [code] = (await exited) as [number | null];
      expect(code).to.equal(0);
    });

    describe('the Node server\'s hostile peers against the Go server', () => {
      for (const { name, bytes, code } of GARBAGE) {
        it(`answers ${name} with goaway ${code}, closes that tunnel, and keeps the other working`, async () => {
          const server = await startGoServer(cleanup, go);
          const client = await open(server.url);
          const echo = createClient(Echo, client);
          const raw = cleanup.add(await RawTunnel.open(server.port), (each) => each.destroy());
          raw.write(bytes());
          const messages = await raw.messagesUntilClose();
          expect(messages.map((message) => message.type), JSON.stringify(messages).slice(0, 300)).to.deep.equal([8]);
          expect(messages[0]).to.deep.include({ lastId: 0, code });
          const [sum, value, slept] = await Promise.all([echo.add({ a: 20, b: 22 }), echo.echo({ still: ['fine'] }), echo.sleep({ ms: 1 })]);
          expect([sum, value, slept]).to.deep.equal([42, { still: ['fine'] }, { slept: 1 }]);
        });
      }
    });

    it('spreads a pool over two Go processes and keeps answering when one is SIGKILLed', async () => {
      const servers = [await startGoServer(cleanup, go), await startGoServer(cleanup, go)];
      const client = await open(servers.map((server) => server.url), { minReconnectDelay: 20, maxReconnectDelay: 200 });
      await until(() => client.endpoints.every((endpoint) => endpoint.state === 'ready'));
      const add = (i: number): Promise<unknown> => client.call('Echo.add', { a: i, b: 1 }, { idempotent: true });
      const before = await Promise.all(Array.from({ length: 200 }, (_, i) => add(i)));
      expect(before).to.deep.equal(Array.from({ length: 200 }, (_, i) => i + 1));
      expect(client.endpoints.map((endpoint) => endpoint.sent > 0)).to.deep.equal([true, true]);
      // Calls in flight while one process dies end with a result or, retried as idempotent, on the survivor.
      const during = Array.from({ length: 200 }, (_, i) => add(i));
      await stopChild(servers[0]!.child);
      expect(await Promise.all(during)).to.deep.equal(Array.from({ length: 200 }, (_, i) => i + 1));
      const after = await Promise.all(Array.from({ length: 200 }, (_, i) => add(i)));
      expect(after).to.deep.equal(Array.from({ length: 200 }, (_, i) => i + 1));
    });
  });
});
