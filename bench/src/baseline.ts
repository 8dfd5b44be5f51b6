/**
 * The --baseline peer: tunnelrpc as built from another git revision, in a worktree of its own under the system's
 * temp directory, installed and compiled there with that revision's own lockfile and compiler, so that its
 * harness and its packages are the ones it shipped. Kept between runs (keyed by commit) and reused when complete.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** BaselineBuild is the built revision, or why it could not be built. */
export type BaselineBuild = { distDir: string; commit: string; worktree: string } | { failed: string };

const PNPM = ['-y', 'pnpm@12.21.0'];

/** prepareBaseline builds `revision` of the repository holding `benchDir` and returns its bench/dist. */
export function prepareBaseline(benchDir: string, revision: string, progress: (text: string) => void): BaselineBuild {
  const git = (args: string[], cwd = benchDir): { ok: boolean; out: string } => {
    const result = spawnSync('git', args, { cwd, encoding: 'utf8' });
    return { ok: result.status === 0, out: `${result.stdout ?? ''}${result.stderr ?? ''}`.trim() };
  };
  const resolved = git(['rev-parse', '--verify', `${revision}^{commit}`]);
  if (!resolved.ok) return { failed: `--baseline ${revision} is not a commit of this repository (${resolved.out.split('\n')[0]})` };
  const commit = resolved.out.split('\n')[0]!;
  const worktree = join(tmpdir(), `tunnelrpc-baseline-${commit.slice(0, 12)}`);
  const distDir = join(worktree, 'bench', 'dist');
  const built = join(worktree, '.baseline-built');
  if (existsSync(built)) {
    progress(`bench: baseline ${revision} (${commit.slice(0, 12)}) already built in ${worktree}`);
    return { distDir, commit, worktree };
  }
  if (!existsSync(worktree)) {
    const added = git(['worktree', 'add', '--detach', worktree, commit]);
    if (!added.ok) return { failed: `git worktree add failed: ${added.out.split('\n').slice(-1)[0]}` };
  }
  progress(`bench: building baseline ${revision} (${commit.slice(0, 12)}) in ${worktree}; remove it later with git worktree remove --force ${worktree}`);
  for (const [what, command, args] of [
    ['install', 'npx', [...PNPM, 'install', '--frozen-lockfile']],
    ['build', 'npx', [...PNPM, 'exec', 'tsc', '-b']],
  ] as const) {
    const result = spawnSync(command, [...args], { cwd: worktree, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (result.status !== 0) {
      const why = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-3).join(' / ');
      return { failed: `baseline ${what} failed in ${worktree}: ${why}` };
    }
  }
  spawnSync('touch', [built]);
  return { distDir, commit, worktree };
}
