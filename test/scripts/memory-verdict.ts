/**
 * The soak's memory verdict: does the server keep memory per call? Judged by the trend, not by two readings.
 *
 * The soak samples the server through the run, each reading after a full GC: RSS, V8 heap used, `external` (memory
 * V8 objects hold outside the heap, Buffers included) and `arrayBuffers` (the part of `external` that is
 * ArrayBuffer and Buffer backing stores). judgeMemory fits a least-squares line to each series against the calls
 * settled, over the samples after the warm-up share of the run, and reports the slopes in MiB per million calls.
 *
 * The verdict is on the retained series, heap used + external: what the live objects hold after a full collection
 * (a Buffer of up to 64 bytes lives inside the V8 heap, a larger one's bytes in `external`, so both count). A call
 * that leaves even one small Buffer behind adds far more than the limit: `pnpm soak --inject-leak 64` (a 64-byte
 * Buffer kept in an array per call) measures about 260 MiB per million calls, some 270 bytes a call with the
 * Uint8Array, its ArrayBuffer and the array slot; one leaked object of 16 bytes kept in an array would add 23.
 * After a full GC the retained series of a clean run moves by a MiB or less across a run, in-flight calls coming
 * and going: 200,000-call soaks of four seeds measured -2.3 to +2.4 MiB per million calls, a 1,000,000-call soak
 * +0.2. The limit sits at 16 MiB per million calls (16 bytes a call): over six times the worst clean short run,
 * and under any leak of an object or a buffer per call.
 *
 * RSS is reported, not judged: it moves in steps as V8 grows or shrinks its spaces and as the allocator keeps
 * freed pages, which is what made the old "RSS within 10%" check fail on runs that leaked nothing.
 */

/** MemorySample is one reading of the server after a full GC, at `calls` calls settled. */
export interface MemorySample {
  calls: number;
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** Slopes holds each series' trend in MiB per million calls. */
export interface Slopes {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** heapUsed + external: what the verdict judges. */
  retained: number;
}

/** MemoryVerdict is judgeMemory's answer. */
export interface MemoryVerdict {
  /** true when the retained slope is above the limit. */
  leak: boolean;
  limitMiBPerMillionCalls: number;
  slopeMiBPerMillionCalls: Slopes;
  /** Samples the fit used (those after the warm-up share) and the calls they span. */
  samplesUsed: number;
  callsSpanned: number;
}

/** LEAK_LIMIT_MIB_PER_MILLION_CALLS is the retained-memory slope above which the soak reports a leak. */
export const LEAK_LIMIT_MIB_PER_MILLION_CALLS = 16;

/** WARMUP_SHARE is the share of the run's samples left out of the fit (the start of the measured calls). */
export const WARMUP_SHARE = 0.1;

/** MIN_SAMPLES is the fewest samples a fit needs; below it judgeMemory throws. */
export const MIN_SAMPLES = 5;

const MiB = 1024 * 1024;

/**
 * slope returns the least-squares slope of y against x (units of y per unit of x). Throws when x does not vary.
 */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  if (xs.length !== ys.length || xs.length < 2) throw new Error(`slope needs two or more points, got ${xs.length} and ${ys.length}`);
  const n = xs.length;
  let sumX = 0;
  let sumY = 0;
  for (let i = 0; i < n; i++) {
    sumX += xs[i]!;
    sumY += ys[i]!;
  }
  const meanX = sumX / n;
  const meanY = sumY / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - meanX;
    sxx += dx * dx;
    sxy += dx * (ys[i]! - meanY);
  }
  if (sxx === 0) throw new Error('slope needs points at more than one x');
  return sxy / sxx;
}

/** judgeMemory fits the samples after the warm-up share and judges the retained slope against `limit`. */
export function judgeMemory(samples: readonly MemorySample[], limit = LEAK_LIMIT_MIB_PER_MILLION_CALLS): MemoryVerdict {
  const sorted = [...samples].sort((a, b) => a.calls - b.calls);
  const used = sorted.slice(Math.floor(sorted.length * WARMUP_SHARE));
  if (used.length < MIN_SAMPLES) throw new Error(`the memory verdict needs ${MIN_SAMPLES} samples after the warm-up, got ${used.length}`);
  const millions = used.map((sample) => sample.calls / 1e6);
  const trend = (read: (sample: MemorySample) => number): number => round(slope(millions, used.map((sample) => read(sample) / MiB)), 2);
  const slopes: Slopes = {
    rss: trend((s) => s.rss),
    heapUsed: trend((s) => s.heapUsed),
    external: trend((s) => s.external),
    arrayBuffers: trend((s) => s.arrayBuffers),
    retained: trend((s) => s.heapUsed + s.external),
  };
  return {
    leak: slopes.retained > limit,
    limitMiBPerMillionCalls: limit,
    slopeMiBPerMillionCalls: slopes,
    samplesUsed: used.length,
    callsSpanned: used[used.length - 1]!.calls - used[0]!.calls,
  };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
