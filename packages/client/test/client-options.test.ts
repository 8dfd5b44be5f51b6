import { expect } from 'chai';
import { createRpcClient, type ClientOptions } from '@tunnelrpc/client';
import { RpcError } from '@tunnelrpc/protocol';

type BooleanKeys<T> = { [K in keyof T]-?: NonNullable<T[K]> extends boolean ? K : never }[keyof T];

// Every boolean option of ClientOptions; the type below fails the build if one is added and not listed here.
const FLAGS = ['reconnect', 'waitForReady', 'latencyAware'] as const satisfies readonly BooleanKeys<ClientOptions>[];
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

describe('call options', () => {
  for (const flag of ['waitForReady', 'idempotent', 'inheritDeadline'] as const) {
    it(`fails a call, a notification and a stream with ${flag}: 'false' with INVALID_ARGUMENT, unsent`, async () => {
      const client = createRpcClient(URL, { reconnect: false });
      try {
        const calls: Array<Promise<unknown>> = [
          client.call('Svc.op', null, { [flag]: 'false' } as never),
          client.notify('Svc.note', null, { [flag]: 'false' } as never),
        ];
        if (flag !== 'idempotent') calls.push(client.stream('Svc.feed', null, 'serverStream', { [flag]: 'false' } as never).result);
        for (const call of calls) {
          const error = await call.then(() => undefined, (reason: unknown) => reason as RpcError);
          expect(error).to.be.instanceOf(RpcError);
          expect(error!.code).to.equal('INVALID_ARGUMENT');
          expect(error!.message).to.include(`not sent: option ${flag} must be true or false; got the string "false"`);
          expect(error!.mayHaveRun).to.equal(false);
        }
      } finally {
        await client.close();
      }
    });
  }
});
