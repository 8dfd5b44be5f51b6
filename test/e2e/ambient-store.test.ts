/**
 * propagateContext costs nothing in a process without a tunnelrpc client: its handlers are not run inside the
 * ambient-call store (on Node 20 it tracks every promise they make). Once a client exists, they are.
 */
import { expect } from 'chai';
import { runNode } from '../helpers/processes.js';

describe('the ambient-call store', () => {
  it('is entered only once the process has a tunnelrpc client', async () => {
    const result = await runNode(['test/dist/scripts/ambient-probe.js']);
    expect(result.stderr).to.equal('');
    expect(result.code).to.equal(0);
    expect(JSON.parse(result.stdout)).to.deep.equal({ before: 'none', after: 'Probe.seen' });
  });
});
