/**
 * Contract fingerprints in the handshake (PROTOCOL.md 2.6, optional): a client may send, with its CONNECT or
 * Upgrade, a hash per method of the schemas it was built with; a server that knows the header answers, in its
 * success reply, which of those methods it has with other schemas or not at all. The client then reports the
 * skew once, at dial, instead of at the first call that fails. A server that does not know the header ignores it;
 * a client that does not send it gets the reply wire-v1 describes.
 *
 *   request   Tunnelrpc-Contract: shop.Orders.get=3f9a0c1d2b4e,shop.Orders.place=90ab12cd34ef
 *   reply     Tunnelrpc-Contract-Skew: shop.Orders.place=differs,shop.Orders.cancel=missing   (or: none)
 */
import { describeMethod } from './builtin-services.js';
import type { MethodSpec, ServiceContract } from './contract.js';

/** CONTRACT_HEADER carries the client's method fingerprints in the handshake request. */
export const CONTRACT_HEADER = 'Tunnelrpc-Contract';
/** CONTRACT_SKEW_HEADER carries the server's answer in its success reply: the skewed methods, or `none`. */
export const CONTRACT_SKEW_HEADER = 'Tunnelrpc-Contract-Skew';
/** MAX_CONTRACT_HEADER_BYTES bounds either header's value; a client leaves out the methods past it. */
export const MAX_CONTRACT_HEADER_BYTES = 4096;

const ENTRY = /^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)=([0-9a-f]{12}|differs|missing)$/;
// A header of 4096 bytes holds at most about 200 entries of the shortest form.
const MAX_ENTRIES = 256;

/** ContractSkew is one method whose schemas differ between client and server, or that the server lacks. */
export interface ContractSkew {
  /** `Service.method`. */
  readonly method: string;
  /** 'differs': the server has the method with other schemas; 'missing': the server does not have it. */
  readonly problem: 'differs' | 'missing';
}

// JSON with object keys sorted at every level, and `required` lists sorted (they follow the properties' order):
// the same schemas give the same text whatever order their keys were written in.
function canonical(value: unknown, key = ''): string {
  if (Array.isArray(value)) {
    const items = key === 'required' && value.every((each) => typeof each === 'string') ? [...(value as string[])].sort() : value;
    return `[${items.map((each) => canonical(each)).join(',')}]`;
  }
  if (typeof value === 'object' && value !== null) {
    return `{${Object.keys(value).sort().map((name) => `${JSON.stringify(name)}:${canonical((value as Record<string, unknown>)[name], name)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

// FNV-1a, 64 bits, over UTF-16 code units: no crypto is needed, a collision only hides a skew report.
function fnv1a64(text: string): bigint {
  let hash = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) {
    hash ^= BigInt(text.charCodeAt(i));
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash;
}

/**
 * fingerprintMethod is 12 hex digits that change when the method's kind, idempotent flag, params, result or
 * stream message schemas change (as JSON Schema: a description or a transform that leaves the wire shape alone
 * does not count).
 */
export function fingerprintMethod(name: string, spec: MethodSpec): string {
  const { kind, idempotent, params, result } = describeMethod(name, spec);
  const messages = [spec.clientMessage, spec.serverMessage].map((schema) => (schema === undefined ? null : describeMethod(name, { input: schema, output: schema }).params));
  return fnv1a64(canonical({ kind, idempotent, params, result, messages })).toString(16).padStart(16, '0').slice(0, 12);
}

/** encodeContractHeader is the request header value for `contracts`, cut at MAX_CONTRACT_HEADER_BYTES. */
export function encodeContractHeader(contracts: readonly ServiceContract[]): string {
  let value = '';
  for (const contract of contracts) {
    for (const [name, spec] of Object.entries(contract.methods)) {
      const entry = `${contract.name}.${name}=${fingerprintMethod(name, spec)}`;
      if (value.length + entry.length + 1 > MAX_CONTRACT_HEADER_BYTES) return value;
      value = value.length === 0 ? entry : `${value},${entry}`;
    }
  }
  return value;
}

/**
 * parseContractHeader reads a peer's fingerprint list into method -> fingerprint. Entries that are not
 * `Service.method=<12 hex>` are skipped, and at most MAX_ENTRIES are read from at most MAX_CONTRACT_HEADER_BYTES:
 * the value comes from the network.
 */
export function parseContractHeader(value: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const token of value.slice(0, MAX_CONTRACT_HEADER_BYTES).split(',').slice(0, MAX_ENTRIES)) {
    const match = ENTRY.exec(token.trim());
    if (match !== null && /^[0-9a-f]{12}$/.test(match[2]!)) entries.set(match[1]!, match[2]!);
  }
  return entries;
}

/**
 * encodeSkewHeader is the server's reply value: the methods of `offered` (method -> fingerprint) that `ownPrint`
 * (the server's fingerprint of a method, undefined when it has none) disagrees with, or `none`.
 */
export function encodeSkewHeader(offered: ReadonlyMap<string, string>, ownPrint: (method: string) => string | undefined): string {
  const skewed: string[] = [];
  let length = 0;
  for (const [method, print] of offered) {
    const own = ownPrint(method);
    if (own === print) continue;
    const entry = `${method}=${own === undefined ? 'missing' : 'differs'}`;
    if (length + entry.length + 1 > MAX_CONTRACT_HEADER_BYTES) break;
    skewed.push(entry);
    length += entry.length + 1;
  }
  return skewed.length === 0 ? 'none' : skewed.join(',');
}

/** parseSkewHeader reads the server's reply value into a list (empty for `none`), bounded as parseContractHeader. */
export function parseSkewHeader(value: string): ContractSkew[] {
  const skew: ContractSkew[] = [];
  for (const token of value.slice(0, MAX_CONTRACT_HEADER_BYTES).split(',').slice(0, MAX_ENTRIES)) {
    const match = ENTRY.exec(token.trim());
    if (match !== null && (match[2] === 'differs' || match[2] === 'missing')) skew.push({ method: match[1]!, problem: match[2] });
  }
  return skew;
}

/** describeSkew is the readable report of a skew list: one clause per method. */
export function describeSkew(skew: readonly ContractSkew[]): string {
  return skew
    .map((each) => (each.problem === 'missing' ? `${each.method} is missing on the server` : `${each.method} has other schemas on the server`))
    .join('; ');
}
