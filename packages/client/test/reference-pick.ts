/**
 * The pool's pick rule written plainly, as the tests' reference: two candidates drawn at random (distinct when there
 * are two or more) with balancer.ts's drawTwo, the one with fewer outstanding calls wins, ties to the first drawn.
 * The picker (picker.ts) must pick what this picks over the same tunnels and draws.
 */
import { drawTwo } from '../dist/balancer.js';

/** pickTunnel returns the candidate the rule picks, or undefined when there are none. */
export function pickTunnel<T extends { readonly load: number }>(candidates: readonly T[], random: () => number): T | undefined {
  const count = candidates.length;
  if (count <= 1) return candidates[0];
  const [first, second] = drawTwo(count, random);
  const a = candidates[first]!;
  const b = candidates[second]!;
  return b.load < a.load ? b : a;
}
