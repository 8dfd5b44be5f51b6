import { expect } from 'chai';
import { RpcError } from '@tunnelrpc/protocol';
import { createRateLimitedLogger, type LogEntry } from '@tunnelrpc/server';

describe('createRateLimitedLogger', () => {
  it('passes a burst of perSecond entries and drops the rest of a synchronous flood', () => {
    const seen: LogEntry[] = [];
    const log = createRateLimitedLogger((entry) => seen.push(entry), 3);
    for (let i = 0; i < 1000; i++) log({ level: 'info', message: `event ${i}` });
    // Refill is 3 a second; a synchronous loop of 1000 earns far less than one more token.
    expect(seen.map((entry) => entry.message)).to.deep.equal(['event 0', 'event 1', 'event 2']);
  });

  it('refuses a perSecond out of range and a logger that is not a function with INVALID_ARGUMENT', () => {
    expect(() => createRateLimitedLogger(() => {}, 0)).to.throw(RpcError, 'option perSecond must be an integer from 1 to 4294967295; got 0');
    expect(() => createRateLimitedLogger('console' as never)).to.throw(RpcError, 'option logger must be a function');
  });

  it('keeps going when the wrapped logger throws', () => {
    const log = createRateLimitedLogger(() => {
      throw new Error('disk full');
    });
    expect(() => log({ level: 'warn', message: 'x' })).to.not.throw();
  });
});
