/**
 * A bounded, seeded fuzz run against a live server (SECURITY.md, "random and mutated frames"): 3,000 frames, half random
 * and half mutated seed messages, each on a fresh tunnel. The oracles are in test/helpers/fuzz.ts; a failure names
 * the seed and the input index, which `npm run fuzz -- --seed S --from I --count 1` replays alone.
 * FUZZ_SEED and FUZZ_COUNT in the environment change the run.
 */
import { expect } from 'chai';
import { connect, createClient } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import { Cleanup } from '../helpers/cleanup.js';
import { runFuzz, startFuzzServer, type FuzzServer } from '../helpers/fuzz.js';
import { expectPrototypeClean } from '../helpers/rpc-error.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 0x7e57ab1e) >>> 0;
const COUNT = Number(process.env['FUZZ_COUNT'] ?? 3000);
const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype);

describe(`fuzz: ${COUNT} frames against a live server (seed ${SEED})`, () => {
  const cleanup = new Cleanup();
  let server: FuzzServer;

  beforeEach(async () => {
    server = await startFuzzServer();
    cleanup.defer(() => server.rpc.close());
  });
  afterEach(() => cleanup.run());

  it('gets only mapped outcomes, changes no prototype, logs no unexpected crash, and serves a good call afterwards', async function () {
    this.timeout(120_000);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    cleanup.defer(() => process.off('unhandledRejection', onUnhandled));

    const report = await runFuzz({ server, seed: SEED, count: COUNT });
    const replay = `replay with: npm run fuzz -- --seed ${SEED} --from <index> --count 1`;
    expect(report.failures, `${report.failed} inputs broke an oracle (${replay}):\n${JSON.stringify(report.failures.slice(0, 5), null, 2)}`).to.deep.equal([]);
    expect(report.prototypeChanged, 'Object.prototype changed').to.equal(false);
    expect(report.unexpectedLogs, 'unexpected server logs').to.deep.equal([]);
    expect(unhandled, 'unhandled rejections').to.deep.equal([]);
    // The run reached past the first checks: some inputs were answered, and some were refused each way.
    expect(report.outcomes['result'] ?? 0, JSON.stringify(report.outcomes)).to.be.above(0);
    expect(report.outcomes['goaway PROTOCOL_ERROR'] ?? 0, JSON.stringify(report.outcomes)).to.be.above(0);
    expect(Object.values(report.outcomes).reduce((sum, n) => sum + n, 0)).to.equal(COUNT);

    const client = cleanup.add(await connect(server.url, { reconnect: false }), (each) => each.close());
    const echo = createClient(Echo, client);
    expect(await echo.add({ a: 40, b: 2 })).to.equal(42);
    expect(await echo.echo({ after: 'fuzz', n: [1, 2, 3] })).to.deep.equal({ after: 'fuzz', n: [1, 2, 3] });
    expectPrototypeClean(PROTOTYPE_KEYS);
  });
});
