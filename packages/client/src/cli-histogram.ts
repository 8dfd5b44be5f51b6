/**
 * LatencyHistogram for `tunnelrpc bench`: HDR-style log-linear buckets of microseconds, so a run of any length
 * costs the same few kilobytes and one increment per call.
 *
 *   0 … 255 µs            one bucket per microsecond
 *   2^k … 2^(k+1) - 1 µs  128 equal buckets, k = 8 … 31   (relative error under 1/128, reported mid-bucket)
 */

const LINEAR = 256;
const SUB_BUCKETS = 128;
const MAX_SHIFT = 24; // 2^31 >> 24 === 128
const MAX_US = 0xffff_ffff;
const BUCKETS = LINEAR + MAX_SHIFT * SUB_BUCKETS;

/** LatencyHistogram counts latencies in microseconds; percentile() reads them back. @internal */
export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #max = 0;
  #min = Number.POSITIVE_INFINITY;
  #sum = 0;

  /** count is the number of values recorded. */
  get count(): number {
    return this.#count;
  }

  /** max is the largest value recorded, exact (0 when empty). */
  get max(): number {
    return this.#max;
  }

  /** min is the smallest value recorded, exact (0 when empty). */
  get min(): number {
    return this.#count === 0 ? 0 : this.#min;
  }

  /** mean is the average value (0 when empty). */
  get mean(): number {
    return this.#count === 0 ? 0 : this.#sum / this.#count;
  }

  /** record adds one latency in microseconds (fractions kept for the mean, dropped for the bucket). */
  record(us: number): void {
    const value = us <= 0 ? 0 : us >= MAX_US ? MAX_US : us;
    this.#counts[bucketOf(Math.floor(value))]!++;
    this.#count++;
    this.#sum += value;
    if (value > this.#max) this.#max = value;
    if (value < this.#min) this.#min = value;
  }

  /** percentile returns the value at or below which `p` percent of the values lie (0 when empty). */
  percentile(p: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.max(this.#min, Math.min(midpointOf(i), this.#max));
    }
    return this.#max;
  }
}

function bucketOf(value: number): number {
  if (value < LINEAR) return value;
  const shift = 31 - Math.clz32(value) - 7; // value >>> shift lies in [128, 256)
  return LINEAR + (shift - 1) * SUB_BUCKETS + ((value >>> shift) - SUB_BUCKETS);
}

function midpointOf(bucket: number): number {
  if (bucket < LINEAR) return bucket + 0.5;
  const shift = Math.floor((bucket - LINEAR) / SUB_BUCKETS) + 1;
  const sub = ((bucket - LINEAR) % SUB_BUCKETS) + SUB_BUCKETS;
  return sub * 2 ** shift + 2 ** (shift - 1);
}
