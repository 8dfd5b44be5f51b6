/**
 * Observers: each observer guarded, and ends told at the end of the tick (endedSoon) with one clock read.
 */
import { expect } from 'chai';
import type { CallObserver, ObservedMethod } from '@tunnelrpc/protocol';
import { Observers, observedMethod } from '@tunnelrpc/protocol/internal';

const ADD = observedMethod('Echo.add', 'unary', true);
const FAIL = observedMethod('Echo.fail', 'unary', true);

function recorder(): CallObserver & { events: string[]; seconds: number[] } {
  const events: string[] = [];
  const seconds: number[] = [];
  return {
    events,
    seconds,
    callStarted: (method: ObservedMethod) => events.push(`start ${method.method}`),
    callEnded: (method: ObservedMethod, code: string, took: number) => {
      events.push(`end ${method.method} ${code}`);
      seconds.push(took);
    },
  };
}

const nextTick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

describe('Observers', () => {
  it('tells ends queued in one tick at its end, in order, each with its own start and one clock read', async () => {
    const seen = recorder();
    const observers = new Observers([seen], () => {});
    const now = performance.now();
    observers.endedSoon(ADD, 'OK', now - 2000);
    observers.endedSoon(FAIL, 'NOT_FOUND', now - 1000);
    expect(seen.events).to.deep.equal([]);
    await nextTick();
    expect(seen.events).to.deep.equal(['end Echo.add OK', 'end Echo.fail NOT_FOUND']);
    // Started a second apart and ended at the same reading: exactly a second apart.
    expect(seen.seconds[0]! - seen.seconds[1]!).to.be.closeTo(1, 1e-9);
    expect(seen.seconds[1]).to.be.at.least(1);
  });

  it('tells the end of a call that ends while the queue is being told, and nothing twice', async () => {
    const seen = recorder();
    let observers: Observers | undefined;
    const chaining: CallObserver = {
      callStarted: () => {},
      callEnded: (method) => {
        if (method === ADD) observers!.endedSoon(FAIL, 'CANCELLED', performance.now());
      },
    };
    observers = new Observers([chaining, seen], () => {});
    observers.endedSoon(ADD, 'OK', performance.now());
    await nextTick();
    await nextTick();
    expect(seen.events).to.deep.equal(['end Echo.add OK', 'end Echo.fail CANCELLED']);
  });

  it('keeps telling the others when an observer and the failure report both throw, and nothing escapes the tick', async () => {
    const seen = recorder();
    const failures: string[] = [];
    const throwing: CallObserver = {
      callStarted: () => {
        throw new Error('observer bug at start');
      },
      callEnded: () => {
        throw new Error('observer bug at end');
      },
    };
    const observers = new Observers([throwing, seen], (_error, hook) => {
      failures.push(hook);
      throw new Error('logger bug');
    });
    observers.started(ADD);
    observers.endedSoon(ADD, 'OK', performance.now());
    // An exception out of the nextTick would fail the run (the root hooks turn it into a failure).
    await nextTick();
    expect(seen.events).to.deep.equal(['start Echo.add', 'end Echo.add OK']);
    expect(failures).to.deep.equal(['callStarted', 'callEnded']);
  });
});
