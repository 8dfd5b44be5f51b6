/**
 * Outlier detection: ejecting an endpoint for what its calls say, not only for failed dials. Named and decided as
 * Envoy's outlier detection (and gRPC's outlier_detection policy, which copies it): consecutive failures eject at
 * once; every `interval` the success rates and failure percentages of the endpoints are compared; an ejection lasts
 * baseEjectionTime times the number of times the endpoint was ejected (capped), and no more than
 * maxEjectionPercent of the endpoints (at least one, never all) are out at once. When the time is up the endpoint
 * takes real calls again: they are the probe. Pure deciders: time comes in as arguments.
 */
import { RpcError, type ErrorCode } from '@tunnelrpc/protocol';
import { checkInteger } from '@tunnelrpc/protocol/internal';

/** OutlierDetectionOptions tune ejection on call outcomes; see ClientOptions.outlierDetection. */
export interface OutlierDetectionOptions {
  /**
   * Answers in a row that blame the endpoint (UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED, an attempt timeout) that
   * eject it at once (Envoy consecutive_5xx). 0 turns this rule off. Default 5. Range 0 … 1000000.
   */
  consecutiveFailures?: number;
  /** ms between two comparisons of the endpoints' success rates (Envoy interval). Default 1000. Range 100 … 2147483647. */
  interval?: number;
  /**
   * ms an endpoint is ejected for, times the number of times it was ejected (Envoy base_ejection_time); each
   * interval it spends back in without an ejection takes one off that count. Default 2000. Range 1 … 2147483647.
   */
  baseEjectionTime?: number;
  /** Longest ejection in ms (Envoy max_ejection_time). Default 30000. Range baseEjectionTime … 2147483647. */
  maxEjectionTime?: number;
  /**
   * Most endpoints ejected at once for their outcomes, as a percentage of the pool; at least one may always be,
   * and never every endpoint: a fleet-wide failure keeps the rest in service (Envoy max_ejection_percent).
   * Default 10. Range 0 … 100.
   */
  maxEjectionPercent?: number;
  /**
   * Endpoints with successRateRequestVolume answers in an interval needed before success rates are compared
   * (Envoy success_rate_minimum_hosts, whose default is 5: a client pool is often three replicas). Default 3.
   * Range 1 … 1000000.
   */
  successRateMinimumHosts?: number;
  /** Answers an endpoint needs in one interval to take part in the success-rate comparison. Default 100. Range 1 … 1000000000. */
  successRateRequestVolume?: number;
  /**
   * An endpoint whose success rate is below the mean minus this many thousandths of a standard deviation is
   * ejected (Envoy success_rate_stdev_factor; 1900 is 1.9 standard deviations). 0 turns the rule off.
   * Default 1900. Range 0 … 100000.
   */
  successRateStdevFactor?: number;
  /**
   * An endpoint whose calls failed this percentage or more in one interval is ejected (Envoy
   * failure_percentage_threshold, off by default there; its 85 only catches a dead endpoint, while a grey one
   * failing a third of its calls is what hurts). 0 turns the rule off. Default 30. Range 0 … 100.
   */
  failurePercentageThreshold?: number;
  /** Endpoints with enough answers needed before failure percentages are judged (Envoy's default: 5). Default 3. Range 1 … 1000000. */
  failurePercentageMinimumHosts?: number;
  /** Answers an endpoint needs in one interval to be judged by its failure percentage. Default 50. Range 1 … 1000000000. */
  failurePercentageRequestVolume?: number;
}

/** ResolvedOutlierDetection is OutlierDetectionOptions filled in; `enabled` false when the option was false. @internal */
export interface ResolvedOutlierDetection extends Required<OutlierDetectionOptions> {
  readonly enabled: boolean;
}

const MAX_TIMER_MS = 2_147_483_647;

/** resolveOutlierDetection fills the defaults and validates, naming the bad field. @internal */
export function resolveOutlierDetection(value: OutlierDetectionOptions | false | undefined): ResolvedOutlierDetection {
  if (value !== undefined && value !== false && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new RpcError('INVALID_ARGUMENT', `option outlierDetection must be an object of settings or false; got ${value === null ? 'null' : typeof value}`);
  }
  const given = value === false || value === undefined ? {} : value;
  const field = (name: keyof OutlierDetectionOptions, fallback: number, min: number, max: number): number =>
    checkInteger(`outlierDetection.${name}`, given[name] ?? fallback, min, max);
  const baseEjectionTime = field('baseEjectionTime', 2000, 1, MAX_TIMER_MS);
  return {
    enabled: value !== false,
    consecutiveFailures: field('consecutiveFailures', 5, 0, 1_000_000),
    interval: field('interval', 1000, 100, MAX_TIMER_MS),
    baseEjectionTime,
    maxEjectionTime: field('maxEjectionTime', Math.max(30_000, baseEjectionTime), baseEjectionTime, MAX_TIMER_MS),
    maxEjectionPercent: field('maxEjectionPercent', 10, 0, 100),
    successRateMinimumHosts: field('successRateMinimumHosts', 3, 1, 1_000_000),
    successRateRequestVolume: field('successRateRequestVolume', 100, 1, 1_000_000_000),
    successRateStdevFactor: field('successRateStdevFactor', 1900, 0, 100_000),
    failurePercentageThreshold: field('failurePercentageThreshold', 30, 0, 100),
    failurePercentageMinimumHosts: field('failurePercentageMinimumHosts', 3, 1, 1_000_000),
    failurePercentageRequestVolume: field('failurePercentageRequestVolume', 50, 1, 1_000_000_000),
  };
}

/**
 * blamesEndpoint tells whether an answer with `code` says the endpoint is unwell (UNAVAILABLE, INTERNAL,
 * DEADLINE_EXCEEDED), as a 5xx or a gateway timeout does for Envoy. Codes that say the caller was wrong
 * (INVALID_ARGUMENT, PERMISSION_DENIED, NOT_FOUND…) or that the server chose to refuse never count.
 * @internal
 */
export function blamesEndpoint(code: ErrorCode | string | undefined): boolean {
  return code === 'UNAVAILABLE' || code === 'INTERNAL' || code === 'DEADLINE_EXCEEDED';
}

/** ejectionTime returns the ms of an endpoint's `times`-th ejection: base × times, at most max. @internal */
export function ejectionTime(times: number, base: number, max: number): number {
  return Math.min(max, base * Math.max(1, times));
}

/**
 * mayEject tells whether one more endpoint may be ejected when `ejected` of `total` are out already: no more than
 * maxPercent of them (but one always may), and never the last one in service.
 * @internal
 */
export function mayEject(ejected: number, total: number, maxPercent: number): boolean {
  if (ejected + 1 >= total) return false;
  return ejected < Math.max(1, Math.floor((total * maxPercent) / 100));
}

/** IntervalCounts are one endpoint's answers in the interval just ended. @internal */
export interface IntervalCounts {
  readonly successes: number;
  readonly failures: number;
}

/**
 * outliersOf returns the indexes of the endpoints whose interval counts make them outliers: success rate below
 * mean − stdev × factor/1000 among those with successRateRequestVolume answers (when at least
 * successRateMinimumHosts have), or failure percentage at or above the threshold among those with
 * failurePercentageRequestVolume answers (when at least failurePercentageMinimumHosts have). Worst first.
 * @internal
 */
export function outliersOf(counts: readonly IntervalCounts[], options: ResolvedOutlierDetection): number[] {
  const flagged = new Map<number, number>();
  const rate = (each: IntervalCounts): number => each.successes / (each.successes + each.failures);
  if (options.successRateStdevFactor > 0) {
    const volume = counts.map((each, index) => ({ index, total: each.successes + each.failures })).filter((each) => each.total >= options.successRateRequestVolume);
    if (volume.length >= options.successRateMinimumHosts) {
      const rates = volume.map((each) => rate(counts[each.index]!));
      const mean = rates.reduce((sum, each) => sum + each, 0) / rates.length;
      const stdev = Math.sqrt(rates.reduce((sum, each) => sum + (each - mean) ** 2, 0) / rates.length);
      const floor = mean - (stdev * options.successRateStdevFactor) / 1000;
      volume.forEach((each, i) => {
        if (rates[i]! < floor) flagged.set(each.index, rates[i]!);
      });
    }
  }
  if (options.failurePercentageThreshold > 0) {
    const volume = counts.map((each, index) => ({ index, total: each.successes + each.failures })).filter((each) => each.total >= options.failurePercentageRequestVolume);
    if (volume.length >= options.failurePercentageMinimumHosts) {
      for (const each of volume) {
        const failed = counts[each.index]!.failures / each.total;
        if (failed * 100 >= options.failurePercentageThreshold) flagged.set(each.index, Math.min(flagged.get(each.index) ?? 1, 1 - failed));
      }
    }
  }
  return [...flagged.entries()].sort((a, b) => a[1] - b[1]).map(([index]) => index);
}

/**
 * PeakEwma is an endpoint's recent latency as Finagle's and Linkerd's peak-EWMA balancers keep it: a slower answer
 * than the current estimate is taken at once (the peak), a faster one moves it by an exponentially weighted step,
 * and the estimate decays toward zero with time without answers, so a once-slow endpoint is tried again.
 * @internal
 */
export class PeakEwma {
  readonly #decayTime: number;
  #cost = 0;
  #stamp = 0;

  /** `decayTime` is the time constant in ms: the weight of what was seen falls to 1/e over it. */
  constructor(decayTime: number) {
    this.#decayTime = decayTime;
  }

  /** observe records an answer that took `latency` ms, at `now` (performance.now()). */
  observe(latency: number, now: number): void {
    const weight = Math.exp(-Math.max(0, now - this.#stamp) / this.#decayTime);
    this.#cost = latency > this.#cost ? latency : this.#cost * weight + latency * (1 - weight);
    this.#stamp = now;
  }

  /** cost returns the estimate at `now`, decayed toward zero since the last answer; 0 before any answer. */
  cost(now: number): number {
    const elapsed = now - this.#stamp;
    return elapsed <= 0 ? this.#cost : this.#cost * Math.exp(-elapsed / this.#decayTime);
  }
}
