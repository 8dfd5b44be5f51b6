/**
 * Ejection: when an endpoint stops taking calls and when it gets them again. An endpoint whose dial fails (refused,
 * timed out, HTTP refusal) or whose tunnel is lost before it achieved anything is ejected: no call is routed to it,
 * and it is dialled again after a jittered, growing delay; its first tunnel up re-admits it. Pure deciders: time
 * and randomness come in as arguments (grpc-go swaps its random source in tests, leastrequest.go:42-44).
 */

/**
 * ejectionDelay returns the ms to wait before dialling an endpoint again after `failures` failures in a row:
 * minDelay doubled per failure up to maxDelay, with equal jitter (half fixed, half random) so that the clients of a
 * lost server do not come back at the same instant (no reconnect storm). 0 failures: 0 (dial at once).
 * @internal
 */
export function ejectionDelay(failures: number, minDelay: number, maxDelay: number, random: () => number): number {
  if (failures <= 0) return 0;
  const ceiling = Math.min(maxDelay, minDelay * 2 ** Math.min(failures - 1, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * dialsToStart returns how many dials an endpoint should start now to reach `wanted` tunnels. While it has no open
 * tunnel it probes with one dial at a time: an endpoint that comes back gets one connection from each client first,
 * not `wanted` at once, and a dead one costs one failed dial per backoff step. Once a tunnel is up, the rest follow.
 * @internal
 */
export function dialsToStart(open: number, dialing: number, wanted: number): number {
  if (open === 0) return dialing === 0 ? 1 : 0;
  return Math.max(0, wanted - open - dialing);
}

/**
 * resolveDelay returns the ms until the next DNS resolution of a host name may start: `interval` after the last one
 * for the periodic refresh (never, when interval is 0 and nothing failed), and no sooner than `minInterval` after
 * it when an endpoint failed (`failed`), so that a flapping fleet cannot turn into a flood of DNS queries.
 * @internal
 */
export function resolveDelay(lastResolvedAt: number, now: number, failed: boolean, interval: number, minInterval: number): number | undefined {
  const since = now - lastResolvedAt;
  if (failed) return Math.max(0, minInterval - since);
  if (interval === 0) return undefined;
  return Math.max(0, interval - since);
}
