/**
 * Balancer: the pick among open tunnels. Power of two choices on outstanding calls (Envoy's LEAST_REQUEST, grpc-go
 * balancer/leastrequest): sample two tunnels at random and take the one with fewer calls waiting on it. It follows
 * load as closely as "least loaded" without sending every new call to the same tunnel (the herd that "least" makes
 * when many calls arrive between two updates), and costs O(1) per call. With latency awareness each side's
 * outstanding calls are weighed by its endpoint's peak-EWMA latency (Finagle's and Linkerd's P2C PeakEwma).
 */

// Finagle's penalty for an endpoint with calls out and no answer yet: it gets one call, then waits its turn.
const UNMEASURED_PENALTY = 1e9;

/**
 * weighedLoad is what the latency-aware pick compares: (outstanding + 1) × latency, or for an endpoint not yet
 * measured 0 while it has nothing outstanding (so it gets a first call) and a large penalty plus its load after.
 * @internal
 */
export function weighedLoad(load: number, latency: number): number {
  if (latency === 0) return load === 0 ? 0 : UNMEASURED_PENALTY + load;
  return latency * (load + 1);
}

// Reused by drawTwo: the pick runs per call and must not allocate.
const pair: [number, number] = [0, 0];

/**
 * drawTwo returns two distinct indexes below `count` (count ≥ 2) drawn at random; the array is reused between
 * calls. @internal
 */
export function drawTwo(count: number, random: () => number): readonly [number, number] {
  const first = Math.min(count - 1, Math.floor(random() * count));
  let second = Math.min(count - 2, Math.floor(random() * (count - 1)));
  if (second >= first) second++;
  pair[0] = first;
  pair[1] = second;
  return pair;
}
