/**
 * LatencyHistogram: an HDR-like log-linear histogram of call latencies in nanoseconds, so that recording costs an
 * index computation and one increment however long the run is.
 *
 *   values 0 … 127 ns            one bucket per nanosecond
 *   values 2^k … 2^(k+1) - 1     64 equal buckets, k = 7 … 31    (relative error under 1/64, reported mid-bucket)
 *
 * Values above 2^32 - 1 ns (4.29 s) land in the last bucket. bench/go/main.go uses the same layout.
 */

const LINEAR = 128;
const SUB_BUCKETS = 64;
const MAX_SHIFT = 25; // 2^31 >> 25 === 64
const MAX_NS = 0xffff_ffff;
/** BUCKETS is the number of counters one histogram holds. */
export const BUCKETS = LINEAR + MAX_SHIFT * SUB_BUCKETS;

/** LatencyHistogram counts latencies; percentile() reads them back. */
export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #max = 0;

  /** count is the number of values recorded. */
  get count(): number {
    return this.#count;
  }

  /** maxNs is the largest value recorded, exact. */
  get maxNs(): number {
    return this.#max;
  }

  /** record adds one latency in nanoseconds (fractions are dropped; negatives count as 0). */
  record(ns: number): void {
    const value = ns <= 0 ? 0 : ns >= MAX_NS ? MAX_NS : Math.floor(ns);
    this.#counts[bucketOf(value)]!++;
    this.#count++;
    if (value > this.#max) this.#max = value;
  }

  /** sparse returns the non-empty buckets as [bucket, count] pairs (what a client process reports). */
  sparse(): [number, number][] {
    const pairs: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.#counts[i]! > 0) pairs.push([i, this.#counts[i]!]);
    return pairs;
  }

  /** merge adds another process's sparse buckets and its maximum. */
  merge(pairs: readonly (readonly [number, number])[], maxNs: number): void {
    for (const [bucket, count] of pairs) {
      if (!Number.isInteger(bucket) || bucket < 0 || bucket >= BUCKETS) throw new Error(`histogram bucket ${bucket} is out of range`);
      this.#counts[bucket]! += count;
      this.#count += count;
    }
    if (maxNs > this.#max) this.#max = maxNs;
  }

  /** percentile returns the value in nanoseconds at or below which `p` percent of the values lie (0 when empty). */
  percentile(p: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(midpointOf(i), this.#max);
    }
    return this.#max;
  }
}

function bucketOf(value: number): number {
  if (value < LINEAR) return value;
  const shift = 31 - Math.clz32(value) - 6; // value >>> shift lies in [64, 128)
  return LINEAR + (shift - 1) * SUB_BUCKETS + ((value >>> shift) - SUB_BUCKETS);
}

function midpointOf(bucket: number): number {
  if (bucket < LINEAR) return bucket;
  const shift = Math.floor((bucket - LINEAR) / SUB_BUCKETS) + 1;
  const sub = ((bucket - LINEAR) % SUB_BUCKETS) + SUB_BUCKETS;
  return sub * 2 ** shift + 2 ** (shift - 1);
}
