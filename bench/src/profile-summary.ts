/**
 * `node bench/dist/profile-summary.js DIR [--top N]`: the top functions by self time of every `.cpuprofile` in DIR
 * (written by `pnpm bench --cpu-prof-dir DIR`), one block per process, named by the bench script it ran
 * (servers/tunnelrpc.js, clients/ceiling.js, …).
 *
 * Self time is the profiler's sample count per function times the sampling interval, summed over every node of
 * the same function (name, file, line). "(garbage collector)", "(program)" (native code outside JS) and "(idle)"
 * are the profiler's own categories; the share column is of the busy time (all but idle).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** FunctionTime is one function's self time in a profile. */
export interface FunctionTime {
  name: string;
  where: string;
  selfMs: number;
  share: number;
}

/** ProfileSummary is one process's profile, reduced to its top functions. */
export interface ProfileSummary {
  file: string;
  role: string;
  busyMs: number;
  idleMs: number;
  top: FunctionTime[];
}

/** summarizeProfile reduces one .cpuprofile to its top `top` functions by self time. */
export function summarizeProfile(file: string, top: number): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<string, { name: string; where: string; us: number }>();
  let idleUs = 0;
  let busyUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    // A sample's time is the delta to the next sample (the last one gets the previous delta).
    const us = profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0;
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName === '' ? '(anonymous)' : functionName;
    if (name === '(idle)') {
      idleUs += us;
      continue;
    }
    busyUs += us;
    const where = url === '' ? '' : `${shortUrl(url)}:${lineNumber + 1}`;
    const key = `${name} ${where}`;
    const entry = selfUs.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    selfUs.set(key, entry);
  }
  const role = profile.nodes.map((node) => /\/(servers|clients)\/([\w-]+)\.js$/.exec(node.callFrame.url)).find((match) => match !== null);
  return {
    file,
    role: role === undefined || role === null ? 'unknown' : `${role[1]}/${role[2]}`,
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    top: [...selfUs.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((entry) => ({ name: entry.name, where: entry.where, selfMs: entry.us / 1000, share: busyUs === 0 ? 0 : entry.us / busyUs })),
  };
}

// node:internal/… and node_modules/.pnpm/<pkg>/node_modules/<pkg>/… shortened to what a reader needs.
function shortUrl(url: string): string {
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/(.+)$/.exec(url);
  if (pnpm !== null) return pnpm[1]!;
  const ours = /\/(packages\/[^/]+\/dist\/.+|bench\/dist\/.+)$/.exec(url);
  if (ours !== null) return ours[1]!;
  return url.replace(/^file:\/\//, '');
}

function main(): void {
  const args = process.argv.slice(2);
  const dir = args.find((arg) => !arg.startsWith('--'));
  const topAt = args.indexOf('--top');
  const top = topAt === -1 ? 25 : Number(args[topAt + 1]);
  if (dir === undefined || !Number.isInteger(top) || top < 1) {
    process.stderr.write('Usage: node bench/dist/profile-summary.js DIR [--top N]\n');
    process.exitCode = 2;
    return;
  }
  const files = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile')).sort();
  if (files.length === 0) {
    process.stderr.write(`no .cpuprofile in ${dir}\n`);
    process.exitCode = 1;
    return;
  }
  for (const name of files) {
    const summary = summarizeProfile(join(dir, name), top);
    process.stdout.write(`\n## ${summary.role} (${name}): busy ${summary.busyMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms\n\n`);
    process.stdout.write('| self ms | share of busy | function | where |\n|---:|---:|---|---|\n');
    for (const entry of summary.top) {
      process.stdout.write(`| ${entry.selfMs.toFixed(1)} | ${(entry.share * 100).toFixed(1)}% | ${entry.name} | ${entry.where} |\n`);
    }
  }
}

main();
