/**
 * The Echo fixture end to end through the typed client: values of every MessagePack kind, deadlines, cancellation,
 * server errors, crashes, notifications and unknown methods, over one real tunnel.
 */
import { expect } from 'chai';
import { connect, createClient, RpcError, type RpcClient, type TypedClient } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import type { ErrorCode } from '@tunnelrpc/protocol';
import { Cleanup } from '../helpers/cleanup.js';
import { expectRejects } from '@tunnelrpc/test-kit';
import { mayHaveRunOf } from '../helpers/rpc-error.js';
import { startEchoServer, type EchoServer } from '../helpers/servers.js';

describe('Echo over a real tunnel', () => {
  const cleanup = new Cleanup();
  let server: EchoServer;
  let client: RpcClient;
  let echo: TypedClient<typeof Echo>;

  beforeEach(async () => {
    server = await startEchoServer(cleanup);
    client = cleanup.add(await connect(server.url), (each) => each.close());
    echo = createClient(Echo, client);
  });
  afterEach(() => cleanup.run());

  describe('echo', () => {
    const values: Array<[string, unknown]> = [
      ['null', null],
      ['true', true],
      ['false', false],
      ['zero', 0],
      ['a negative integer', -123_456],
      ['2^53 - 1', Number.MAX_SAFE_INTEGER],
      ['a float', 3.141592653589793],
      ['an empty string', ''],
      ['a unicode string', 'héllo wörld — 日本語 — Ελληνικά — emoji 🎉👩‍👩‍👧'],
      ['an empty array', []],
      ['an empty map', {}],
      ['a mixed array', [1, 'two', null, true, 2.5, [3, [4, [5]]], { six: 6 }]],
      [
        'nested maps',
        { user: { name: 'Ada', tags: ['a', 'b'], address: { city: 'London', lines: ['1 Main St', ''] } }, n: 1, ok: false, none: null },
      ],
      ['a map with non-identifier keys', { 'with space': 1, 'ünïcödé': 2, '': 3, '0': 4 }],
    ];
    for (const [name, value] of values) {
      it(`returns ${name} unchanged`, async () => {
        expect(await echo.echo(value)).to.deep.equal(value);
      });
    }

    it('returns a Buffer as the same bytes', async () => {
      const bytes = Buffer.from([0x00, 0x01, 0x7f, 0x80, 0xc1, 0xff]);
      const result = await echo.echo(bytes);
      expect(result).to.be.instanceOf(Uint8Array);
      expect(Buffer.from(result as Uint8Array).equals(bytes)).to.equal(true);
    });

    it('returns a Uint8Array as the same bytes', async () => {
      const bytes = new Uint8Array(1000).map((_, i) => (i * 7) & 0xff);
      const result = await echo.echo({ payload: bytes });
      const payload = (result as { payload: unknown }).payload;
      expect(payload).to.be.instanceOf(Uint8Array);
      expect(Buffer.from(payload as Uint8Array).equals(Buffer.from(bytes))).to.equal(true);
    });

    it('returns a Date (MessagePack timestamp) as an equal Date, with and without milliseconds', async () => {
      const withMs = new Date('2024-02-29T12:34:56.789Z');
      const whole = new Date('2001-09-09T01:46:40.000Z');
      const result = await echo.echo({ withMs, whole, list: [new Date(0)] });
      expect(result).to.deep.equal({ withMs, whole, list: [new Date(0)] });
      expect((result as { withMs: unknown }).withMs).to.be.instanceOf(Date);
    });

    it('returns a 1 MiB string unchanged', async () => {
      const big = 'abcdefghijklmnop'.repeat(64 * 1024);
      expect(big.length).to.equal(1024 * 1024);
      const result = await echo.echo(big);
      expect(result).to.be.a('string');
      expect((result as string).length).to.equal(big.length);
      expect(result === big).to.equal(true);
    });

    it('returns a 1 MiB string sent between two small calls on the same tunnel', async () => {
      const big = 'x'.repeat(1024 * 1024);
      const [first, large, last] = await Promise.all([echo.add({ a: 1, b: 1 }), echo.echo(big), echo.add({ a: 2, b: 2 })]);
      expect(first).to.equal(2);
      expect(large === big).to.equal(true);
      expect(last).to.equal(4);
    });
  });

  describe('add', () => {
    it('adds two numbers', async () => {
      expect(await echo.add({ a: 1, b: 2 })).to.equal(3);
      expect(await echo.add({ a: -1.5, b: 0.25 })).to.equal(-1.25);
    });

    it('rejects a string operand with INVALID_ARGUMENT and keeps the tunnel open', async () => {
      const error = await expectRejects(echo.add({ a: 1, b: 'two' } as unknown as { a: number; b: number }), 'INVALID_ARGUMENT', 'Echo.add');
      expect(error.message).to.include('b');
      expect(error.data).to.have.property('issues').that.is.an('array').with.length.greaterThan(0);
      expect(await echo.add({ a: 2, b: 2 })).to.equal(4);
    });

    it('rejects an extra key with INVALID_ARGUMENT (strict schema)', async () => {
      await expectRejects(echo.add({ a: 1, b: 2, c: 3 } as unknown as { a: number; b: number }), 'INVALID_ARGUMENT', 'Echo.add');
      expect(await echo.add({ a: 3, b: 4 })).to.equal(7);
    });

    it('rejects missing params with INVALID_ARGUMENT through client.call', async () => {
      await expectRejects(client.call('Echo.add'), 'INVALID_ARGUMENT', 'Echo.add');
      await expectRejects(client.call('Echo.add', [1, 2]), 'INVALID_ARGUMENT', 'Echo.add');
    });
  });

  describe('sleep', () => {
    it('resolves with the time slept', async () => {
      expect(await echo.sleep({ ms: 5 })).to.deep.equal({ slept: 5 });
    });

    it('fails with DEADLINE_EXCEEDED past its deadline, and the server aborts the handler', async () => {
      const error = await expectRejects(echo.sleep({ ms: 60_000 }, { timeout: 100 }), 'DEADLINE_EXCEEDED');
      expect(error).to.be.instanceOf(RpcError);
      // The server's own deadline or the client's cancel aborts the handler; either way it stops.
      await server.echo.sleepsAborted(1);
      expect(server.echo.aborted[0]).to.be.instanceOf(RpcError);
      expect(['DEADLINE_EXCEEDED', 'CANCELLED']).to.include((server.echo.aborted[0] as RpcError).code);
      expect(await echo.add({ a: 1, b: 1 })).to.equal(2);
    });

    it('fails with CANCELLED when its AbortSignal fires, while other calls on the tunnel go on', async () => {
      const controller = new AbortController();
      const cancelled = echo.sleep({ ms: 60_000 }, { signal: controller.signal });
      const other = echo.sleep({ ms: 50 });
      await server.echo.sleepsStarted(2);
      expect(client.pendingCalls).to.equal(2);

      controller.abort();
      const error = await expectRejects(cancelled, 'CANCELLED');
      expect(mayHaveRunOf(error)).to.equal(true);
      expect(client.pendingCalls).to.equal(1);
      expect(await echo.add({ a: 5, b: 6 })).to.equal(11);
      expect(await other).to.deep.equal({ slept: 50 });
      // The cancel reached the server: the handler's signal was aborted with CANCELLED.
      await server.echo.sleepsAborted(1);
      expect((server.echo.aborted[0] as RpcError).code).to.equal('CANCELLED');
      expect(server.echo.aborted).to.have.length(1);
    });

    it('fails with CANCELLED, unsent, when the signal is aborted already', async () => {
      const error = await expectRejects(echo.sleep({ ms: 10 }, { signal: AbortSignal.abort() }), 'CANCELLED');
      expect(mayHaveRunOf(error)).to.equal(false);
      expect(client.pendingCalls).to.equal(0);
    });
  });

  describe('fail', () => {
    const codes: ErrorCode[] = ['NOT_FOUND', 'PERMISSION_DENIED', 'ALREADY_EXISTS', 'FAILED_PRECONDITION', 'UNAUTHENTICATED', 'OUT_OF_RANGE', 'UNAVAILABLE'];
    for (const code of codes) {
      it(`rejects with ${code} and the handler's message`, async () => {
        const error = await expectRejects(echo.fail({ code, message: `failing with ${code}: ✗` }), code);
        expect(error.message).to.equal(`failing with ${code}: ✗`);
        expect(error.data, 'a handler error says the call may have run').to.deep.equal({ mayHaveRun: true });
      });
    }

    it('keeps the tunnel open after an error response', async () => {
      await expectRejects(echo.fail({ code: 'ABORTED', message: 'once' }), 'ABORTED');
      expect(await echo.add({ a: 1, b: 2 })).to.equal(3);
    });
  });

  describe('crash', () => {
    it('rejects with INTERNAL without the handler text, and logs the detail on the server', async () => {
      const error = await expectRejects(echo.crash(), 'INTERNAL', 'Echo.crash');
      expect(error.message).not.to.include('secret');
      expect(error.message).not.to.include('crash():');
      expect(JSON.stringify(error.data ?? null)).not.to.include('secret');
      expect(server.logs.some((line) => line.includes('Echo.crash'))).to.equal(true);
      expect(await echo.add({ a: 1, b: 2 })).to.equal(3);
    });
  });

  describe('notify and count', () => {
    it('counts three notifications that precede a call on the same tunnel', async () => {
      echo.notify('one');
      echo.notify({ two: 2 });
      echo.notify([3]);
      expect(await echo.count()).to.equal(3);
      expect(client.pendingCalls).to.equal(0);
    });

    it('counts only the notifications of its own server', async () => {
      expect(await echo.count()).to.equal(0);
      echo.notify(null);
      expect(await echo.count()).to.equal(1);
    });

    it('does not answer a notification for an unknown method, and logs it', async () => {
      client.notify('Echo.nothingHere', 1);
      echo.notify(2);
      expect(await echo.count()).to.equal(1);
      expect(server.logs.some((line) => line.includes('Echo.nothingHere'))).to.equal(true);
    });
  });

  describe('unknown methods', () => {
    for (const method of ['Echo.nope', 'Nope.echo', 'echo', '', 'Echo.__proto__', '__proto__', 'constructor', 'toString', 'Echo.hasOwnProperty']) {
      it(`rejects ${JSON.stringify(method)} with UNIMPLEMENTED and keeps the tunnel open`, async () => {
        const error = await expectRejects(client.call(method, {}), 'UNIMPLEMENTED');
        expect(error.message).to.include(JSON.stringify(method));
        expect(await echo.add({ a: 1, b: 2 })).to.equal(3);
        expect(({} as Record<string, unknown>)['polluted']).to.equal(undefined);
      });
    }
  });
});
