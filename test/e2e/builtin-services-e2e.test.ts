/**
 * The built-in services over real tunnels: tunnelrpc.Health (SERVING, NOT_FOUND, NOT_SERVING during close() before
 * the goaway) and tunnelrpc.Reflection (every method, its kind and JSON Schemas), each one option to turn off; and
 * the CLI's list, describe and `call -d @`.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { expect } from 'chai';
import { z } from 'zod';
import { connect, createClient, type ClientEvent } from '@tunnelrpc/client';
import { Health, Reflection, UNREPRESENTABLE_KEY, defineService } from '@tunnelrpc/protocol';
import { Cleanup } from '../helpers/cleanup.js';
import { REPO_ROOT } from '../helpers/processes.js';
import { expectRejects } from '@tunnelrpc/test-kit';
import { startEchoServer } from '../helpers/servers.js';

const CLI = join(REPO_ROOT, 'packages/client/dist/cli.js');

/** runCli runs the CLI with `args`, writes `stdin` to it, and resolves with its exit code and output. */
async function runCli(args: string[], stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  child.stdin.end(stdin);
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

const Odd = defineService('Odd', {
  stamp: { input: z.object({ at: z.date(), big: z.bigint() }), output: z.set(z.string()) },
});

describe('Built-in services', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  describe('tunnelrpc.Health', () => {
    it('answers SERVING for the server and a registered service, NOT_FOUND for another', async () => {
      const server = await startEchoServer(cleanup);
      const health = createClient(Health, cleanup.add(await connect(server.url), (each) => each.close()));
      expect(await health.check()).to.deep.equal({ status: 'SERVING' });
      expect(await health.check({})).to.deep.equal({ status: 'SERVING' });
      expect(await health.check({ service: 'Echo' })).to.deep.equal({ status: 'SERVING' });
      expect(await health.check({ service: 'tunnelrpc.Reflection' })).to.deep.equal({ status: 'SERVING' });
      expect(await health.check({ service: 'Nope' })).to.deep.equal({ status: 'NOT_FOUND' });
    });

    it('turns NOT_SERVING when close() begins, before the goaway', async () => {
      const server = await startEchoServer(cleanup, { server: { shutdownDelay: 3000 } });
      const events: string[] = [];
      const client = cleanup.add(await connect(server.url, { reconnect: false, listeners: [(event: ClientEvent) => events.push(event.type)] }), (each) => each.close());
      const health = createClient(Health, client);
      expect(await health.check()).to.deep.equal({ status: 'SERVING' });
      const closing = server.rpc.close();
      // The tunnel still takes calls during shutdownDelay: the health check sees NOT_SERVING, with no goaway yet.
      expect(await health.check()).to.deep.equal({ status: 'NOT_SERVING' });
      expect(await health.check({ service: 'Echo' })).to.deep.equal({ status: 'NOT_SERVING' });
      expect(events).to.deep.equal(['connected']);
      await closing;
      await client.closed;
      expect(events).to.deep.equal(['connected', 'disconnected']);
    });

    it('is absent with healthService: false', async () => {
      const server = await startEchoServer(cleanup, { server: { healthService: false } });
      const health = createClient(Health, cleanup.add(await connect(server.url), (each) => each.close()));
      await expectRejects(health.check(), 'UNIMPLEMENTED');
    });
  });

  describe('tunnelrpc.Reflection', () => {
    it('lists every service and method with its kind and the JSON Schemas of params and result', async () => {
      const server = await startEchoServer(cleanup);
      const reflection = createClient(Reflection, cleanup.add(await connect(server.url), (each) => each.close()));
      const { services } = await reflection.list();
      expect(services.map((service) => service.name)).to.deep.equal(['tunnelrpc.Health', 'tunnelrpc.Reflection', 'Echo']);
      const echo = services.find((service) => service.name === 'Echo')!;
      expect(echo.methods.map((method) => `${method.name} ${method.kind} ${method.idempotent}`)).to.deep.equal([
        'echo unary true',
        'add unary true',
        'sleep unary false',
        'fail unary false',
        'crash unary false',
        'notify notification false',
        'count unary true',
        'ticks serverStream false',
        'sum clientStream false',
        'chat bidiStream false',
      ]);
      const add = echo.methods.find((method) => method.name === 'add')!;
      expect(add.params).to.deep.include({ type: 'object', required: ['a', 'b'], additionalProperties: false });
      expect((add.params as { properties: unknown }).properties).to.deep.equal({ a: { type: 'number' }, b: { type: 'number' } });
      expect(add.result).to.deep.include({ type: 'number' });
    });

    it('marks what JSON Schema cannot express', async () => {
      const server = await startEchoServer(cleanup);
      server.rpc.register(Odd, { stamp: ({ at }) => new Set([at.toISOString()]) });
      const reflection = createClient(Reflection, cleanup.add(await connect(server.url), (each) => each.close()));
      const odd = (await reflection.list()).services.find((service) => service.name === 'Odd')!;
      const stamp = odd.methods[0]!;
      const properties = (stamp.params as { properties: Record<string, unknown> }).properties;
      expect(properties['at']).to.deep.include({ [UNREPRESENTABLE_KEY]: 'date' });
      expect(properties['big']).to.deep.include({ [UNREPRESENTABLE_KEY]: 'bigint' });
      expect(stamp.result).to.deep.include({ [UNREPRESENTABLE_KEY]: 'set' });
    });

    it('is absent with reflectionService: false', async () => {
      const server = await startEchoServer(cleanup, { server: { reflectionService: false } });
      const reflection = createClient(Reflection, cleanup.add(await connect(server.url), (each) => each.close()));
      await expectRejects(reflection.list(), 'UNIMPLEMENTED');
    });
  });

  describe('the CLI', () => {
    it('tunnelrpc list prints every method, its kind and whether it is idempotent', async () => {
      const server = await startEchoServer(cleanup);
      const result = await runCli(['list', server.url]);
      expect(result.stderr).to.equal('');
      expect(result.code).to.equal(0);
      expect(result.stdout.split('\n')).to.deep.equal([
        'tunnelrpc.Health.check unary idempotent',
        'tunnelrpc.Reflection.list unary idempotent',
        'Echo.echo unary idempotent',
        'Echo.add unary idempotent',
        'Echo.sleep unary',
        'Echo.fail unary',
        'Echo.crash unary',
        'Echo.notify notification',
        'Echo.count unary idempotent',
        'Echo.ticks serverStream',
        'Echo.sum clientStream',
        'Echo.chat bidiStream',
        '',
      ]);
    });

    it('tunnelrpc describe prints the JSON Schemas of one method', async () => {
      const server = await startEchoServer(cleanup);
      const result = await runCli(['describe', server.url, 'Echo.add']);
      expect(result.code).to.equal(0);
      const described = JSON.parse(result.stdout) as { method: string; kind: string; params: { properties: unknown }; result: unknown };
      expect(described.method).to.equal('Echo.add');
      expect(described.kind).to.equal('unary');
      expect(described.params.properties).to.deep.equal({ a: { type: 'number' }, b: { type: 'number' } });
      expect(described.result).to.deep.include({ type: 'number' });
    });

    it('tunnelrpc describe shows what a stream takes and sends', async () => {
      const server = await startEchoServer(cleanup);
      const sum = JSON.parse((await runCli(['describe', server.url, 'Echo.sum'])).stdout) as { kind: string; clientMessage: unknown; serverMessage?: unknown };
      expect(sum.kind).to.equal('clientStream');
      expect(sum.clientMessage).to.deep.include({ type: 'number' });
      expect(sum.serverMessage).to.equal(undefined);
      const ticks = JSON.parse((await runCli(['describe', server.url, 'Echo.ticks'])).stdout) as { serverMessage: unknown };
      expect(ticks.serverMessage).to.deep.include({ type: 'integer' });
    });

    // A misspelt method once gave UNIMPLEMENTED from call but NOT_FOUND from describe, and no hint.
    for (const command of ['call', 'describe', 'bench']) {
      it(`tunnelrpc ${command} exits 1 with UNIMPLEMENTED and the nearest names for a method the server does not have`, async () => {
        const server = await startEchoServer(cleanup);
        const result = await runCli([command, server.url, 'Echo.ad', ...(command === 'bench' ? ['-n', '1'] : [])]);
        expect(result.stdout).to.equal('');
        expect(result.stderr).to.equal(`UNIMPLEMENTED: ${server.url} has no method Echo.ad; did you mean Echo.add? (tunnelrpc list ${server.url} shows every method)\n`);
        expect(result.code).to.equal(1);
      });
    }

    it('names no method when nothing is near the one given', async () => {
      const server = await startEchoServer(cleanup);
      const result = await runCli(['describe', server.url, 'Zebra.graze']);
      expect(result.stderr).to.equal(`UNIMPLEMENTED: ${server.url} has no method Zebra.graze (tunnelrpc list ${server.url} shows every method)\n`);
      expect(result.code).to.equal(1);
    });

    it('tunnelrpc call -d @ reads the params from standard input', async () => {
      const server = await startEchoServer(cleanup);
      const result = await runCli(['call', server.url, 'Echo.add', '-d', '@'], '{"a": 20,\n "b": 22}\n');
      expect(result.stderr).to.equal('');
      expect(result.stdout).to.equal('42\n');
      expect(result.code).to.equal(0);
      const inline = await runCli(['call', server.url, 'Echo.add', '-d', '{"a":1,"b":1}']);
      expect(inline.stdout).to.equal('2\n');
    });

    it('tunnelrpc call -d @ exits 2 when standard input is not JSON', async () => {
      const server = await startEchoServer(cleanup);
      const result = await runCli(['call', server.url, 'Echo.add', '-d', '@'], 'not json');
      expect(result.code).to.equal(2);
      expect(result.stderr).to.match(/^tunnelrpc: standard input: the params are not valid JSON/);
    });
  });
});
