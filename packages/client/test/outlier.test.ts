/**
 * Outlier detection's pure deciders (outlier.ts) and the latency-weighed pick (balancer.ts): which codes blame an
 * endpoint, how long an ejection lasts, how many may be out at once, which interval counts make an outlier, how the
 * peak-EWMA moves, and the option checks.
 */
import { expect } from 'chai';
import { RpcError, connect } from '@tunnelrpc/client';
// White-box tests of internal modules read them from the package's build: they are not part of its public surface.
import { weighedLoad } from '../dist/balancer.js';
import { PeakEwma, blamesEndpoint, ejectionTime, mayEject, outliersOf, resolveOutlierDetection } from '../dist/outlier.js';

const defaults = resolveOutlierDetection(undefined);

describe('blamesEndpoint', () => {
  it('blames the endpoint for UNAVAILABLE, INTERNAL and DEADLINE_EXCEEDED only', () => {
    for (const code of ['UNAVAILABLE', 'INTERNAL', 'DEADLINE_EXCEEDED']) expect(blamesEndpoint(code), code).to.equal(true);
    for (const code of [undefined, 'INVALID_ARGUMENT', 'PERMISSION_DENIED', 'UNAUTHENTICATED', 'NOT_FOUND', 'UNIMPLEMENTED', 'CANCELLED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'UNKNOWN']) {
      expect(blamesEndpoint(code), String(code)).to.equal(false);
    }
  });
});

describe('ejectionTime', () => {
  it('grows with each ejection and stops at the maximum', () => {
    expect([0, 1, 2, 3, 20].map((times) => ejectionTime(times, 2000, 30_000))).to.deep.equal([2000, 2000, 4000, 6000, 30_000]);
  });
});

describe('mayEject', () => {
  it('lets one endpoint out even when the percentage rounds to none', () => {
    expect(mayEject(0, 3, 10)).to.equal(true);
    expect(mayEject(1, 3, 10)).to.equal(false);
  });

  it('follows the percentage above one', () => {
    expect(mayEject(4, 10, 50)).to.equal(true);
    expect(mayEject(5, 10, 50)).to.equal(false);
  });

  it('never ejects the last endpoint in service, even at 100 percent', () => {
    expect(mayEject(0, 1, 100)).to.equal(false);
    expect(mayEject(1, 2, 100)).to.equal(false);
    expect(mayEject(2, 3, 100)).to.equal(false);
    expect(mayEject(1, 3, 100)).to.equal(true);
  });
});

describe('outliersOf', () => {
  it('flags an endpoint failing a third of 300 calls among two healthy ones (failure percentage)', () => {
    const counts = [{ successes: 300, failures: 0 }, { successes: 200, failures: 100 }, { successes: 299, failures: 1 }];
    expect(outliersOf(counts, defaults)).to.deep.equal([1]);
  });

  it('finds no success-rate outlier when every endpoint fails alike', () => {
    const counts = [{ successes: 60, failures: 40 }, { successes: 61, failures: 39 }, { successes: 59, failures: 41 }];
    expect(outliersOf(counts, { ...defaults, failurePercentageThreshold: 0 })).to.deep.equal([]);
    // The failure percentage flags all three; mayEject then keeps all but maxEjectionPercent (at least one) in.
    expect(outliersOf(counts, defaults)).to.have.length(3);
  });

  it('flags a success rate far below the mean by the standard-deviation rule', () => {
    const healthy = { successes: 200, failures: 0 };
    const counts = [healthy, healthy, healthy, healthy, { successes: 150, failures: 50 }];
    expect(outliersOf(counts, { ...defaults, failurePercentageThreshold: 0 })).to.deep.equal([4]);
  });

  it('judges nobody below the request volume or with too few endpoints', () => {
    expect(outliersOf([{ successes: 10, failures: 30 }, { successes: 40, failures: 0 }, { successes: 40, failures: 0 }], defaults)).to.deep.equal([]);
    expect(outliersOf([{ successes: 0, failures: 300 }, { successes: 300, failures: 0 }], defaults)).to.deep.equal([]);
  });

  it('lists the worst first', () => {
    const counts = [{ successes: 60, failures: 40 }, { successes: 300, failures: 0 }, { successes: 10, failures: 90 }];
    expect(outliersOf(counts, defaults)).to.deep.equal([2, 0]);
  });
});

describe('PeakEwma', () => {
  it('takes a slower answer at once and forgets it over the decay time', () => {
    const ewma = new PeakEwma(1000);
    expect(ewma.cost(0)).to.equal(0);
    ewma.observe(2, 0);
    ewma.observe(200, 10);
    expect(ewma.cost(10)).to.equal(200);
    expect(ewma.cost(1010)).to.be.closeTo(200 / Math.E, 1e-9);
  });

  it('moves toward faster answers by a weight that grows with the time between them', () => {
    const ewma = new PeakEwma(1000);
    ewma.observe(100, 0);
    ewma.observe(0, 1000);
    expect(ewma.cost(1000)).to.be.closeTo(100 / Math.E, 1e-9);
  });
});

describe('weighedLoad', () => {
  it('gives an unmeasured endpoint its first call, then holds it back until it answers', () => {
    expect(weighedLoad(0, 0)).to.equal(0);
    expect(weighedLoad(1, 0)).to.be.greaterThan(weighedLoad(1000, 500));
  });

  it('weighs outstanding calls plus one by latency: a replica 100 times slower takes calls only when the other has 100 times more outstanding', () => {
    expect(weighedLoad(0, 200)).to.be.greaterThan(weighedLoad(50, 2));
    expect(weighedLoad(0, 200)).to.be.lessThan(weighedLoad(100, 2));
  });
});

describe('outlierDetection option', () => {
  it('fills the defaults named after Envoy', () => {
    expect(defaults).to.deep.include({ enabled: true, consecutiveFailures: 5, interval: 1000, baseEjectionTime: 2000, maxEjectionTime: 30_000, maxEjectionPercent: 10, successRateStdevFactor: 1900 });
    expect(resolveOutlierDetection(false).enabled).to.equal(false);
  });

  for (const [value, message] of [
    [{ maxEjectionPercent: 101 }, 'option outlierDetection.maxEjectionPercent must be an integer from 0 to 100; got 101'],
    [{ interval: 10 }, 'option outlierDetection.interval must be an integer from 100 to 2147483647; got 10'],
    [{ baseEjectionTime: 5000, maxEjectionTime: 1000 }, 'option outlierDetection.maxEjectionTime must be an integer from 5000 to 2147483647; got 1000'],
    ['on', 'option outlierDetection must be an object of settings or false; got string'],
  ] as const) {
    it(`refuses ${JSON.stringify(value)} with INVALID_ARGUMENT from connect()`, async () => {
      const error = await connect('http://127.0.0.1:1/_rpc', { outlierDetection: value as never }).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(RpcError);
      expect(error).to.include({ code: 'INVALID_ARGUMENT', message });
    });
  }

  for (const [name, value] of [['attemptTimeout', -1], ['unresponsiveTimeout', 1.5], ['maxRefusedReconnectDelay', 0], ['latencyDecayTime', 0], ['latencyAware', 'yes']] as const) {
    it(`refuses ${name} ${JSON.stringify(value)} with INVALID_ARGUMENT naming it`, async () => {
      const error = await connect('http://127.0.0.1:1/_rpc', { [name]: value } as never).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(RpcError);
      expect((error as RpcError).code).to.equal('INVALID_ARGUMENT');
      expect((error as RpcError).message).to.contain(`option ${name} must be`);
    });
  }
});
