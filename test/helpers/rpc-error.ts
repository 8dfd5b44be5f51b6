/** Assertions on RpcError outcomes: the code is the API, the message is checked only where it matters. */
import { expect } from 'chai';
import { RpcError, type ErrorCode } from '@tunnelrpc/protocol';

/**
 * expectRejection awaits `promise`, asserts that it rejects with an RpcError with `code` (and, if given, a message
 * matching `message`), and returns the error for further checks on `data`.
 */
export async function expectRejection(promise: Promise<unknown>, code: ErrorCode, message?: string | RegExp): Promise<RpcError> {
  let outcome: { value: unknown } | { error: unknown };
  try {
    outcome = { value: await promise };
  } catch (error) {
    outcome = { error };
  }
  if ('value' in outcome) {
    expect.fail(`expected a rejection with RpcError ${code}, but it resolved with ${describe(outcome.value)}`);
  }
  const { error } = outcome;
  expect(error, String(error)).to.be.instanceOf(RpcError);
  const rpc = error as RpcError;
  expect(rpc.code, rpc.message).to.equal(code);
  if (typeof message === 'string') expect(rpc.message).to.include(message);
  else if (message !== undefined) expect(rpc.message).to.match(message);
  return rpc;
}

/**
 * mayHaveRunOf reads an error's mayHaveRun, and asserts that the deprecated copy in map data, where there is one,
 * says the same.
 */
export function mayHaveRunOf(error: RpcError): boolean | undefined {
  const legacy = (error.data as { mayHaveRun?: unknown } | undefined)?.mayHaveRun;
  if (legacy !== undefined) expect(legacy, 'data.mayHaveRun agrees with error.mayHaveRun').to.equal(error.mayHaveRun);
  return error.mayHaveRun;
}

/** expectPrototypeClean asserts that no hostile input polluted Object.prototype. */
export function expectPrototypeClean(before: readonly string[]): void {
  expect(({} as Record<string, unknown>)['polluted']).to.equal(undefined);
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).to.deep.equal([...before].sort());
}

function describe(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text.slice(0, 200);
  } catch {
    return String(value);
  }
}
