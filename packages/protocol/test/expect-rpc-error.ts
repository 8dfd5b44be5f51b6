/** expectRpcError: the one assertion every error-path test in this package makes. */
import { expect } from 'chai';
import { RpcError, type ErrorCode } from '@tunnelrpc/protocol';

/**
 * expectRpcError runs `fn`, asserts that it throws an RpcError with `code` whose message contains `fragment`, and
 * returns that error for further checks on `data`.
 */
export function expectRpcError(fn: () => unknown, code: ErrorCode, fragment?: string): RpcError {
  let thrown: unknown;
  let returned: unknown;
  try {
    returned = fn();
  } catch (error) {
    thrown = error;
  }
  if (thrown === undefined) expect.fail(`expected an RpcError ${code}, but the call returned a value of type ${typeof returned}`);
  expect(thrown).to.be.instanceOf(RpcError);
  const error = thrown as RpcError;
  expect(error.code, error.message).to.equal(code);
  if (fragment !== undefined) expect(error.message).to.include(fragment);
  return error;
}
