/**
 * The pool's picker, pure: plain objects play the tunnels and endpoints, and the random source is seeded. It must
 * see a change only after markStale (it does not walk the endpoints per call), pick as the power-of-two-choices
 * balancer does, skip tunnels over maxWriteBuffer, and fall back to outliers only when nothing in service can take
 * the call.
 */
import { expect } from 'chai';
// White-box tests of internal modules read them from the package's build: they are not part of its public surface.
import { Picker } from '../dist/picker.js';
import { pickTunnel } from './reference-pick.js';
import { mulberry32 as seeded } from '@tunnelrpc/test-kit';

interface FakeTunnel {
  name: string;
  accepting: boolean;
  unsentBytes: number;
  load: number;
}

interface FakeEndpoint {
  open: FakeTunnel[];
  outlier: boolean;
  latency: number;
  latencyCost(now: number): number;
}

const MAX_WRITE_BUFFER = 1000;

function tunnel(name: string, load = 0): FakeTunnel {
  return { name, accepting: true, unsentBytes: 0, load };
}

function endpoint(...open: FakeTunnel[]): FakeEndpoint {
  return {
    open,
    outlier: false,
    latency: 0,
    latencyCost(): number {
      return this.latency;
    },
  };
}

/** sequence returns a random source that yields `values` in turn (then repeats the last). */
function sequence(...values: number[]): () => number {
  let index = 0;
  return () => values[Math.min(index++, values.length - 1)]!;
}

interface Built {
  picker: Picker<FakeTunnel, FakeEndpoint>;
  endpoints: FakeEndpoint[];
  /** Times the picker read the endpoint list: once per rebuild. */
  reads(): number;
}

function build(endpoints: FakeEndpoint[], random: () => number = seeded(1), latencyAware = false): Built {
  let reads = 0;
  const picker = new Picker<FakeTunnel, FakeEndpoint>(() => (reads++, endpoints), { maxWriteBuffer: MAX_WRITE_BUFFER, latencyAware }, random);
  return { picker, endpoints, reads: () => reads };
}

function names(picker: Picker<FakeTunnel, FakeEndpoint>, picks: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < picks; i++) {
    const picked = picker.pick();
    const name = picked?.name ?? 'none';
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}

describe('Picker', () => {
  describe('#pick', () => {
    it('returns undefined, with no owner, when no endpoint has a tunnel', () => {
      const { picker } = build([endpoint(), endpoint()]);
      expect(picker.pick()).to.equal(undefined);
      expect(picker.owner).to.equal(undefined);
    });

    it('returns the only tunnel, and its endpoint as owner, without drawing', () => {
      let draws = 0;
      const only = tunnel('a');
      const owner = endpoint(only);
      const { picker } = build([endpoint(), owner], () => (draws++, 0.5));
      expect(picker.pick()).to.equal(only);
      expect(picker.owner).to.equal(owner);
      expect(draws).to.equal(0);
    });

    it('picks what pickTunnel picks over the same tunnels with the same random draws', () => {
      const list = [tunnel('a', 5), tunnel('b', 1), tunnel('c', 9), tunnel('d', 3), tunnel('e', 1)];
      const { picker } = build([endpoint(list[0]!, list[1]!), endpoint(list[2]!), endpoint(list[3]!, list[4]!)], seeded(7));
      const reference = seeded(7);
      for (let i = 0; i < 1000; i++) {
        // Loads move between picks, as calls start and end; the candidate set does not.
        list[i % list.length]!.load = (i * 7) % 5;
        expect(picker.pick()!.name, `pick ${i}`).to.equal(pickTunnel(list, reference)!.name);
      }
    });

    it('spreads calls by power of two choices: never the most loaded of four, the least loaded half the time', () => {
      const { picker } = build([endpoint(tunnel('l0', 0), tunnel('l1', 1)), endpoint(tunnel('l2', 2), tunnel('l3', 3))], seeded(42));
      const counts = names(picker, 60_000);
      // Of the six pairs, l0 wins the three it is in, l1 two, l2 one, l3 none.
      expect(counts.get('l3') ?? 0).to.equal(0);
      expect(counts.get('l0')! / 60_000).to.be.closeTo(3 / 6, 0.02);
      expect(counts.get('l1')! / 60_000).to.be.closeTo(2 / 6, 0.02);
      expect(counts.get('l2')! / 60_000).to.be.closeTo(1 / 6, 0.02);
    });

    it('weighs each side by its endpoint latency when latencyAware is on', () => {
      const fast = endpoint(tunnel('fast', 4));
      const slow = endpoint(tunnel('slow', 0));
      fast.latency = 1;
      slow.latency = 50;
      // Drawn slow first, fast second: (0 + 1) × 50 against (4 + 1) × 1.
      const aware = build([fast, slow], sequence(0.9, 0), true).picker;
      expect(aware.pick()!.name).to.equal('fast');
      expect(aware.owner).to.equal(fast);
      const plain = build([fast, slow], sequence(0.9, 0), false).picker;
      expect(plain.pick()!.name).to.equal('slow');
    });
  });

  describe('maxWriteBuffer', () => {
    it('never picks a tunnel over maxWriteBuffer unsent bytes, and spreads over the others', () => {
      const backed = tunnel('backed');
      backed.unsentBytes = MAX_WRITE_BUFFER + 1;
      const { picker } = build([endpoint(tunnel('a'), backed), endpoint(tunnel('b'))], seeded(3));
      const counts = names(picker, 3000);
      expect(counts.get('backed') ?? 0).to.equal(0);
      expect(counts.get('none') ?? 0).to.equal(0);
      expect(counts.get('a')! / 3000).to.be.closeTo(0.5, 0.05);
    });

    it('takes a tunnel at exactly maxWriteBuffer, and the drawn one again once its socket drains', () => {
      const a = tunnel('a', 0);
      const b = tunnel('b', 9);
      a.unsentBytes = MAX_WRITE_BUFFER;
      const { picker } = build([endpoint(a, b)], sequence(0));
      expect(picker.pick()).to.equal(a);
      a.unsentBytes = MAX_WRITE_BUFFER + 1;
      expect(picker.pick()).to.equal(b);
      a.unsentBytes = 0;
      expect(picker.pick()).to.equal(a);
    });

    it('returns undefined when every tunnel is over it and there is no outlier', () => {
      const a = tunnel('a');
      const b = tunnel('b');
      a.unsentBytes = b.unsentBytes = MAX_WRITE_BUFFER + 1;
      const { picker } = build([endpoint(a), endpoint(b)]);
      expect(picker.pick()).to.equal(undefined);
    });
  });

  describe('outliers', () => {
    it('sends nothing to an outlier while a tunnel in service can take the call', () => {
      const ejected = endpoint(tunnel('x1'), tunnel('x2'));
      ejected.outlier = true;
      const { picker } = build([ejected, endpoint(tunnel('a')), endpoint(tunnel('b'))], seeded(5));
      const counts = names(picker, 2000);
      expect([...counts.keys()].sort()).to.deep.equal(['a', 'b']);
    });

    it('falls back to the first outlier tunnel that can take it when none in service can', () => {
      const x1 = tunnel('x1');
      const ejected = endpoint(x1, tunnel('x2'));
      ejected.outlier = true;
      const a = tunnel('a');
      a.unsentBytes = MAX_WRITE_BUFFER + 1;
      const { picker } = build([endpoint(a), ejected]);
      expect(picker.pick()!.name).to.equal('x1');
      expect(picker.owner).to.equal(ejected);
      x1.unsentBytes = MAX_WRITE_BUFFER + 1;
      expect(picker.pick()!.name).to.equal('x2');
      a.unsentBytes = 0;
      expect(picker.pick()!.name).to.equal('a');
    });

    it('uses an outlier when it is the only endpoint with a tunnel', () => {
      const ejected = endpoint(tunnel('x'));
      ejected.outlier = true;
      const { picker } = build([endpoint(), ejected]);
      expect(picker.pick()!.name).to.equal('x');
    });
  });

  describe('#markStale', () => {
    it('gathers the candidates once, not per pick, until marked stale', () => {
      const { picker, reads } = build([endpoint(tunnel('a'), tunnel('b'))]);
      for (let i = 0; i < 100; i++) picker.pick();
      expect(picker.openCount).to.equal(2);
      expect(reads()).to.equal(1);
      picker.markStale();
      picker.pick();
      picker.pick();
      expect(reads()).to.equal(2);
    });

    it('sees a tunnel that opened only after markStale', () => {
      const owner = endpoint(tunnel('a'));
      const { picker } = build([owner]);
      expect(picker.pick()!.name).to.equal('a');
      owner.open.push(tunnel('b', 0));
      owner.open[0]!.load = 5;
      expect(picker.pick()!.name).to.equal('a');
      expect(picker.openCount).to.equal(1);
      picker.markStale();
      expect(picker.pick()!.name).to.equal('b');
      expect(picker.openCount).to.equal(2);
    });

    it('drops a tunnel that drained or ended (left its endpoint) after markStale', () => {
      const a = tunnel('a', 0);
      const owner = endpoint(a, tunnel('b', 5));
      const { picker } = build([owner], sequence(0));
      expect(picker.pick()).to.equal(a);
      owner.open.splice(0, 1);
      picker.markStale();
      const counts = names(picker, 50);
      expect([...counts.keys()]).to.deep.equal(['b']);
    });

    it('skips a tunnel that stopped accepting even before markStale, and drops it at the next pick', () => {
      const a = tunnel('a', 0);
      const owner = endpoint(a, tunnel('b', 5));
      const { picker, reads } = build([owner], sequence(0));
      expect(picker.pick()).to.equal(a);
      // A closing tunnel stays among its endpoint's open ones until it ends, and stops accepting at once.
      a.accepting = false;
      expect(picker.pick()!.name).to.equal('b');
      expect(picker.pick()!.name).to.equal('b');
      expect(reads()).to.equal(2);
      expect(picker.openCount).to.equal(2);
    });

    it('moves an endpoint ejected for its answers to the fallback, and back when it returns', () => {
      const first = endpoint(tunnel('a'));
      const second = endpoint(tunnel('b'));
      const { picker } = build([first, second], seeded(11));
      expect([...names(picker, 200).keys()].sort()).to.deep.equal(['a', 'b']);
      first.outlier = true;
      picker.markStale();
      expect([...names(picker, 200).keys()]).to.deep.equal(['b']);
      first.outlier = false;
      picker.markStale();
      expect([...names(picker, 200).keys()].sort()).to.deep.equal(['a', 'b']);
    });

    it('follows endpoints added to and removed from the pool', () => {
      const endpoints = [endpoint(tunnel('a'))];
      const { picker } = build(endpoints, seeded(13));
      endpoints.push(endpoint(tunnel('b')));
      picker.markStale();
      expect([...names(picker, 200).keys()].sort()).to.deep.equal(['a', 'b']);
      endpoints.splice(0, 1);
      picker.markStale();
      expect([...names(picker, 200).keys()]).to.deep.equal(['b']);
      expect(picker.openCount).to.equal(1);
    });
  });

  describe('#openCount', () => {
    it('counts every open tunnel: outliers, closing ones and those over maxWriteBuffer included', () => {
      const closing = tunnel('closing');
      closing.accepting = false;
      const backed = tunnel('backed');
      backed.unsentBytes = MAX_WRITE_BUFFER + 1;
      const ejected = endpoint(tunnel('x'));
      ejected.outlier = true;
      const { picker } = build([endpoint(closing, backed), ejected, endpoint()]);
      expect(picker.openCount).to.equal(3);
    });
  });
});
