/**
 * The `tunnelrpc call` CLI (packages/client/dist/cli.js), run as a child process against a hand-written server:
 * exit 0 with the result as JSON on stdout, exit 1 with `CODE: message` for an RPC error, exit 2 with a sentence
 * for usage, dial and handshake failures.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { type ScriptedPeer, ScriptedServer } from '@tunnelrpc/test-kit';
import { cleanup, freePort } from './helpers.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
// The opening meta of a stream with the client defaults (PROTOCOL.md 12.1).
const STREAM_META = { credit: 32, maxMessageSize: 131072 };

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** runCli runs the CLI with `args` and resolves with its exit code and output once it exits. */
function runCli(args: string[]): Promise<CliRun> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  return once(child, 'close').then(([code]) => ({ code: code as number | null, stdout, stderr }));
}

/**
 * acceptCall accepts the next tunnel, answers the CLI's tunnelrpc.Reflection.list (with `services`, or as a server
 * that does not serve reflection), and reads the call's request; returns the peer, the CONNECT head and the request.
 */
async function acceptCall(server: ScriptedServer, services?: unknown[]) {
  const { peer, head } = await answerReflection(server, services);
  const request = await peer.nextRequest();
  return { peer, head, request };
}

/**
 * answerReflection accepts the CLI's next tunnel and answers the tunnelrpc.Reflection.list it opens with, listing
 * `services` (or UNIMPLEMENTED, as a server without reflection answers, when there are none).
 */
async function answerReflection(server: ScriptedServer, services?: unknown[]) {
  const peer = await server.nextPeer();
  const head = await peer.head;
  await peer.accept();
  const reflection = await peer.nextRequest();
  expect(reflection.method).to.equal('tunnelrpc.Reflection.list');
  if (services === undefined) await peer.fail(reflection.id, 'UNIMPLEMENTED', 'method "tunnelrpc.Reflection.list" is not implemented by this server');
  else await peer.respond(reflection.id, { services });
  return { peer, head };
}

/** expectGracefulClose asserts that the CLI closed the tunnel with goaway UNAVAILABLE and nothing else after. */
async function expectGracefulClose(peer: ScriptedPeer, before: unknown[] = []): Promise<void> {
  expect(await peer.messagesUntilEnd()).to.deep.equal([...before, { type: 8, lastId: 0, code: 'UNAVAILABLE', message: 'client closing' }]);
}

describe('tunnelrpc call (CLI)', () => {
  afterEach(cleanup);

  describe('success', () => {
    it('prints the result as JSON on stdout and exits 0', async () => {
      const server = await ScriptedServer.start();
      const run = runCli(['call', server.url, 'Echo.add', '{"a":1,"b":2}']);
      const { peer, head, request } = await acceptCall(server);
      expect(head).to.equal(`CONNECT /_rpc HTTP/1.0\r\nHost: 127.0.0.1:${server.port}\r\n\r\n`);
      // The CLI opens every call as a stream (it knows no contract): a unary method ignores the stream meta.
      expect(request).to.deep.equal({ type: 0, id: request.id, method: 'Echo.add', params: { a: 1, b: 2 }, meta: { timeout: 30000, ...STREAM_META } });
      await peer.respond(request.id, { sum: 3, list: [1, 'x', null] });
      await expectGracefulClose(peer);
      expect(await run).to.deep.equal({ code: 0, stdout: '{"sum":3,"list":[1,"x",null]}\n', stderr: '' });
    });

    it('sends -H headers in the CONNECT head and in meta.headers, and --timeout as meta.timeout', async () => {
      const server = await ScriptedServer.start();
      const run = runCli(['call', server.url, 'Echo.echo', '"hi"', '--timeout', '1500', '-H', 'Authorization: Bearer abc', '--header', 'X-Trace:t-1']);
      const { peer, head, request } = await acceptCall(server);
      expect(head).to.equal(`CONNECT /_rpc HTTP/1.0\r\nHost: 127.0.0.1:${server.port}\r\nAuthorization: Bearer abc\r\nX-Trace: t-1\r\n\r\n`);
      expect(request.params).to.equal('hi');
      expect(request.meta).to.deep.equal({ timeout: 1500, headers: { authorization: 'Bearer abc', 'x-trace': 't-1' }, ...STREAM_META });
      await peer.respond(request.id, 'hi');
      await expectGracefulClose(peer);
      expect(await run).to.deep.equal({ code: 0, stdout: '"hi"\n', stderr: '' });
    });

    it('sends params nil when no JSON is given', async () => {
      const server = await ScriptedServer.start();
      const run = runCli(['call', server.url, 'Echo.count']);
      const { peer, request } = await acceptCall(server);
      expect(request.params).to.equal(null);
      expect(request.meta).to.deep.equal({ timeout: 30000, ...STREAM_META });
      await peer.respond(request.id, null);
      expect(await run).to.deep.equal({ code: 0, stdout: 'null\n', stderr: '' });
    });

    it('prints bytes as base64 and integers beyond 2^53 as decimal strings', async () => {
      const server = await ScriptedServer.start();
      const run = runCli(['call', server.url, 'Blob.get']);
      const { peer, request } = await acceptCall(server);
      await peer.respond(request.id, { bytes: Buffer.from('hi'), big: 2n ** 60n });
      expect(await run).to.deep.equal({ code: 0, stdout: '{"bytes":"aGk=","big":"1152921504606846976"}\n', stderr: '' });
    });

    it('works over a unix socket URL', async () => {
      const server = await ScriptedServer.start({ unix: true });
      const run = runCli(['call', `unix:${server.socketPath}`, 'Echo.echo', '[1,2]']);
      const { peer, head, request } = await acceptCall(server);
      expect(head).to.equal('CONNECT /_rpc HTTP/1.0\r\nHost: localhost\r\n\r\n');
      await peer.respond(request.id, request.params);
      expect(await run).to.deep.equal({ code: 0, stdout: '[1,2]\n', stderr: '' });
    });
  });

  describe('RPC errors (exit 1)', () => {
    it('prints CODE: message on stderr and exits 1 for an error response', async () => {
      const server = await ScriptedServer.start();
      const run = runCli(['call', server.url, 'Users.get', '{"id":7}']);
      const { peer, request } = await acceptCall(server);
      await peer.fail(request.id, 'NOT_FOUND', 'no user 7', { id: 7 });
      await expectGracefulClose(peer);
      expect(await run).to.deep.equal({ code: 1, stdout: '', stderr: 'NOT_FOUND: no user 7\ndata: {"id":7}\n' });
    });

    it('exits 1 with DEADLINE_EXCEEDED when the server is silent past --timeout, cancelling the call', async () => {
      const server = await ScriptedServer.start();
      const run = runCli(['call', server.url, 'Slow.op', '--timeout', '200']);
      const { peer, request } = await acceptCall(server);
      await expectGracefulClose(peer, [{ type: 3, id: request.id }]);
      const { code, stdout, stderr } = await run;
      expect({ code, stdout }).to.deep.equal({ code: 1, stdout: '' });
      expect(stderr).to.match(/^DEADLINE_EXCEEDED: Slow\.op passed its deadline of 200 ms; it may have run on the server\n$/);
    });

    it('exits 1 with UNAVAILABLE when the server drops the tunnel during the call', async () => {
      const server = await ScriptedServer.start();
      const run = runCli(['call', server.url, 'Echo.echo', '1']);
      const { peer } = await acceptCall(server);
      peer.socket.destroy();
      const { code, stdout, stderr } = await run;
      expect({ code, stdout }).to.deep.equal({ code: 1, stdout: '' });
      expect(stderr).to.match(/^UNAVAILABLE: Echo\.echo failed: lost the tunnel to http:\/\/127\.0\.0\.1:\d+\/_rpc.*\n$/);
    });
  });

  describe('dial and handshake failures (exit 2)', () => {
    it('prints a sentence naming the status and body and exits 2 when the CONNECT is refused with 401', async () => {
      const server = await ScriptedServer.start();
      const run = runCli(['call', server.url, 'Echo.echo', '1', '-H', 'Authorization: Bearer wrong']);
      const peer = await server.nextPeer();
      expect(await peer.head).to.include('Authorization: Bearer wrong\r\n');
      const body = 'bad token';
      // Marked as a tunnelrpc server's own refusal (PROTOCOL.md 2.3): the sentence names no proxy.
      await peer.write(`HTTP/1.0 401 Unauthorized\r\nConnection: close\r\nTunnelrpc-Server: wire-v1\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      peer.socket.end();
      expect(await run).to.deep.equal({
        code: 2,
        stdout: '',
        stderr: `tunnelrpc: CONNECT ${server.url} refused with HTTP 401 Unauthorized: bad token [UNAUTHENTICATED]\n`,
      });
    });

    it("blames the server behind a proxy, not the proxy's recipe, for an unmarked 502 to --upgrade", async () => {
      const server = await ScriptedServer.start();
      const run = runCli(['call', server.url, 'Echo.echo', '1', '--upgrade']);
      const peer = await server.nextPeer();
      await peer.head;
      await peer.write('HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 60\r\nConnection: close\r\n\r\n<html><head><title>502 Bad Gateway</title></head></html>\r\n\r\n');
      peer.socket.end();
      const { code, stderr } = await run;
      expect(code).to.equal(2);
      expect(stderr).to.include('refused with HTTP 502 Bad Gateway: 502 Bad Gateway (not from a tunnelrpc server').and.include('could not reach the tunnelrpc server behind it').and.include('[UNAVAILABLE]');
      expect(stderr).to.not.include('forwards the Upgrade');
    });

    it('prints a sentence and exits 2 when nothing listens at the URL', async () => {
      const port = await freePort();
      const { code, stdout, stderr } = await runCli(['call', `http://127.0.0.1:${port}/_rpc`, 'Echo.echo', '1']);
      expect({ code, stdout }).to.deep.equal({ code: 2, stdout: '' });
      expect(stderr).to.equal(
        `tunnelrpc: cannot connect to http://127.0.0.1:${port}/_rpc: ECONNREFUSED (nothing listens there; check the host and port, or start the server) [UNAVAILABLE]\n`,
      );
    });

    it('exits 2 without dialing for a -H value with CR LF', async () => {
      const server = await ScriptedServer.start();
      const { code, stdout, stderr } = await runCli(['call', server.url, 'Echo.echo', '1', '-H', 'X-A: b\r\nX-Injected: 1']);
      expect({ code, stdout }).to.deep.equal({ code: 2, stdout: '' });
      expect(stderr).to.equal('tunnelrpc: handshake header "X-A" has a character HTTP does not allow (CR, LF or a control) [INVALID_ARGUMENT]\n');
      expect(server.peers).to.have.length(0);
    });

    it('exits 2 naming the accepted forms for an unsupported URL', async () => {
      const { code, stdout, stderr } = await runCli(['call', 'ftp://127.0.0.1/_rpc', 'Echo.echo', '1']);
      expect({ code, stdout }).to.deep.equal({ code: 2, stdout: '' });
      expect(stderr).to.include('cannot use "ftp://127.0.0.1/_rpc" as a tunnelrpc URL').and.include('[INVALID_ARGUMENT]');
    });
  });

  describe('usage errors (exit 2)', () => {
    const cases: [string, string[], string][] = [
      ['params that are not JSON', ['Echo.echo', '{a:1}'], 'tunnelrpc: the params are not valid JSON'],
      ['a --timeout that is not a whole number', ['Echo.echo', '1', '--timeout', '1.5'], 'tunnelrpc: --timeout must be a whole number of ms (0: no deadline); got 1.5'],
      ['a negative --timeout', ['Echo.echo', '1', '--timeout=-5'], 'tunnelrpc: --timeout must be a whole number of ms (0: no deadline); got -5'],
      ['a -H without a colon', ['Echo.echo', '1', '-H', 'NoColon'], `tunnelrpc: -H takes 'Name: value'; got "NoColon"`],
      ['extra arguments', ['Echo.echo', '1', '2'], 'tunnelrpc: unexpected arguments after the JSON params: 2'],
      ['a missing method', [], 'tunnelrpc: call needs a URL and a Service.method'],
    ];
    for (const [what, rest, message] of cases) {
      it(`exits 2 with the usage for ${what}, without dialing`, async () => {
        const server = await ScriptedServer.start();
        const args = rest.length === 0 ? ['call', server.url] : ['call', server.url, ...rest];
        const { code, stdout, stderr } = await runCli(args);
        expect({ code, stdout }).to.deep.equal({ code: 2, stdout: '' });
        expect(stderr).to.include(message);
        expect(stderr).to.include('usage: tunnelrpc call URL Service.method');
        expect(server.peers).to.have.length(0);
      });
    }

    it('exits 2 with the usage for an unknown command', async () => {
      const { code, stdout, stderr } = await runCli(['get', 'http://127.0.0.1:1/_rpc', 'Echo.echo']);
      expect({ code, stdout }).to.deep.equal({ code: 2, stdout: '' });
      expect(stderr).to.equal(`tunnelrpc: unknown command "get"\n${stderr.slice(stderr.indexOf('usage:'))}`);
      expect(stderr).to.include('usage: tunnelrpc call URL Service.method');
    });

    it('exits 2 with the usage when run without arguments', async () => {
      const { code, stderr } = await runCli([]);
      expect(code).to.equal(2);
      expect(stderr).to.match(/^tunnelrpc: missing command\nusage: tunnelrpc call/);
    });
  });

  // A server's words reached the terminal as sent: ESC sequences repainted it and newlines forged lines.
  describe('peer text (escaped before it is shown)', () => {
    const ESC = '\x1b[2J\x1b[31m';
    const SHOWN = '\\u001b[2J\\u001b[31m';

    it('escapes an error response message, and keeps its data as JSON', async () => {
      const server = await ScriptedServer.start();
      const run = runCli(['call', server.url, 'Echo.echo', '1']);
      const { peer, request } = await acceptCall(server);
      await peer.fail(request.id, 'INTERNAL', `boom${ESC}\nFORGED: line`, { note: `x${ESC}` });
      expect(await run).to.deep.equal({ code: 1, stdout: '', stderr: `INTERNAL: boom${SHOWN}\\u000aFORGED: line\ndata: {"note":"x${SHOWN}"}\n` });
    });

    it('escapes a goaway code and message', async () => {
      const server = await ScriptedServer.start();
      const run = runCli(['call', server.url, 'Echo.echo', '1']);
      const { peer } = await acceptCall(server);
      await peer.send({ type: 8, lastId: 0, code: `EVIL${ESC}`, message: `bye${ESC}\r\nFORGED` });
      const { code, stderr } = await run;
      expect(code).to.equal(1);
      expect(stderr).to.include(`with goaway EVIL${SHOWN}: bye${SHOWN}\\u000d\\u000aFORGED`);
      expect(stderr).to.not.include('\x1b').and.not.include('\r');
      expect(stderr.split('\n').filter((line) => line.length > 0)).to.have.length(1);
    });

    it('escapes a refusal reason and body', async () => {
      const server = await ScriptedServer.start();
      const run = runCli(['call', server.url, 'Echo.echo', '1']);
      const peer = await server.nextPeer();
      await peer.head;
      const body = `bad token${ESC}\nFORGED`;
      await peer.write(`HTTP/1.0 401 Un${ESC}auth\r\nConnection: close\r\nTunnelrpc-Server: wire-v1\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      peer.socket.end();
      expect(await run).to.deep.equal({
        code: 2,
        stdout: '',
        stderr: `tunnelrpc: CONNECT ${server.url} refused with HTTP 401 Un${SHOWN}auth: bad token${SHOWN}\\u000aFORGED [UNAUTHENTICATED]\n`,
      });
    });

    it("escapes a proxy's Proxy-Authenticate scheme", async () => {
      const proxy = createServer((socket) => {
        socket.on('error', () => {});
        socket.once('data', () => socket.end(`HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: ${ESC}Basic realm="x"\r\nContent-Length: 0\r\n\r\n`));
      });
      proxy.listen(0, '127.0.0.1');
      await once(proxy, 'listening');
      try {
        const { code, stderr } = await runCli(['call', 'http://127.0.0.1:1/_rpc', 'Echo.echo', '1', '--proxy', `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`]);
        expect(code).to.equal(2);
        expect(stderr).to.include(`(it asks for ${SHOWN}Basic authentication)`);
        expect(stderr).to.not.include('\x1b');
      } finally {
        proxy.close();
      }
    });

    it('escapes method names from reflection in list', async () => {
      const server = await ScriptedServer.start();
      const run = runCli(['list', server.url]);
      const peer = await server.nextPeer();
      await peer.head;
      await peer.accept();
      const request = await peer.nextRequest();
      await peer.respond(request.id, { services: [{ name: `Ev${ESC}il`, methods: [{ name: 'm\nFORGED', kind: 'unary', idempotent: false, params: {}, result: {} }] }] });
      expect(await run).to.deep.equal({ code: 0, stdout: `Ev${SHOWN}il.m\\u000aFORGED unary\n`, stderr: '' });
    });
  });

  describe('params checked against the described schema', () => {
    const services = [{ name: 'Stock', methods: [{ name: 'reserve', kind: 'unary', idempotent: false, params: { type: 'object', properties: { sku: { type: 'string' }, n: { type: 'integer', minimum: 1 } }, required: ['sku', 'n'] }, result: {} }] }];

    it('sends the call when the params pass', async () => {
      const server = await ScriptedServer.start();
      const run = runCli(['call', server.url, 'Stock.reserve', '{"sku":"A1","n":2}']);
      const { peer, request } = await acceptCall(server, services);
      expect(request.params).to.deep.equal({ sku: 'A1', n: 2 });
      await peer.respond(request.id, { ok: true });
      expect(await run).to.deep.equal({ code: 0, stdout: '{"ok":true}\n', stderr: '' });
    });

    it('sends nothing, closes the tunnel and exits 1 with the issues when they fail', async () => {
      const server = await ScriptedServer.start();
      const run = runCli(['call', server.url, 'Stock.reserve', '{"sku":"A1","n":0}']);
      const { peer } = await answerReflection(server, services);
      await expectGracefulClose(peer);
      const { code, stdout, stderr } = await run;
      expect({ code, stdout }).to.deep.equal({ code: 1, stdout: '' });
      expect(stderr).to.match(/^INVALID_ARGUMENT: the params do not match the schema Stock\.reserve describes, so nothing was sent: n: Too small: expected number to be >=1 /);
    });

    it('exits 1 with UNIMPLEMENTED and the nearest names, sending nothing, for a method reflection does not list', async () => {
      const server = await ScriptedServer.start();
      const run = runCli(['call', server.url, 'Stock.reserv', '{}']);
      const { peer } = await answerReflection(server, services);
      await expectGracefulClose(peer);
      expect(await run).to.deep.equal({ code: 1, stdout: '', stderr: `UNIMPLEMENTED: ${server.url} has no method Stock.reserv; did you mean Stock.reserve? (tunnelrpc list ${server.url} shows every method)\n` });
    });
  });
});
