/**
 * Balancer: the pick among open tunnels. Power of two choices on outstanding calls (Envoy's LEAST_REQUEST, grpc-go
 * balancer/leastrequest): sample two tunnels at random and take the one with fewer calls waiting on it. It follows
 * load as closely as "least loaded" without sending every new call to the same tunnel (the herd that "least" makes
 * when many calls arrive between two updates), and costs O(1) per call.
 */

/** BalancerCandidate is what the pick looks at: calls waiting for answers on it. @internal */
export interface BalancerCandidate {
  readonly load: number;
}

/**
 * pickTunnel returns the candidate with fewer outstanding calls among two drawn at random (distinct when there are
 * two or more), or undefined when there are none. `random` returns a number in [0, 1), as Math.random does; tests
 * pass their own. Ties go to the first drawn, so equal loads still spread at random.
 * @internal
 */
export function pickTunnel<T extends BalancerCandidate>(candidates: readonly T[], random: () => number): T | undefined {
  const count = candidates.length;
  if (count <= 1) return candidates[0];
  const first = Math.min(count - 1, Math.floor(random() * count));
  let second = Math.min(count - 2, Math.floor(random() * (count - 1)));
  if (second >= first) second++;
  const a = candidates[first]!;
  const b = candidates[second]!;
  return b.load < a.load ? b : a;
}
