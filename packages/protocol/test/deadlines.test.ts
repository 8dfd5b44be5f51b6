/**
 * Deadlines: shared timers, and what a group keeps of the members it no longer waits for (nothing). Timers are
 * handed in, so the tests drive them by hand.
 */
import { expect } from 'chai';
import { Deadlines, type DeadlineGroup, type TimerFunctions } from '@tunnelrpc/protocol/internal';

interface Member {
  deadlineGroup: DeadlineGroup | undefined;
  deadlineSlot: number;
  name: string;
}

function manualTimers(): TimerFunctions & { fire(): void; live: number } {
  const pending = new Map<number, () => void>();
  let next = 0;
  return {
    set: (run) => {
      pending.set(++next, run);
      return next;
    },
    clear: (handle) => {
      pending.delete(handle as number);
    },
    fire: () => {
      const runs = [...pending.values()];
      pending.clear();
      for (const run of runs) run();
    },
    get live() {
      return pending.size;
    },
  };
}

function member(name: string): Member {
  return { deadlineGroup: undefined, deadlineSlot: 0, name };
}

describe('Deadlines', () => {
  it('shares one timer between members armed in the same ms with the same timeout', () => {
    const timers = manualTimers();
    const expired: string[] = [];
    const deadlines = new Deadlines<Member>((m) => expired.push(m.name), timers);
    const [a, b, c] = [member('a'), member('b'), member('c')];
    deadlines.arm(a, 100, 1);
    deadlines.arm(b, 100, 1);
    deadlines.arm(c, 100, 2);
    expect(timers.live).to.equal(2);
    deadlines.disarm(b);
    timers.fire();
    expect(expired).to.deep.equal(['a', 'c']);
  });

  it('lets go of a disarmed member at once, while others still wait on the same timer', () => {
    const timers = manualTimers();
    const deadlines = new Deadlines<Member>(() => {}, timers);
    const [a, b] = [member('a'), member('b')];
    deadlines.arm(a, 100, 1);
    deadlines.arm(b, 100, 1);
    const group = a.deadlineGroup!;
    deadlines.disarm(a);
    // A settled call must not stay reachable from a group that outlives it: its result would survive scavenges.
    expect(group.members).to.not.include(a);
    expect(group.members).to.include(b);
    expect(a.deadlineGroup).to.equal(undefined);
    deadlines.disarm(b);
    expect(group.members).to.deep.equal([]);
    expect(timers.live).to.equal(0);
  });
});
