/**
 * The deploy tests on a machine without the boxes: `pnpm test` skips them and prints one line naming what it
 * skipped; `pnpm test:deploy` (TUNNELRPC_REQUIRE_DEPLOY=1) fails instead. Runs mocha on the deploy files in a child
 * process whose box search path is an empty folder.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cleanup } from '../helpers/cleanup.js';
import { REPO_ROOT } from '../helpers/processes.js';

async function runDeploySuite(env: Record<string, string>): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'node_modules/mocha/bin/mocha.js'), '--config', '.mocharc.deploy.json', '--reporter', 'dot'], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.resume();
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout };
}

describe('deploy tests without the boxes installed', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function emptyFolder(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'tunnelrpc-nobox-'));
    cleanup.defer(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  it('skips them, passes, and prints one line naming every box it skipped', async () => {
    const { code, stdout } = await runDeploySuite({ TUNNELRPC_BOX_PATH: await emptyFolder(), TUNNELRPC_REQUIRE_DEPLOY: '' });
    expect(code, stdout).to.equal(0);
    const lines = stdout.split('\n').filter((line) => line.startsWith('deploy tests skipped:'));
    expect(lines, stdout).to.have.length(1);
    expect(lines[0]).to.match(/^deploy tests skipped: haproxy, nginx(, squid)?(, tinyproxy)? not installed \(pnpm test:deploy requires them; \.ci\/run installs them\)$/);
    expect(stdout).not.to.match(/[1-9]\d* failing/);
  });

  it('fails them under TUNNELRPC_REQUIRE_DEPLOY=1 (pnpm test:deploy), naming the missing box and the install line', async () => {
    const { code, stdout } = await runDeploySuite({ TUNNELRPC_BOX_PATH: await emptyFolder(), TUNNELRPC_REQUIRE_DEPLOY: '1' });
    expect(code).to.not.equal(0);
    expect(stdout).to.include('haproxy is not installed, and TUNNELRPC_REQUIRE_DEPLOY=1 (pnpm test:deploy) requires it');
  });
});
