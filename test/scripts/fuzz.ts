/**
 * The long fuzz run (not in CI): the engine of test/e2e/fuzz.test.ts with a chosen seed and count.
 *
 *   pnpm fuzz                                   200,000 inputs with a fresh random seed
 *   pnpm fuzz --seed 42 --count 1000000  a chosen seed and count
 *   pnpm fuzz --seed 42 --from 1234 --count 1   replay input 1234 of seed 42 alone
 *
 * The first line printed is the seed, so a run that crashes can be replayed. The last is a JSON report; the exit
 * code is 0 only when every oracle held and a known-good call worked afterwards.
 */
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { connect, createClient } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import { generateInput, runFuzz, startFuzzServer } from '../helpers/fuzz.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      count: { type: 'string', default: '200000' },
      from: { type: 'string', default: '0' },
      parallel: { type: 'string', default: '64' },
      show: { type: 'boolean', default: false },
    },
  });
  const seed = values.seed === undefined ? randomInt(2 ** 31) : Number(values.seed) >>> 0;
  const count = Number(values.count);
  const from = Number(values.from);
  const parallel = Number(values.parallel);
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(from) || from < 0 || !Number.isInteger(parallel) || parallel < 1) {
    throw new Error('--count and --parallel must be positive integers, --from a non-negative integer');
  }
  console.log(`fuzz seed ${seed} (replay: pnpm fuzz --seed ${seed} --from ${from} --count ${count})`);
  if (values.show) {
    for (let index = from; index < from + count; index++) {
      const input = generateInput(seed, index);
      console.log(JSON.stringify({ index, how: input.how, withHead: input.withHead, hex: input.bytes.toString('hex') }));
    }
  }

  const server = await startFuzzServer();
  try {
    const report = await runFuzz({
      server,
      seed,
      count,
      from,
      parallel,
      onProgress: (done) => {
        if (done % 10_000 === 0) process.stderr.write(`  ${done} / ${count}\n`);
      },
    });
    let goodCall = 'ok';
    try {
      const client = await connect(server.url, { reconnect: false });
      const echo = createClient(Echo, client);
      if ((await echo.add({ a: 40, b: 2 })) !== 42) goodCall = 'Echo.add gave a wrong sum';
      await client.close();
    } catch (error) {
      goodCall = `failed: ${(error as Error).message}`;
    }
    const ok = report.failed === 0 && !report.prototypeChanged && report.unexpectedLogs.length === 0 && goodCall === 'ok';
    console.log(JSON.stringify({ ok, ...report, goodCall, inputsPerSecond: Math.round(count / report.seconds) }, null, 2));
    process.exitCode = ok ? 0 : 1;
  } finally {
    await server.rpc.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 2;
});
