/**
 * The root hooks themselves: a test during which a promise rejection goes unhandled must fail the run,
 * or a throw from a promise callback inside the library could come back silently.
 */
import { expect } from 'chai';
import { runNode } from '../helpers/processes.js';

describe('root hooks', function () {
  this.timeout(60_000);

  it('fail the mocha run when a promise rejection goes unhandled during a test', async () => {
    const result = await runNode([
      'node_modules/mocha/bin/mocha.js',
      '--no-config',
      '--require',
      'test/dist/helpers/root-hooks.js',
      'test/dist/fixtures/unhandled-rejection.js',
    ]);
    expect(result.code, result.stdout + result.stderr).to.not.equal(0);
    expect(result.stdout + result.stderr).to.include('1 unhandled rejection(s) during this test');
    expect(result.stdout + result.stderr).to.include('nobody handles this rejection');
  });
});
