/**
 * `pnpm demo`: starts the example server in its own process, connects one client, and shows a typed call,
 * 10,000 calls multiplexed over the one tunnel, a deadline, a cancellation and errors. Exits 0 when all went
 * as shown.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { connect, createClient, RpcError } from '@tunnelrpc/client';
import { Echo } from './echo-service.js';

const TOTAL_CALLS = 10_000;
const OUTSTANDING = 256;

async function startServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const script = fileURLToPath(new URL('./example-server.js', import.meta.url));
  const child = spawn(process.execPath, [script, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.setEncoding('utf8');
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`example server exited with code ${code} before listening`)));
    child.stdout.on('data', (text: string) => {
      output += text;
      const match = /listening (\S+)/.exec(output);
      if (match !== null) resolve(match[1]!);
    });
  });
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

function show(label: string, value: string): void {
  console.log(`  ${label.padEnd(34)} ${value}`);
}

async function expectError(promise: Promise<unknown>): Promise<RpcError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RpcError) return error;
    throw error;
  }
  throw new Error('demo: expected this call to fail, and it succeeded');
}

async function main(): Promise<void> {
  const server = await startServer();
  console.log(`tunnelrpc demo: server process at ${server.url}\n`);
  const client = await connect(server.url);
  const echo = createClient(Echo, client);
  try {
    console.log('1. A typed call (params and result typed from the zod contract)');
    show('echo.add({ a: 20, b: 22 })', String(await echo.add({ a: 20, b: 22 })));
    show('echo.echo({ hello: ["tunnel", 1] })', JSON.stringify(await echo.echo({ hello: ['tunnel', 1] })));

    console.log(`\n2. ${TOTAL_CALLS.toLocaleString('en-US')} calls multiplexed over one connection (${OUTSTANDING} in flight at a time)`);
    let next = 0;
    let wrong = 0;
    const started = process.hrtime.bigint();
    const worker = async (): Promise<void> => {
      while (next < TOTAL_CALLS) {
        const i = next++;
        if ((await echo.add({ a: i, b: 1 })) !== i + 1) wrong++;
      }
    };
    await Promise.all(Array.from({ length: OUTSTANDING }, worker));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (wrong > 0) throw new Error(`demo: ${wrong} calls returned a wrong sum`);
    show('all answered correctly in', `${(seconds * 1000).toFixed(0)} ms`);
    show('throughput', `${Math.round(TOTAL_CALLS / seconds).toLocaleString('en-US')} calls/s`);

    console.log('\n3. A deadline: sleep 5 s with a 100 ms timeout');
    const deadlineStart = Date.now();
    const deadline = await expectError(echo.sleep({ ms: 5000 }, { timeout: 100 }));
    show(`failed after ${Date.now() - deadlineStart} ms with`, `${deadline.code}: ${deadline.message}`);

    console.log('\n4. A cancellation: sleep 5 s, aborted after 50 ms');
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const cancelled = await expectError(echo.sleep({ ms: 5000 }, { signal: controller.signal }));
    show('failed with', `${cancelled.code}: ${cancelled.message}`);

    console.log('\n5. Errors');
    const notFound = await expectError(echo.fail({ code: 'NOT_FOUND', message: 'no invoice 42' }));
    show('a handler throwing RpcError', `${notFound.code}: ${notFound.message}`);
    const internal = await expectError(echo.crash());
    show('a handler crashing (detail hidden)', `${internal.code}: ${internal.message}`);
    const invalid = await expectError(client.call('Echo.add', { a: 1, b: 'two' }));
    show('params failing the schema', `${invalid.code}: ${invalid.message}`);
    const unknown = await expectError(client.call('Echo.nope', null));
    show('an unknown method', `${unknown.code}: ${unknown.message}`);

    console.log('\ndemo finished: every call ended, answered or failed with a code.');
  } finally {
    await client.close();
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
