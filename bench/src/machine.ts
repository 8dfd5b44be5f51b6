/**
 * What the run ran on: the report names the machine and every peer's version, so a number is never quoted
 * without its context.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem, type as osType } from 'node:os';
import { join } from 'node:path';

/** MachineInfo describes the host and the versions of every peer. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  versions: Record<string, string>;
  /** The Go version, or why the Go peer did not run. */
  go: string;
  /** 1, 5 and 15 minute load averages when the run started. */
  loadAverage: number[];
}

/** describeMachine reads the CPU, memory, OS and the installed versions of the peers. */
export function describeMachine(benchDir: string, go: string): MachineInfo {
  const list = cpus();
  const versions: Record<string, string> = {};
  for (const name of ['@grpc/grpc-js', 'undici', 'msgpackr']) {
    versions[name] = packageVersion(join(benchDir, 'node_modules', name, 'package.json'));
  }
  versions['tunnelrpc'] = packageVersion(join(benchDir, '..', 'packages', 'server', 'package.json'));
  return {
    cpu: list[0]?.model.trim() ?? 'unknown CPU',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    os: `${osType()} ${release()}`,
    node: process.version,
    versions,
    go,
    loadAverage: loadavg().map((value) => Math.round(value * 100) / 100),
  };
}

function packageVersion(file: string): string {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
    return typeof parsed.version === 'string' ? parsed.version : 'unknown';
  } catch {
    return 'not installed';
  }
}
