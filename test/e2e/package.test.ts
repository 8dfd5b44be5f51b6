/**
 * The packages as users get them: `pnpm pack` each one, install the three tarballs with npm into a fresh project
 * beside zod 4.0.0 (the lowest release the peer range allows, and another minor than the workspace's), then
 * compile every ```ts block of the READMEs there with the workspace's tsc (strict, NodeNext, TypeScript 7's default
 * `types: []`, no skipLibCheck) and run the root
 * README's Server and Client against each other, and import `@tunnelrpc/protocol/internal` through its exports map.
 * The README examples are compiled as written, so they cannot drift.
 *
 * It needs the npm registry: without it the suite skips, except under CI (CI set), where it fails.
 */
import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { REPO_ROOT } from '../helpers/processes.js';

const PNPM = ['-y', 'pnpm@12.21.0'];
const PACKAGES = ['protocol', 'server', 'client', 'prometheus', 'otel'] as const;
// Peers each package asks for, as packed (workspace ranges become the version's caret range).
const PEERS: Record<(typeof PACKAGES)[number], Record<string, string>> = {
  protocol: { zod: '^4.0.0' },
  // koffi (unix socket peer credentials, TCP_INFO) is an optional peer of both: installs never pull it in.
  server: { zod: '^4.0.0', koffi: '^3.3.4' },
  client: { zod: '^4.0.0', koffi: '^3.3.4' },
  prometheus: { '@tunnelrpc/client': '^0.1.0', '@tunnelrpc/server': '^0.1.0', 'prom-client': '^15.0.0', zod: '^4.0.0' },
  otel: { '@opentelemetry/api': '^1.3.0', zod: '^4.0.0' },
};
// Optional peers the consumer installs so that the README examples using them compile.
const CONSUMER_PEERS = ['prom-client@15.1.3', '@opentelemetry/api@1.9.1'];
// The lowest zod the peer range (^4.0.0) admits; the workspace builds with 4.6.7.
const CONSUMER_ZOD = '4.0.0';
// Files the root README's sections become in the consumer project; the examples import './contract.js'.
const SECTION_FILES: Record<string, string> = { Contracts: 'contract', Server: 'server', Client: 'client' };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

// npm_* variables a surrounding `pnpm test` (or npx) exports, such as npm_config_local_prefix, would point npm at
// the workspace; only the network settings among them go through.
const NPM_NETWORK_SETTINGS = new Set(['registry', 'cafile', 'ca', 'proxy', 'https_proxy', 'noproxy', 'strict_ssl', 'cache'].map((key) => `npm_config_${key}`));

/** run executes a command to completion, with the npm_* variables of the test run left out but for network settings. */
function run(command: string, args: readonly string[], cwd: string): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => {
    const lower = name.toLowerCase();
    return !lower.startsWith('npm_') || NPM_NETWORK_SETTINGS.has(lower);
  }));
  return new Promise((resolvePromise, reject) => {
    execFile(command, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') reject(error);
      else resolvePromise({ code: error === null ? 0 : (error.code as number), stdout, stderr });
    });
  });
}

/** mustRun is run, failing with the command's output unless it exits 0. */
async function mustRun(command: string, args: readonly string[], cwd: string): Promise<string> {
  const result = await run(command, args, cwd);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} (in ${cwd}) exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}

/** CodeBlock is one ```ts block of a README, with the `## ` section it sits in. */
interface CodeBlock {
  section: string;
  code: string;
}

function tsBlocks(markdown: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  let section = '';
  let code: string[] | undefined;
  for (const line of markdown.split('\n')) {
    if (code !== undefined) {
      if (line.startsWith('```')) {
        blocks.push({ section, code: code.join('\n') + '\n' });
        code = undefined;
      } else {
        code.push(line);
      }
    } else if (line.startsWith('## ')) {
      section = line.slice(3).trim();
    } else if (line.trim() === '```ts') {
      code = [];
    }
  }
  return blocks;
}

/** replaceOnce swaps one literal of an example for the test's value; the literal must appear exactly once. */
function replaceOnce(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0) throw new Error(`the README example must hold ${JSON.stringify(from)} exactly once`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/** filesUnder lists every file below dir, as paths relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => relative(dir, join(entry.parentPath, entry.name))).sort();
}

/** waitForOutput resolves once everything `child` printed on stdout matches `pattern`; rejects if it exits first. */
function waitForOutput(child: ChildProcess, output: { stdout: string; stderr: string }, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolvePromise, reject) => {
    const check = (): void => {
      const match = pattern.exec(output.stdout);
      if (match === null) return;
      child.stdout!.off('data', check);
      child.off('exit', onExit);
      resolvePromise(match);
    };
    const onExit = (code: number | null): void => {
      child.stdout!.off('data', check);
      reject(new Error(`process exited (code ${code}) before printing ${pattern}; stdout: ${output.stdout} stderr: ${output.stderr}`));
    };
    child.stdout!.on('data', check);
    child.once('exit', onExit);
    check();
  });
}

describe('the packed packages in a fresh project', function () {
  // One npm install from the registry, then tsc over the consumer project: minutes on a slow network, not seconds.
  this.timeout(600_000);

  let work: string;
  let app: string;
  const tarballs = new Map<string, string>();
  const unpacked = new Map<string, string>();
  let packed: string[] = [];

  before(async function () {
    const ping = await run('npm', ['ping', '--fetch-retries=0', '--fetch-timeout=15000'], REPO_ROOT);
    if (ping.code !== 0) {
      const lines = ping.stderr.split('\n').map((line) => line.replace(/^npm error /, '').trim());
      const why = lines.find((line) => line.includes('request to')) ?? lines.find((line) => line !== '') ?? `exit ${ping.code}`;
      const reason = `the npm registry is unreachable (npm ping: ${why})`;
      if (process.env['CI'] !== undefined && process.env['CI'] !== '') throw new Error(`${reason}; CI is set, so this suite must run`);
      console.log(`      skipped: ${reason}; the packed-package suite needs it to install zod`);
      this.skip();
    }
    work = await mkdtemp(join(tmpdir(), 'tunnelrpc-package-'));
    // The root script a maintainer packs with: the published packages only, never the private workspaces
    // (`pnpm -r pack` alone packs bench, e2e and examples too).
    const packs = join(REPO_ROOT, 'packs');
    await rm(packs, { recursive: true, force: true });
    await mustRun('npx', [...PNPM, 'run', 'pack:packages'], REPO_ROOT);
    packed = (await readdir(packs)).sort();
    for (const name of PACKAGES) {
      const tarball = join(packs, `tunnelrpc-${name}-0.1.0.tgz`);
      tarballs.set(name, tarball);
      const into = join(work, 'unpacked', name);
      await mkdir(into, { recursive: true });
      await mustRun('tar', ['-xzf', tarball, '-C', into], work);
      unpacked.set(name, join(into, 'package'));
    }

    app = join(work, 'app');
    await mkdir(app);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'tunnelrpc-consumer', private: true, type: 'module' }, null, 2));
    const rootManifest = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    const typesNode = rootManifest.devDependencies['@types/node']!;
    await mustRun('npm', ['install', '--no-audit', '--no-fund', ...PACKAGES.map((name) => tarballs.get(name)!), `zod@${CONSUMER_ZOD}`, ...CONSUMER_PEERS, `@types/node@${typesNode}`], app);
  });

  after(async () => {
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('pnpm pack:packages packs the published packages and none of the private workspaces', () => {
    expect(packed).to.deep.equal(PACKAGES.map((name) => `tunnelrpc-${name}-0.1.0.tgz`).sort());
  });

  for (const name of PACKAGES) {
    it(`packs @tunnelrpc/${name} with README, LICENSE, dist and the src its maps point at, and no tsbuildinfo`, async () => {
      const root = unpacked.get(name)!;
      const files = await filesUnder(root);
      expect(files).to.include.members(['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'src/index.ts']);
      expect(files.filter((file) => file.endsWith('.tsbuildinfo'))).to.deep.equal([]);
      expect(files.every((file) => /^(LICENSE|README\.md|package\.json|dist\/.+\.(js|d\.ts|js\.map|d\.ts\.map)|src\/.+\.ts)$/.test(file)), files.join(', ')).to.equal(true);
      for (const map of files.filter((file) => file.endsWith('.map'))) {
        const { sources, sourceRoot } = JSON.parse(await readFile(join(root, map), 'utf8')) as { sources: string[]; sourceRoot?: string };
        for (const source of sources) {
          const target = resolve(root, dirname(map), sourceRoot ?? '', source);
          expect(existsSync(target), `${map} points at ${relative(root, target)}`).to.equal(true);
        }
      }

      const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
      expect(manifest['peerDependencies']).to.deep.equal(PEERS[name]);
      if (name === 'server' || name === 'client') expect(manifest['peerDependenciesMeta']).to.deep.equal({ koffi: { optional: true } });
      expect(manifest['dependencies']?.['zod']).to.equal(undefined);
      expect(JSON.stringify(manifest['dependencies'] ?? {})).not.to.include('workspace:');
    });
  }

  it(`installs the tarballs beside zod ${CONSUMER_ZOD} with one copy of zod`, async () => {
    const zod = JSON.parse(await readFile(join(app, 'node_modules/zod/package.json'), 'utf8')) as { version: string };
    expect(zod.version).to.equal(CONSUMER_ZOD);
    const copies = (await filesUnder(join(app, 'node_modules'))).filter((file) => file.endsWith('zod/package.json'));
    expect(copies).to.deep.equal(['zod/package.json']);
  });

  it('typechecks every ts example of the READMEs against the tarballs, and runs the Server and Client examples', async () => {
    const sources = new Map<string, string>();
    const addBlocks = (prefix: string, markdown: string): void => {
      for (const block of tsBlocks(markdown)) {
        const base = prefix === '' && SECTION_FILES[block.section] !== undefined
          ? SECTION_FILES[block.section]!
          : `${prefix}${block.section.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
        let file = `${base}.ts`;
        for (let n = 2; sources.has(file); n++) file = `${base}-${n}.ts`;
        sources.set(file, block.code);
      }
    };
    addBlocks('', await readFile(join(REPO_ROOT, 'README.md'), 'utf8'));
    for (const name of PACKAGES) addBlocks(`${name}-readme-`, await readFile(join(unpacked.get(name)!, 'README.md'), 'utf8'));
    expect([...sources.keys()]).to.include.members(['contract.ts', 'server.ts', 'client.ts', 'protocol-readme-example.ts', 'server-readme-example.ts', 'client-readme-example.ts']);

    // Runnable copies of the Server and Client examples: a free port on loopback, announced, and its URL.
    sources.set('run-server.ts', replaceOnce(sources.get('server.ts')!, 'http.listen(8080);',
      "http.listen(0, '127.0.0.1', () => console.log(`port ${(http.address() as import('node:net').AddressInfo).port}`));"));
    sources.set('run-client.ts', replaceOnce(sources.get('client.ts')!, "'http://10.0.0.5:8080/_rpc'", 'process.argv[2]!'));
    // The building blocks' subpath resolves, types included, through the exports map of the packed manifest.
    sources.set('internal-subpath.ts', "import { MessageType, encodeFrame } from '@tunnelrpc/protocol/internal';\n" +
      'const frame: Buffer = encodeFrame(Buffer.from([MessageType.Request]));\nconsole.log(frame.toString(\'hex\'));\n');
    for (const [file, code] of sources) await writeFile(join(app, file), code);
    await writeFile(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        lib: ['ES2023'],
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        // TypeScript 7's default: no @types package is pulled in unless something references it. The packages'
        // typings reference @types/node themselves, so a project needs no setting for them (about 40 errors without).
        types: [],
        strict: true,
        noUncheckedIndexedAccess: true,
        verbatimModuleSyntax: true,
        outDir: 'dist',
        rootDir: '.',
      },
      include: ['*.ts'],
    }, null, 2));
    const tsc = await run(process.execPath, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], app);
    expect(tsc.stdout + tsc.stderr, 'tsc errors in the README examples').to.equal('');
    expect(tsc.code).to.equal(0);

    const internal = await run(process.execPath, ['dist/internal-subpath.js'], app);
    expect(internal.stderr).to.equal('');
    expect(internal.stdout).to.equal('0000000100\n');

    const server = spawn(process.execPath, ['dist/run-server.js'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
    const serverOutput = { stdout: '', stderr: '' };
    server.stdout.on('data', (chunk: Buffer) => (serverOutput.stdout += chunk.toString('utf8')));
    server.stderr.on('data', (chunk: Buffer) => (serverOutput.stderr += chunk.toString('utf8')));
    try {
      const [, port] = await waitForOutput(server, serverOutput, /^port (\d+)$/m);
      const url = `http://127.0.0.1:${port}/_rpc`;

      const client = await run(process.execPath, ['dist/run-client.js', url], app);
      expect(client.stderr).to.equal('');
      expect(client.stdout).to.equal('4200\nno invoice nope\n');
      expect(client.code).to.equal(0);
      // The notification reached the server's audit handler.
      await waitForOutput(server, serverOutput, /viewed$/m);

      const cli = await run(join(app, 'node_modules/.bin/tunnelrpc'), ['call', url, 'billing.Invoices.get', '{"id":"inv_42"}'], app);
      expect(cli.stderr).to.equal('');
      expect(JSON.parse(cli.stdout)).to.deep.equal({ id: 'inv_42', cents: 4200 });
      expect(cli.code).to.equal(0);
    } finally {
      server.kill('SIGKILL');
      if (server.exitCode === null && server.signalCode === null) await once(server, 'exit');
    }
  });
});
