import { expect } from 'chai';
import { RpcError } from '@tunnelrpc/protocol';
import { RpcServer, type ServerOptions } from '@tunnelrpc/server';

type BooleanKeys<T> = { [K in keyof T]-?: NonNullable<T[K]> extends boolean ? K : never }[keyof T];

// Every boolean option of ServerOptions; the type below fails the build if one is added and not listed here.
const FLAGS = ['shareByAddress', 'exposeInternalErrors', 'validateParams', 'validateResults', 'requireClientCertificate', 'propagateContext', 'healthService', 'reflectionService'] as const satisfies readonly BooleanKeys<ServerOptions>[];
const everyFlagListed: [Exclude<BooleanKeys<ServerOptions>, (typeof FLAGS)[number]>] extends [never] ? true : never = true;

function thrownBy(options: ServerOptions): RpcError {
  try {
    new RpcServer(options);
  } catch (error) {
    expect(error).to.be.instanceOf(RpcError);
    return error as RpcError;
  }
  throw new Error(`new RpcServer(${JSON.stringify(options)}) did not throw`);
}

describe('RpcServer options', () => {
  it('lists every boolean option in this test', () => {
    expect(everyFlagListed).to.equal(true);
  });

  for (const flag of FLAGS) {
    it(`refuses ${flag}: 'false', 1 and null with INVALID_ARGUMENT naming it, and takes true and false`, () => {
      for (const [value, shown] of [['false', 'the string "false"'], [1, '1'], [null, 'null']] as const) {
        const error = thrownBy({ [flag]: value } as unknown as ServerOptions);
        expect(error.code).to.equal('INVALID_ARGUMENT');
        expect(error.message).to.equal(`option ${flag} must be true or false; got ${shown}`);
      }
      expect(() => new RpcServer({ [flag]: true })).to.not.throw();
      expect(() => new RpcServer({ [flag]: false })).to.not.throw();
    });
  }

  it('refuses a logger, an authorize or listeners that are not functions', () => {
    expect(thrownBy({ logger: 'console' as never }).message).to.equal('option logger must be a function (entry) => void; got the string "console"');
    expect(thrownBy({ authorize: true as never }).message).to.include('option authorize must be a function');
    expect(thrownBy({ listeners: [() => {}, 'x'] as never }).message).to.include('option listeners must be an array of functions, (event) => void; got an array; item 1 is the string "x"');
  });

  it('refuses a duration given as a string, naming its unit', () => {
    expect(thrownBy({ idleTimeout: '60000' as never }).message).to.equal('option idleTimeout must be an integer from 0 to 2147483647 (ms); got the string "60000"');
  });

  it('refuses a path that is not a string with INVALID_ARGUMENT, not a TypeError', () => {
    expect(thrownBy({ path: 5 as never }).message).to.include('option path must be a request target that starts with "/"');
    expect(thrownBy({ debugPath: '/_rpc' }).message).to.include('option debugPath must be a path starting with "/"');
  });
});
