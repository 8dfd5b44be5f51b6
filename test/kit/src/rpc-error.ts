/** Assertions on RpcError outcomes: the code is the API, the message is checked only where the test says. */
import { expect } from 'chai';
import { RpcError, type ErrorCode } from '@tunnelrpc/protocol';

/**
 * expectRejects awaits `promise`, asserts that it rejects with an RpcError of `code` whose message contains
 * `message` (or matches it), and returns the error for checks on `data`.
 */
export async function expectRejects(promise: Promise<unknown>, code: ErrorCode, message?: string | RegExp): Promise<RpcError> {
  let outcome: { value: unknown } | { error: unknown };
  try {
    outcome = { value: await promise };
  } catch (error) {
    outcome = { error };
  }
  if ('value' in outcome) return expect.fail(`expected a rejection with RpcError ${code}, but it resolved with ${describe(outcome.value)}`);
  return checked(outcome.error, code, message);
}

/**
 * expectThrows runs `fn`, asserts that it throws an RpcError of `code` whose message contains `message` (or matches
 * it), and returns the error for checks on `data`.
 */
export function expectThrows(fn: () => unknown, code: ErrorCode, message?: string | RegExp): RpcError {
  let returned: unknown;
  try {
    returned = fn();
  } catch (error) {
    return checked(error, code, message);
  }
  return expect.fail(`expected an RpcError ${code} to be thrown, but the call returned ${describe(returned)}`);
}

function checked(error: unknown, code: ErrorCode, message: string | RegExp | undefined): RpcError {
  expect(error, String(error)).to.be.instanceOf(RpcError);
  const rpc = error as RpcError;
  expect(rpc.code, rpc.message).to.equal(code);
  if (typeof message === 'string' && !rpc.message.includes(message)) {
    expect.fail(`message ${JSON.stringify(rpc.message)} does not include ${JSON.stringify(message)}`);
  } else if (message instanceof RegExp) {
    expect(rpc.message).to.match(message);
  }
  return rpc;
}

function describe(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text.slice(0, 200);
  } catch {
    return String(value);
  }
}
