/**
 * The pool's pure deciders, with time and randomness passed in: the power-of-two-choices pick (balancer.ts), the
 * jittered ejection backoff, the one-probe-then-the-rest dial plan, and the rate-limited DNS refresh (ejection.ts).
 */
import { expect } from 'chai';
// White-box tests of internal modules read them from the package's build: they are not part of its public surface.
import { pickTunnel } from './reference-pick.js';
import { dialsToStart, ejectionDelay, resolveDelay } from '../dist/ejection.js';

/** sequence returns a random source that yields `values` in turn (then repeats the last). */
function sequence(...values: number[]): () => number {
  let index = 0;
  return () => values[Math.min(index++, values.length - 1)]!;
}

const tunnels = (...loads: number[]): Array<{ name: string; load: number }> => loads.map((load, index) => ({ name: `t${index}`, load }));

describe('pickTunnel', () => {
  it('returns undefined when there is no candidate', () => {
    expect(pickTunnel([], sequence(0.5))).to.equal(undefined);
  });

  it('returns the only candidate without drawing', () => {
    const only = tunnels(7);
    let draws = 0;
    expect(pickTunnel(only, () => (draws++, 0.5))).to.equal(only[0]);
    expect(draws).to.equal(0);
  });

  it('takes the one with fewer outstanding calls of the two drawn', () => {
    const list = tunnels(5, 1, 9, 3);
    // First draw: floor(0.1 * 4) = 0 (load 5); second among the other three: floor(0.5 * 3) = 1, skipping 0 -> 2 (load 9).
    expect(pickTunnel(list, sequence(0.1, 0.5))!.name).to.equal('t0');
    // 0.6 * 4 = 2 (load 9); 0.0 * 3 = 0 (load 5): takes t0.
    expect(pickTunnel(list, sequence(0.6, 0))!.name).to.equal('t0');
    // 0.3 * 4 = 1 (load 1); 0.9 * 3 = 2 -> 3 (load 3): takes t1.
    expect(pickTunnel(list, sequence(0.3, 0.9))!.name).to.equal('t1');
  });

  it('never draws the same candidate twice, even at the edges of [0, 1)', () => {
    const list = tunnels(0, 0);
    for (const [a, b] of [[0, 0], [0.999999, 0.999999], [0, 0.999999], [0.999999, 0]] as const) {
      const seen: string[] = [];
      // Two equal loads: the first drawn wins, so the pick names the first draw.
      const picked = pickTunnel(list, sequence(a, b))!;
      seen.push(picked.name);
      expect(picked.name).to.equal(a < 0.5 ? 't0' : 't1');
    }
  });

  it('gives the first drawn on a tie, so equal loads spread at random', () => {
    const list = tunnels(2, 2, 2);
    expect(pickTunnel(list, sequence(0.7, 0))!.name).to.equal('t2');
    expect(pickTunnel(list, sequence(0.2, 0.9))!.name).to.equal('t0');
  });

  it('never picks the most loaded of three (the herd that round robin or "least" would make)', () => {
    const list = tunnels(1, 1, 100);
    let random = 0;
    const counts = new Map<string, number>();
    // Every pair of draws on a grid of 20 x 20 random values.
    for (let i = 0; i < 20; i++) {
      for (let j = 0; j < 20; j++) {
        random = 0;
        const values = [i / 20, j / 20];
        const picked = pickTunnel(list, () => values[random++]!)!;
        counts.set(picked.name, (counts.get(picked.name) ?? 0) + 1);
      }
    }
    expect(counts.get('t2') ?? 0).to.equal(0);
    expect(counts.get('t0')).to.be.greaterThan(0);
    expect(counts.get('t1')).to.be.greaterThan(0);
  });
});

describe('ejectionDelay', () => {
  it('is 0 before any failure: the first dial goes at once', () => {
    expect(ejectionDelay(0, 100, 10_000, sequence(0.5))).to.equal(0);
  });

  it('doubles per failure from minDelay, with equal jitter between half and all of it', () => {
    expect(ejectionDelay(1, 100, 10_000, sequence(0))).to.equal(50);
    expect(ejectionDelay(1, 100, 10_000, sequence(0.999999))).to.equal(100);
    expect(ejectionDelay(2, 100, 10_000, sequence(0))).to.equal(100);
    expect(ejectionDelay(3, 100, 10_000, sequence(0.5))).to.equal(300);
  });

  it('stops growing at maxDelay, even after very many failures', () => {
    expect(ejectionDelay(8, 100, 10_000, sequence(0))).to.equal(5000);
    expect(ejectionDelay(1_000_000, 100, 10_000, sequence(0.999999))).to.equal(10_000);
  });

  it('spreads clients that failed together over half the window (no reconnect storm)', () => {
    const delays = new Set<number>();
    for (let i = 0; i < 10; i++) delays.add(ejectionDelay(4, 100, 10_000, sequence(i / 10)));
    expect(delays.size).to.equal(10);
    expect(Math.min(...delays)).to.equal(400);
  });
});

describe('dialsToStart', () => {
  it('probes a down endpoint with one dial at a time', () => {
    expect(dialsToStart(0, 0, 4)).to.equal(1);
    expect(dialsToStart(0, 1, 4)).to.equal(0);
  });

  it('opens the rest once one tunnel is up', () => {
    expect(dialsToStart(1, 0, 4)).to.equal(3);
    expect(dialsToStart(2, 1, 4)).to.equal(1);
    expect(dialsToStart(4, 0, 4)).to.equal(0);
  });

  it('never dials for an endpoint that has what it wants', () => {
    expect(dialsToStart(1, 0, 1)).to.equal(0);
    expect(dialsToStart(5, 0, 4)).to.equal(0);
  });
});

describe('resolveDelay', () => {
  it('waits the interval after the last resolution for the periodic refresh', () => {
    expect(resolveDelay(1000, 1000, false, 30_000, 5000)).to.equal(30_000);
    expect(resolveDelay(1000, 21_000, false, 30_000, 5000)).to.equal(10_000);
    expect(resolveDelay(1000, 99_000, false, 30_000, 5000)).to.equal(0);
  });

  it('does not refresh periodically when the interval is 0', () => {
    expect(resolveDelay(1000, 50_000, false, 0, 5000)).to.equal(undefined);
  });

  it('resolves again after a failure, but no sooner than minInterval after the last time', () => {
    expect(resolveDelay(1000, 2000, true, 30_000, 5000)).to.equal(4000);
    expect(resolveDelay(1000, 9000, true, 30_000, 5000)).to.equal(0);
    expect(resolveDelay(1000, 2000, true, 0, 5000)).to.equal(4000);
  });
});
