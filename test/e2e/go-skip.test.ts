/**
 * The Go interop tests on a machine without Go: they skip, the run passes, and it prints one line naming what it
 * skipped. Runs mocha on the interop file in a child process whose Go search path is an empty folder.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cleanup } from '../helpers/cleanup.js';
import { GO_SKIP_LINE } from '../helpers/go.js';
import { REPO_ROOT } from '../helpers/processes.js';

describe('Go interop tests without go installed', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('skips them, passes, and prints one line naming what it skipped', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'tunnelrpc-nogo-'));
    cleanup.defer(() => rm(empty, { recursive: true, force: true }));
    const child = spawn(
      process.execPath,
      [join(REPO_ROOT, 'node_modules/mocha/bin/mocha.js'), '--no-config', '--require', 'test/dist/helpers/root-hooks.js', '--reporter', 'dot', '--exit', 'test/dist/e2e/go-interop.test.js'],
      { cwd: REPO_ROOT, env: { ...process.env, TUNNELRPC_GO_PATH: empty }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.resume();
    const [code] = (await once(child, 'close')) as [number | null];
    expect(code, stdout).to.equal(0);
    expect(stdout.split('\n').filter((line) => line === GO_SKIP_LINE), stdout).to.have.length(1);
    expect(stdout).to.match(/\d+ pending/);
    expect(stdout).to.match(/\b0 passing/);
  });
});
