/**
 * The optional Go net/rpc peer: built from bench/go with the standard library only, when `go` is on the PATH
 * (Debian: apt-get install golang-go). Without it the peer is skipped with a note; nothing is downloaded.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** GoPeer is the built binary, or why the Go peer is skipped. */
export type GoPeer = { binary: string; version: string } | { skipped: string };

/** prepareGoPeer builds bench/go into dist/gorpc-bench, offline (GOPROXY=off, GOTOOLCHAIN=local). */
export function prepareGoPeer(benchDir: string): GoPeer {
  const env = { ...process.env, GOTOOLCHAIN: 'local', GOPROXY: 'off', GOFLAGS: '-mod=mod', CGO_ENABLED: '0' };
  const probe = spawnSync('go', ['version'], { encoding: 'utf8', env });
  if (probe.error !== undefined || probe.status !== 0) {
    return { skipped: 'Go net/rpc skipped: no `go` on the PATH (install Debian\'s golang-go to include it)' };
  }
  const binary = join(benchDir, 'dist', 'gorpc-bench');
  const build = spawnSync('go', ['build', '-o', binary, '.'], { cwd: join(benchDir, 'go'), encoding: 'utf8', env });
  if (build.error !== undefined || build.status !== 0) {
    const why = (build.stderr || build.error?.message || 'unknown error').trim().split('\n').slice(0, 5).join(' / ');
    return { skipped: `Go net/rpc skipped: go build failed (${why})` };
  }
  return { binary, version: probe.stdout.trim().replace(/^go version /, '') };
}

/**
 * prepareGoWirePeer builds the Go package's bench peer (go/internal/benchpeer) into dist/go-benchpeer, offline: the
 * msgpack sources come from Debian (go/vendor-debian.sh; apt-get install golang-github-vmihailenco-msgpack.v5-dev).
 */
export function prepareGoWirePeer(benchDir: string): GoPeer {
  const env = { ...process.env, GOTOOLCHAIN: 'local', GOPROXY: 'off', GOFLAGS: '-mod=vendor', CGO_ENABLED: '0' };
  const probe = spawnSync('go', ['version'], { encoding: 'utf8', env });
  if (probe.error !== undefined || probe.status !== 0) {
    return { skipped: 'Go wire-v1 peers skipped: no `go` on the PATH (install Debian\'s golang-go to include them)' };
  }
  const moduleDir = join(benchDir, '..', 'go');
  const vendor = spawnSync('sh', [join(moduleDir, 'vendor-debian.sh')], { encoding: 'utf8' });
  if (vendor.status !== 0) {
    return { skipped: `Go wire-v1 peers skipped: ${(vendor.stderr || 'vendor-debian.sh failed').trim()}` };
  }
  const binary = join(benchDir, 'dist', 'go-benchpeer');
  const build = spawnSync('go', ['build', '-o', binary, './internal/benchpeer'], { cwd: moduleDir, encoding: 'utf8', env });
  if (build.error !== undefined || build.status !== 0) {
    const why = (build.stderr || build.error?.message || 'unknown error').trim().split('\n').slice(0, 5).join(' / ');
    return { skipped: `Go wire-v1 peers skipped: go build failed (${why})` };
  }
  return { binary, version: probe.stdout.trim().replace(/^go version /, '') };
}
