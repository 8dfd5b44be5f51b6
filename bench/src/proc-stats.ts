/**
 * Sampling another process's CPU time and memory from /proc (Linux), so that no server does any measuring work
 * of its own. Where /proc is missing, the orchestrator asks the server's control channel instead.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

/** ProcessSample is one reading of a process. */
export interface ProcessSample {
  /** User plus system CPU time of all its threads, in seconds. */
  cpuSeconds: number;
  /** Resident set size now, in bytes. */
  rssBytes: number;
  /** Peak resident set size so far (VmHWM), in bytes; undefined when unknown. */
  peakRssBytes: number | undefined;
}

/** HAS_PROC tells whether /proc/<pid> sampling works here. */
export const HAS_PROC = existsSync('/proc/self/stat') && existsSync('/proc/self/status');

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** readProcessSample reads /proc/<pid>; undefined when the process is gone or /proc is missing. */
export function readProcessSample(pid: number): ProcessSample | undefined {
  if (!HAS_PROC || pid <= 0) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself hold spaces and parentheses: state is field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]); // field 14
    const stime = Number(fields[12]); // field 15
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (name: string): number | undefined => {
      const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
      return match === null ? undefined : Number(match[1]) * 1024;
    };
    return { cpuSeconds: (utime + stime) / clockTicks(), rssBytes: kib('VmRSS') ?? 0, peakRssBytes: kib('VmHWM') };
  } catch {
    return undefined;
  }
}
