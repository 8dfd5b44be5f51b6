import { expect } from 'chai';
import { createRpcClient, type ClientOptions } from '@tunnelrpc/client';
import { RpcError } from '@tunnelrpc/protocol';

type BooleanKeys<T> = { [K in keyof T]-?: NonNullable<T[K]> extends boolean ? K : never }[keyof T];

// Every boolean option of ClientOptions; the type below fails the build if one is added and not listed here.
const FLAGS = ['reconnect', 'waitForReady'] as const satisfies readonly BooleanKeys<ClientOptions>[];
const everyFlagListed: [Exclude<BooleanKeys<ClientOptions>, (typeof FLAGS)[number]>] extends [never] ? true : never = true;

// No server is dialed: the options are checked before createRpcClient returns.
const URL = 'http://127.0.0.1:1/_rpc';

function thrownBy(options: ClientOptions): RpcError {
  try {
    const client = createRpcClient(URL, options);
    void client.close();
  } catch (error) {
    expect(error).to.be.instanceOf(RpcError);
    return error as RpcError;
  }
  throw new Error(`createRpcClient(${JSON.stringify(options)}) did not throw`);
}

describe('ClientOptions', () => {
  it('lists every boolean option in this test', () => {
    expect(everyFlagListed).to.equal(true);
  });

  for (const flag of FLAGS) {
    it(`refuses ${flag}: 'false', 1 and null with INVALID_ARGUMENT naming it`, () => {
      for (const [value, shown] of [['false', 'the string "false"'], [1, '1'], [null, 'null']] as const) {
        const error = thrownBy({ [flag]: value } as unknown as ClientOptions);
        expect(error.code).to.equal('INVALID_ARGUMENT');
        expect(error.message).to.equal(`option ${flag} must be true or false; got ${shown}`);
      }
    });
  }

  it('refuses a handshake outside the list, a lookup or tls of the wrong type', () => {
    expect(thrownBy({ handshake: 'Upgrade' as never }).message).to.equal(`option handshake must be 'connect' or 'upgrade'; got the string "Upgrade"`);
    expect(thrownBy({ lookup: 'dns' as never }).message).to.include('option lookup must be a function (hostname) => [{ address }]; got the string "dns"');
    expect(thrownBy({ tls: 'insecure' as never }).message).to.include('option tls must be an object of TLS settings');
  });

  it('refuses a duration given as a string, naming its unit', () => {
    expect(thrownBy({ handshakeTimeout: '100' as never }).message).to.equal('option handshakeTimeout must be an integer from 1 to 2147483647 (ms); got the string "100"');
  });
});
