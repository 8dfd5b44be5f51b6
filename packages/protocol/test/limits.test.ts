import { expect } from 'chai';
import {
  DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_MAX_ITEMS_PER_FRAME,
  type DecodeLimits,
} from '@tunnelrpc/protocol';
import {
  DEFAULT_DECODE_LIMITS,
  MAX_UINT32,
  checkInteger,
  definedOnly,
  resolveDecodeLimits,
} from '@tunnelrpc/protocol/internal';
import { expectThrows } from '@tunnelrpc/test-kit';

describe('limit constants', () => {
  it('holds the wire-v1 defaults in real numbers', () => {
    expect(DEFAULT_MAX_FRAME_SIZE).to.equal(8_388_608);
    expect(DEFAULT_MAX_DEPTH).to.equal(32);
    expect(DEFAULT_MAX_ITEMS_PER_FRAME).to.equal(262_144);
    expect(MAX_UINT32).to.equal(4_294_967_295);
  });

  it('gathers the defaults in one frozen object', () => {
    expect(DEFAULT_DECODE_LIMITS).to.deep.equal({ maxFrameSize: 8_388_608, maxDepth: 32, maxItemsPerFrame: 262_144 });
    expect(Object.isFrozen(DEFAULT_DECODE_LIMITS)).to.equal(true);
  });
});

describe('resolveDecodeLimits', () => {
  it('returns the defaults when given nothing or an empty object', () => {
    expect(resolveDecodeLimits()).to.deep.equal(DEFAULT_DECODE_LIMITS);
    expect(resolveDecodeLimits({})).to.deep.equal(DEFAULT_DECODE_LIMITS);
  });

  it('keeps the default of an option given as undefined', () => {
    expect(resolveDecodeLimits({ maxFrameSize: undefined, maxDepth: 10 })).to.deep.equal({
      maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
      maxDepth: 10,
      maxItemsPerFrame: DEFAULT_MAX_ITEMS_PER_FRAME,
    });
  });

  it('keeps the given value of each option', () => {
    expect(resolveDecodeLimits({ maxFrameSize: 1024, maxDepth: 4, maxItemsPerFrame: 99 })).to.deep.equal({
      maxFrameSize: 1024, maxDepth: 4, maxItemsPerFrame: 99,
    });
  });

  const boundaries: [keyof DecodeLimits, number, number][] = [
    ['maxFrameSize', 1, MAX_UINT32],
    ['maxDepth', 2, 1000],
    ['maxItemsPerFrame', 1, MAX_UINT32],
  ];
  for (const [option, min, max] of boundaries) {
    it(`accepts ${option} of ${min} and ${max}`, () => {
      expect(resolveDecodeLimits({ [option]: min })[option]).to.equal(min);
      expect(resolveDecodeLimits({ [option]: max })[option]).to.equal(max);
    });

    it(`throws INVALID_ARGUMENT naming ${option} for ${min - 1} and ${max + 1}`, () => {
      for (const value of [min - 1, max + 1]) {
        const error = expectThrows(() => resolveDecodeLimits({ [option]: value }), 'INVALID_ARGUMENT', `option ${option} must be`);
        expect(error.message).to.include(`from ${min} to ${max}`).and.include(`got ${value}`);
        expect(error.data).to.deep.include({ option, value });
      }
    });

    it(`throws INVALID_ARGUMENT for a non-integer ${option}`, () => {
      for (const value of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '8', null, true]) {
        expectThrows(() => resolveDecodeLimits({ [option]: value as unknown as number }), 'INVALID_ARGUMENT', option);
      }
    });
  }

  it('throws INVALID_ARGUMENT for maxFrameSize 0, naming the option', () => {
    const error = expectThrows(() => resolveDecodeLimits({ maxFrameSize: 0 }), 'INVALID_ARGUMENT', 'maxFrameSize');
    expect(error.data).to.deep.equal({ option: 'maxFrameSize', value: 0, expected: 'an integer from 1 to 4294967295' });
  });

  it('says a non-number value is a string, in the message and in data', () => {
    const error = expectThrows(() => resolveDecodeLimits({ maxDepth: '8' as unknown as number }), 'INVALID_ARGUMENT', 'option maxDepth must be an integer from 2 to 1000; got the string "8"');
    expect(error.data).to.deep.equal({ option: 'maxDepth', value: 'the string "8"', expected: 'an integer from 2 to 1000' });
  });
});

describe('checkInteger', () => {
  it('returns the value when it is an integer within the range, ends included', () => {
    expect(checkInteger('n', 0, 0, 10)).to.equal(0);
    expect(checkInteger('n', 10, 0, 10)).to.equal(10);
  });

  it('throws INVALID_ARGUMENT naming the option outside the range', () => {
    expectThrows(() => checkInteger('maxInFlight', 11, 0, 10), 'INVALID_ARGUMENT', 'option maxInFlight must be an integer from 0 to 10; got 11');
    expectThrows(() => checkInteger('maxInFlight', -1, 0, 10), 'INVALID_ARGUMENT', 'got -1');
  });
});

describe('definedOnly', () => {
  it('drops keys whose value is undefined and keeps null, 0, false and empty strings', () => {
    const result = definedOnly({ a: undefined, b: null, c: 0, d: false, e: '' });
    expect(result).to.deep.equal({ b: null, c: 0, d: false, e: '' });
    expect(Object.keys(result)).to.deep.equal(['b', 'c', 'd', 'e']);
  });
});
