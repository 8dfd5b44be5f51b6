/**
 * applyInterceptors, checkInterceptors and splitMethod: pure, no sockets.
 */
import { expect } from 'chai';
import { RpcError, applyInterceptors, type CallFn, type Interceptor, type RpcCall } from '@tunnelrpc/protocol';
import { checkInterceptors, splitMethod } from '@tunnelrpc/protocol/internal';

const CALL: RpcCall = {
  kind: 'unary',
  side: 'client',
  method: 'Svc.m',
  service: 'Svc',
  name: 'm',
  registered: true,
  params: 1,
  headers: {},
  signal: new AbortController().signal,
  deadline: 0,
  peer: 'test',
  notification: false,
  auth: undefined,
};

describe('applyInterceptors', () => {
  it('makes the first interceptor the outermost: in order on the way in, reverse on the way out', async () => {
    const log: string[] = [];
    const named = (name: string): Interceptor => (next) => async (call) => {
      log.push(`${name}>`);
      const result = await next(call);
      log.push(`<${name}`);
      return result;
    };
    const fn = applyInterceptors(async (call) => {
      log.push('fn');
      return call.params;
    }, [named('a'), named('b'), named('c')]);
    expect(await fn(CALL)).to.equal(1);
    expect(log).to.deep.equal(['a>', 'b>', 'c>', 'fn', '<c', '<b', '<a']);
  });

  it('returns the function itself for an empty list', () => {
    const fn: CallFn = async () => 1;
    expect(applyInterceptors(fn, [])).to.equal(fn);
  });

  it('lets an interceptor answer without calling next', async () => {
    let reached = false;
    const fn = applyInterceptors(async () => {
      reached = true;
    }, [() => async () => {
      throw new RpcError('PERMISSION_DENIED', 'no');
    }]);
    const error = await fn(CALL).then(() => undefined, (thrown: unknown) => thrown);
    expect(error).to.be.instanceOf(RpcError);
    expect((error as RpcError).code).to.equal('PERMISSION_DENIED');
    expect(reached).to.equal(false);
  });
});

describe('checkInterceptors', () => {
  it('accepts undefined as none and an array of functions', () => {
    expect(checkInterceptors('interceptors', undefined)).to.deep.equal([]);
    const one: Interceptor = (next) => next;
    expect(checkInterceptors('interceptors', [one])).to.deep.equal([one]);
  });

  for (const [what, value] of [['a function', (next: CallFn) => next], ['an array holding a string', ['x']], ['null', null]] as const) {
    it(`refuses ${what} with INVALID_ARGUMENT naming the option`, () => {
      expect(() => checkInterceptors('interceptors', value)).to.throw(RpcError, 'option interceptors must be an array of interceptor functions');
    });
  }
});

describe('splitMethod', () => {
  it('splits at the last dot', () => {
    expect(splitMethod('Echo.add')).to.deep.equal({ service: 'Echo', name: 'add' });
    expect(splitMethod('tunnelrpc.Health.check')).to.deep.equal({ service: 'tunnelrpc.Health', name: 'check' });
    expect(splitMethod('nodot')).to.deep.equal({ service: '', name: 'nodot' });
  });
});
