import { expect } from 'chai';
import { checkBoolean, checkDuration, checkFunction, checkFunctionList, checkOneOf, checkString, describeOptionValue, MAX_TIMER_MS } from '@tunnelrpc/protocol/internal';
import { expectThrows } from '@tunnelrpc/test-kit';

describe('option checks', () => {
  describe('#checkBoolean', () => {
    it('returns true and false', () => {
      expect(checkBoolean('reconnect', true)).to.equal(true);
      expect(checkBoolean('reconnect', false)).to.equal(false);
    });

    for (const [value, shown] of [['false', 'the string "false"'], [1, '1'], [0, '0'], [null, 'null'], [{}, 'an object'], [[], 'an array']] as const) {
      it(`refuses ${shown}, naming the option, the value and the expected type`, () => {
        const error = expectThrows(() => checkBoolean('reconnect', value), 'INVALID_ARGUMENT', `option reconnect must be true or false; got ${shown}`);
        expect(error.data).to.deep.include({ option: 'reconnect', expected: 'true or false' });
      });
    }
  });

  describe('#checkDuration', () => {
    it('accepts 0 … MAX_TIMER_MS by default and refuses past either end, fractions and strings', () => {
      expect(checkDuration('idleTimeout', 0)).to.equal(0);
      expect(checkDuration('idleTimeout', MAX_TIMER_MS)).to.equal(MAX_TIMER_MS);
      expectThrows(() => checkDuration('idleTimeout', MAX_TIMER_MS + 1), 'INVALID_ARGUMENT', `option idleTimeout must be an integer from 0 to ${MAX_TIMER_MS} (ms); got ${MAX_TIMER_MS + 1}`);
      expectThrows(() => checkDuration('idleTimeout', 1, 2), 'INVALID_ARGUMENT', 'from 2 to');
      expectThrows(() => checkDuration('idleTimeout', 1.5), 'INVALID_ARGUMENT', 'got 1.5');
      expectThrows(() => checkDuration('idleTimeout', '100'), 'INVALID_ARGUMENT', 'got the string "100"');
    });
  });

  describe('#checkOneOf', () => {
    it('returns an allowed value and refuses others, listing the allowed ones', () => {
      expect(checkOneOf('handshake', 'upgrade', ['connect', 'upgrade'])).to.equal('upgrade');
      expectThrows(() => checkOneOf('handshake', 'CONNECT', ['connect', 'upgrade']), 'INVALID_ARGUMENT', `option handshake must be 'connect' or 'upgrade'; got the string "CONNECT"`);
      expectThrows(() => checkOneOf('handshake', 1, ['connect', 'upgrade']), 'INVALID_ARGUMENT', 'got 1');
    });
  });

  describe('#checkFunction and #checkFunctionList', () => {
    it('take functions and refuse anything else, saying which item is wrong', () => {
      const fn = (): void => {};
      expect(checkFunction('logger', fn, '(entry) => void')).to.equal(fn);
      expectThrows(() => checkFunction('logger', 'console', '(entry) => void'), 'INVALID_ARGUMENT', 'option logger must be a function (entry) => void; got the string "console"');
      expect(checkFunctionList('listeners', undefined, 'functions')).to.deep.equal([]);
      expect(Object.isFrozen(checkFunctionList('listeners', [fn], 'functions'))).to.equal(true);
      expectThrows(() => checkFunctionList('listeners', [fn, null], 'functions, (event) => void'), 'INVALID_ARGUMENT', 'option listeners must be an array of functions, (event) => void; got an array; item 1 is null');
      expectThrows(() => checkFunctionList('listeners', fn, 'functions'), 'INVALID_ARGUMENT', 'got a function');
    });
  });

  describe('#checkString', () => {
    it('takes a string that passes the test and refuses the rest with the expected form', () => {
      expect(checkString('path', '/_rpc', 'a path', (text) => text.startsWith('/'))).to.equal('/_rpc');
      expectThrows(() => checkString('path', 'rpc', 'a path starting with "/"', (text) => text.startsWith('/')), 'INVALID_ARGUMENT', 'option path must be a path starting with "/"; got the string "rpc"');
      expectThrows(() => checkString('path', 7, 'a path'), 'INVALID_ARGUMENT', 'got 7');
    });
  });

  describe('#describeOptionValue', () => {
    it('escapes and shortens strings, so a value cannot forge lines in a log', () => {
      expect(describeOptionValue('a\nb\u001b[31m')).to.equal('the string "a\\nb\\u001b[31m"');
      expect(describeOptionValue('x'.repeat(100))).to.equal(`the string "${'x'.repeat(40)}…"`);
      expect(describeOptionValue(10n)).to.equal('the bigint 10n');
      expect(describeOptionValue(undefined)).to.equal('undefined');
      expect(describeOptionValue(Symbol('s'))).to.equal('a symbol');
    });
  });
});
