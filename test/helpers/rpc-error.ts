/** End-to-end checks beside the kit's RpcError assertions: what an error says about having run, and a clean prototype. */
import { expect } from 'chai';
import type { RpcError } from '@tunnelrpc/protocol';

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
