/**
 * `tunnelrpc breaking OLD.js NEW.js`: loads two versions of a contract module, takes every service contract each
 * exports (by service name), and prints what findBreakingChanges finds: exit 1 when a change breaks old clients,
 * 0 when there is none (notes about upgrading servers first do not fail the check), 2 when a module cannot be
 * loaded or exports no contract.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { findBreakingChanges, type ServiceContract } from '@tunnelrpc/protocol';
import { EXIT } from './cli-args.js';
import type { Output } from './cli-output.js';

function isContract(value: unknown): value is ServiceContract {
  if (typeof value !== 'object' || value === null) return false;
  const { name, methods } = value as { name?: unknown; methods?: unknown };
  return typeof name === 'string' && typeof methods === 'object' && methods !== null && Object.values(methods).every((spec) => typeof spec === 'object' && spec !== null && 'input' in spec && 'output' in spec);
}

async function loadContracts(file: string): Promise<ServiceContract[]> {
  const module = (await import(pathToFileURL(resolve(file)).href)) as Record<string, unknown>;
  const found = new Map<string, ServiceContract>();
  for (const value of Object.values(module)) if (isContract(value)) found.set(value.name, value);
  if (found.size === 0) throw new Error(`${file} exports no service contract (a defineService result)`);
  return [...found.values()];
}

/** runBreaking runs the breaking subcommand and returns the exit code. @internal */
export async function runBreaking([oldFile, newFile]: [string, string], output: Output): Promise<number> {
  let before: ServiceContract[];
  let after: ServiceContract[];
  try {
    before = await loadContracts(oldFile);
    after = await loadContracts(newFile);
  } catch (error) {
    process.stderr.write(`tunnelrpc: cannot compare the contracts: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.failure;
  }
  const changes = findBreakingChanges(before, after);
  const breaking = changes.filter((change) => change.breaks === 'old-clients');
  for (const change of breaking) output.line(`BREAKING ${change.message}`);
  for (const change of changes) if (change.breaks === 'old-servers') output.line(`note ${change.message}`);
  const services = before.map((contract) => contract.name).join(', ');
  output.line(
    breaking.length === 0
      ? `no breaking changes in ${services}${changes.length > 0 ? ` (${changes.length} note${changes.length === 1 ? '' : 's'}: upgrade servers before clients)` : ''}`
      : `${breaking.length} breaking change${breaking.length === 1 ? '' : 's'} in ${services}: clients on ${oldFile} would fail against a server on ${newFile}`,
  );
  return breaking.length === 0 ? EXIT.ok : EXIT.rpcError;
}
