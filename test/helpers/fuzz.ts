/**
 * A seeded frame fuzzer against a live server (SECURITY.md, "random and mutated frames"; Autobahn style), shared by the
 * bounded run in test/e2e/fuzz.test.ts and the long run in test/scripts/fuzz.ts.
 *
 * Each input is one frame on a fresh raw tunnel: half are random payloads of 1-64 bytes, half are mutations of
 * valid seed messages (requests, records, structured clone, timestamps, nested maps). Input i is generated from its
 * own PRNG seeded by (seed, i), so any one input can be replayed alone. After the input the fuzzer sends goaway
 * UNAVAILABLE, so every tunnel ends: the server answers what it took and closes.
 *
 * Oracles, per tunnel:
 * - whenever the frame is intact, the server does exactly what the pure decoder predicts: the goaway code of a
 *   decode failure, the echo of Echo.echo, the sum of Echo.add, a pong carrying the ping's data, nothing for a
 *   notification, cancel or pong, and one response with a code from ERROR_CODES for any other request;
 * - whatever the input, the server only sends responses (result, or a code from ERROR_CODES), pongs, and goaways
 *   with PROTOCOL_ERROR, RESOURCE_EXHAUSTED or UNAVAILABLE, all of which decode, and then closes;
 * and, over the run: Object.prototype never changes, the server logs nothing but the expected handler crash and
 * dropped notifications, and a known-good call still works at the end (the caller checks that one).
 */
import { Packr } from 'msgpackr';
import { Echo, createEchoService } from '@tunnelrpc/examples';
import { ERROR_CODES, RpcError } from '@tunnelrpc/protocol';
import {
  MessageType,
  decodeMessage,
  encodeMessage,
  encodeFrame,
  encodePongPayload,
  scanMessagePack,
  DEFAULT_DECODE_LIMITS,
  goawayCodeOf,
  parseWithSchema,
  type Message,
  type RequestMessage,
  type ResponseMessage,
} from '@tunnelrpc/protocol/internal';
import { RpcServer } from '@tunnelrpc/server';
import { hex, mulberry32, RawTunnel } from '@tunnelrpc/test-kit';
import { logLine } from './servers.js';

/** Rng wraps a PRNG with the draws the generator needs. */
export class Rng {
  readonly #next: () => number;

  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }

  /** float in [0, 1). */
  float(): number {
    return this.#next();
  }

  /** int in [0, n). */
  int(n: number): number {
    return Math.floor(this.#next() * n);
  }

  chance(p: number): boolean {
    return this.#next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** inputSeed mixes the run seed and an input's index into that input's own PRNG seed. */
export function inputSeed(seed: number, index: number): number {
  // Hash the seed first, then add the index times an odd constant: seed ^ index would give seeds 1 and 3 the same
  // inputs in another order.
  let h = Math.imul((seed ^ 0x9e3779b9) >>> 0, 0x85ebca6b) >>> 0;
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul((h + Math.imul(index + 1, 0x27d4eb2d)) >>> 0, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** FuzzInput is one generated input. */
export interface FuzzInput {
  index: number;
  /** How it was made: "random", or "mutation of <seed name>: <operators>". */
  how: string;
  /** Everything written after the CONNECT head (the goaway that follows is not included). */
  bytes: Buffer;
  /** The payload when `bytes` is exactly one well-formed frame, so the pure-decoder oracle applies. */
  payload: Buffer | undefined;
  /** Send the bytes in the same write as the CONNECT head. */
  withHead: boolean;
}

const plain = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, encodeUndefinedAsNil: true });
// Writes any map as it is: keys named toJSON, more than 65,535 keys.
const wide = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, useToJSON: false, variableMapSize: true });
const payloadOf = (message: Message): Buffer => encodeMessage(message).subarray(4);
const requestBytes = (params: Buffer): Buffer => Buffer.concat([hex('94 00 01'), plain.pack('Echo.echo'), params]);

/** SEEDS are valid (and some deliberately invalid) payloads that mutations start from. */
export const SEEDS: ReadonlyArray<readonly [string, Buffer]> = (() => {
  let cyclic: unknown[] = [1];
  cyclic.push(cyclic);
  let laughs: unknown = ['ha'];
  for (let i = 0; i < 6; i++) laughs = [laughs, laughs];
  const seeds: Array<readonly [string, Buffer]> = [
    ['echo nested maps', payloadOf({ type: 0, id: 1, method: 'Echo.echo', params: { a: { b: { c: [1, 2, { d: 'x' }] } }, n: -5, f: 1.5, t: true, z: null } })],
    ['add', payloadOf({ type: 0, id: 2, method: 'Echo.add', params: { a: 1, b: 2 } })],
    ['add with meta', payloadOf({ type: 0, id: 3, method: 'Echo.add', params: { a: 1.5, b: -2 }, meta: { timeout: 1000, headers: { trace: 'abc' } } })],
    ['echo bin', payloadOf({ type: 0, id: 4, method: 'Echo.echo', params: Buffer.from([0, 1, 2, 250, 255]) })],
    ['echo timestamps', payloadOf({ type: 0, id: 5, method: 'Echo.echo', params: [new Date(0), new Date(1.5e12 + 123), new Date(-1e13 - 1)] })],
    ['echo big integers', payloadOf({ type: 0, id: 6, method: 'Echo.echo', params: [2n ** 60n, -(2n ** 40n), 2 ** 31, -129, 65536] })],
    ['echo raw forms', requestBytes(hex('dc 00 04 ca 3f c0 00 00 d9 03 61 62 63 c5 00 02 01 02 de 00 01 a1 6b d0 80'))],
    ['echo 100 items', payloadOf({ type: 0, id: 7, method: 'Echo.echo', params: Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? i : `s${i}`)) })],
    ['sleep', payloadOf({ type: 0, id: 8, method: 'Echo.sleep', params: { ms: 1 } })],
    ['fail', payloadOf({ type: 0, id: 9, method: 'Echo.fail', params: { code: 'NOT_FOUND', message: 'no such thing' } })],
    ['crash', payloadOf({ type: 0, id: 10, method: 'Echo.crash', params: null })],
    ['notification', payloadOf({ type: 2, method: 'Echo.notify', params: [1, 2] })],
    ['cancel', payloadOf({ type: 3, id: 1 })],
    ['ping', payloadOf({ type: 6, data: { p: 1 } })],
    ['pong', payloadOf({ type: 7, data: 'q' })],
    ['goaway', payloadOf({ type: 8, lastId: 0, code: 'UNAVAILABLE', message: 'bye' })],
    ['response', payloadOf({ type: 1, id: 1, result: 'x' })],
    ['__proto__ keys', requestBytes(hex('82 a9 5f 5f 70 72 6f 74 6f 5f 5f 81 a8 70 6f 6c 6c 75 74 65 64 c3 a1 61 01'))],
    ['records', Buffer.from(new Packr({ useRecords: true }).pack([0, 11, 'Echo.echo', [{ a: 1, b: 2 }, { a: 3, b: 4 }]]))],
    ['structured clone cycle', Buffer.from(new Packr({ structuredClone: true, useRecords: false }).pack([0, 12, 'Echo.echo', cyclic]))],
    ['structured clone laughs', Buffer.from(new Packr({ structuredClone: true, useRecords: false }).pack([0, 13, 'Echo.echo', laughs]))],
    ['bundled strings', Buffer.from(new Packr({ bundleStrings: true, useRecords: false }).pack([0, 14, 'Echo.echo', ['a'.repeat(40), 'b'.repeat(40)]]))],
    ['more types', Buffer.from(new Packr({ moreTypes: true, useRecords: false }).pack([0, 15, 'Echo.echo', [new Set([1, 2]), /a+$/, new Error('e')]]))],
    // Hardening shapes: maps that do not re-encode, wide maps, header floods.
    ['ping toJSON', hex('92 06 82 ab 63 6f 6e 73 74 72 75 63 74 6f 72 01 a6 74 6f 4a 53 4f 4e 01')],
    ['echo toJSON', Buffer.from(wide.pack([0, 16, 'Echo.echo', { toJSON: 1, constructor: { toJSON: 'x' }, valueOf: [] }]))],
    ['echo wide map', Buffer.from(wide.pack([0, 17, 'Echo.echo', Object.fromEntries(Array.from({ length: 8200 }, (_, i) => [`k${i}`, i]))]))],
    ['add many headers', payloadOf({ type: 0, id: 18, method: 'Echo.add', params: { a: 1, b: 2 }, meta: { headers: Object.fromEntries(Array.from({ length: 66 }, (_, i) => [`h${i}`, 'v'])) } })],
    ['add long header', payloadOf({ type: 0, id: 19, method: 'Echo.add', params: { a: 1, b: 2 }, meta: { headers: { big: 'v'.repeat(8200) } } })],
    ['add header case', payloadOf({ type: 0, id: 20, method: 'Echo.add', params: { a: 1, b: 2 }, meta: { headers: { 'X-A': '1', 'x-a': '2' } } })],
    ['ping 0xff', Buffer.concat([hex('92 06 d9 40'), Buffer.alloc(0x40, 0xff)])],
  ];
  return seeds;
})();

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc4, 0xc7, 0xca, 0xcb, 0xcf, 0xd4, 0xd6, 0xd7, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff];

/** mutate applies one to three byte-level operators to `seed`; returns the bytes and the operator names. */
function mutate(rng: Rng, seed: Buffer): { bytes: Buffer; ops: string[] } {
  let bytes = Buffer.from(seed);
  const ops: string[] = [];
  // Mostly one operator, so that many mutants still decode and reach dispatch, zod and the handlers.
  const rounds = rng.chance(0.6) ? 1 : 2 + rng.int(2);
  for (let round = 0; round < rounds; round++) {
    const at = rng.int(Math.max(1, bytes.length));
    switch (rng.int(9)) {
      case 0:
        if (bytes.length > 0) bytes[at] = bytes[at]! ^ (1 << rng.int(8));
        ops.push(`flip@${at}`);
        break;
      case 1:
        if (bytes.length > 0) bytes[at] = rng.int(256);
        ops.push(`set@${at}`);
        break;
      case 2:
        if (bytes.length > 0) bytes[at] = rng.pick(INTERESTING);
        ops.push(`interesting@${at}`);
        break;
      case 3:
        bytes = Buffer.concat([bytes.subarray(0, at), rng.bytes(1 + rng.int(4)), bytes.subarray(at)]);
        ops.push(`insert@${at}`);
        break;
      case 4: {
        const length = 1 + rng.int(4);
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + length)]);
        ops.push(`delete@${at}+${length}`);
        break;
      }
      case 5: {
        const length = 1 + rng.int(8);
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at, at + length), bytes.subarray(at)]);
        ops.push(`duplicate@${at}+${length}`);
        break;
      }
      case 6:
        bytes = bytes.subarray(0, at);
        ops.push(`truncate@${at}`);
        break;
      case 7: {
        const [, other] = rng.pick(SEEDS);
        const from = rng.int(other.length);
        bytes = Buffer.concat([bytes.subarray(0, at), other.subarray(from, from + 1 + rng.int(12)), bytes.subarray(at)]);
        ops.push(`splice@${at}`);
        break;
      }
      default: {
        if (bytes.length >= at + 4) bytes.writeUInt32BE(rng.chance(0.5) ? 0xffffffff : rng.int(2 ** 32), at);
        ops.push(`u32@${at}`);
      }
    }
  }
  return { bytes, ops };
}

/** generateInput builds input `index` of the run with `seed`; the same pair always gives the same bytes. */
export function generateInput(seed: number, index: number): FuzzInput {
  const rng = new Rng(inputSeed(seed, index));
  const withHead = rng.chance(0.3);
  if (index % 100 === 1) {
    // Notifications under load, then a seed (mutated or not) behind them in the same write, as a hostile peer would.
    const [name, base] = rng.pick(SEEDS);
    const count = 1 + rng.int(128);
    const burst = Array.from({ length: count }, () => encodeFrame(payloadOf({ type: 2, method: rng.chance(0.5) ? 'Echo.notify' : 'Echo.sleep', params: rng.chance(0.5) ? { ms: rng.int(20) } : [1] })));
    const tail = rng.chance(0.5) ? base : mutate(rng, base).bytes;
    return { index, how: `${count} notifications, then ${name}`, bytes: Buffer.concat([...burst, encodeFrame(tail)]), payload: undefined, withHead };
  }
  if (index % 2 === 0) {
    const payload = rng.bytes(1 + rng.int(64));
    // Half of the random payloads start like a message array, so they get past the first checks more often.
    if (rng.chance(0.5)) {
      payload[0] = 0x92 + rng.int(4);
      if (payload.length > 1) payload[1] = rng.int(9);
    }
    return { index, how: 'random', bytes: encodeFrame(payload), payload, withHead };
  }
  const [name, base] = rng.pick(SEEDS);
  const { bytes: mutated, ops } = mutate(rng, base);
  if (rng.chance(0.1)) {
    // Break the framing too: a length that lies by a few bytes either way (the oracle is then only "allowed").
    const lie = Math.max(0, mutated.length + rng.pick([-3, -2, -1, 1, 2, 3]));
    const header = Buffer.alloc(4);
    header.writeUInt32BE(lie);
    return { index, how: `mutation of ${name}: ${ops.join(', ')}, length ${lie} for ${mutated.length}`, bytes: Buffer.concat([header, mutated]), payload: undefined, withHead };
  }
  return { index, how: `mutation of ${name}: ${ops.join(', ')}`, bytes: encodeFrame(mutated), payload: mutated.length > 0 ? mutated : undefined, withHead };
}

/** Expectation is what the pure decoder predicts the server does with one intact frame. */
type Expectation =
  | { kind: 'goaway'; code: string }
  | { kind: 'result'; id: number; value: unknown }
  | { kind: 'error'; id: number; code: string }
  | { kind: 'response'; id: number }
  | { kind: 'pong'; data: unknown }
  | { kind: 'nothing' };

/** expectationFor mirrors the server: decode with the default limits, then what the Echo fixture answers. */
export function expectationFor(payload: Buffer): Expectation {
  let message: Message;
  try {
    message = decodeMessage(payload);
  } catch (error) {
    return { kind: 'goaway', code: goawayCodeOf(RpcError.from(error, 'INTERNAL')) };
  }
  switch (message.type) {
    case MessageType.Request: {
      const stats = { largestMap: 0 };
      scanMessagePack(payload, DEFAULT_DECODE_LIMITS, stats);
      return expectRequest(message, stats.largestMap);
    }
    case MessageType.Response:
      return { kind: 'goaway', code: 'PROTOCOL_ERROR' };
    case MessageType.Ping:
      try {
        encodePongPayload(payload);
      } catch (error) {
        return { kind: 'goaway', code: goawayCodeOf(RpcError.from(error, 'INTERNAL')) };
      }
      return { kind: 'pong', data: message.data };
    // One frame on a fresh tunnel: no request has opened the stream these name.
    case MessageType.StreamMessage:
    case MessageType.HalfClose:
    case MessageType.Credit:
      return { kind: 'goaway', code: 'PROTOCOL_ERROR' };
    default:
      return { kind: 'nothing' };
  }
}

function expectRequest(request: RequestMessage, largestMap: number): Expectation {
  const { id, method, params } = request;
  if (method !== 'Echo.echo' && method !== 'Echo.add') return { kind: 'response', id };
  if (request.meta?.timeout === 0) return { kind: 'error', id, code: 'DEADLINE_EXCEEDED' };
  if (headersRefused(request.meta?.headers)) return { kind: 'error', id, code: 'INVALID_ARGUMENT' };
  if (largestMap > 8192) return { kind: 'error', id, code: 'INVALID_ARGUMENT' };
  const parsed = parseWithSchema(Echo.methods[method === 'Echo.echo' ? 'echo' : 'add'].input, params);
  if (!parsed.success) return { kind: 'error', id, code: 'INVALID_ARGUMENT' };
  if (method === 'Echo.echo') return { kind: 'result', id, value: parsed.data };
  const { a, b } = parsed.data as { a: number; b: number };
  return { kind: 'result', id, value: a + b };
}

// The server's default header limits: 64 names, 8192 bytes, names unique in lower case.
function headersRefused(headers: Record<string, string> | undefined): boolean {
  if (headers === undefined) return false;
  const names = Object.keys(headers);
  if (names.length > 64) return true;
  let bytes = 0;
  for (const name of names) bytes += Buffer.byteLength(name) + Buffer.byteLength(headers[name]!);
  return bytes > 8192 || new Set(names.map((name) => name.toLowerCase())).size !== names.length;
}

/** sameValue compares decoded values: -0 equals 0 (MessagePack writes -0 as 0), NaN equals NaN, bytes by content. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  // A string holding a lone surrogate is written back as U+FFFD: compare strings by their UTF-8 bytes.
  if (typeof a === 'string' && typeof b === 'string') return Buffer.from(a, 'utf8').equals(Buffer.from(b, 'utf8'));
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b);
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && sameValue(a.getTime(), b.getTime());
  if (a instanceof Uint8Array || b instanceof Uint8Array) return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(a, b) === 0;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  if (keysA.length !== keysB.length) return false;
  return keysA.every((key) => Object.hasOwn(b, key) && sameValue((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

const GOAWAY_CODES = new Set(['PROTOCOL_ERROR', 'RESOURCE_EXHAUSTED', 'UNAVAILABLE']);
const CODES = new Set<string>(ERROR_CODES);

/** allowedProblem checks one message against "only mapped outcomes" and returns what is wrong, if anything. */
function allowedProblem(message: Message): string | undefined {
  switch (message.type) {
    case MessageType.Response:
      return message.error === undefined || CODES.has(message.error.code) ? undefined : `a response with the unmapped code ${message.error.code}`;
    case MessageType.Pong:
      return undefined;
    case MessageType.Goaway:
      return GOAWAY_CODES.has(message.code) ? undefined : `a goaway with the code ${message.code}`;
    default:
      return `a message of type ${message.type}, which a server never sends`;
  }
}

const brief = (value: unknown): string => {
  try {
    return (JSON.stringify(value, (_key, each: unknown) => (typeof each === 'bigint' ? `${each}n` : each)) ?? String(value)).slice(0, 200);
  } catch {
    return String(value);
  }
};

/** judge returns what is wrong with the server's answer to `input`, or undefined when every oracle holds. */
export function judge(input: FuzzInput, messages: Message[]): string | undefined {
  for (const message of messages) {
    const problem = allowedProblem(message);
    if (problem !== undefined) return problem;
  }
  if (input.payload === undefined) return undefined;
  const expected = expectationFor(input.payload);
  const got = brief(messages);
  switch (expected.kind) {
    case 'goaway': {
      const [first] = messages;
      if (messages.length !== 1 || first?.type !== MessageType.Goaway || first.code !== expected.code || first.lastId !== 0) {
        return `expected only goaway ${expected.code} (lastId 0), got ${got}`;
      }
      return undefined;
    }
    case 'nothing':
      return messages.length === 0 ? undefined : `expected no message, got ${got}`;
    case 'pong': {
      const [first] = messages;
      return messages.length === 1 && first?.type === MessageType.Pong && sameValue(first.data, expected.data) ? undefined : `expected a pong with ${brief(expected.data)}, got ${got}`;
    }
    default: {
      const [first] = messages;
      if (messages.length !== 1 || first?.type !== MessageType.Response || first.id !== expected.id) return `expected one response to id ${expected.id}, got ${got}`;
      const response = first as ResponseMessage;
      if (expected.kind === 'result' && (response.error !== undefined || !sameValue(response.result, expected.value))) {
        return `expected the result ${brief(expected.value)}, got ${got}`;
      }
      if (expected.kind === 'error' && response.error?.code !== expected.code) return `expected the error ${expected.code}, got ${got}`;
      return undefined;
    }
  }
}

/** FuzzServer is the live server under fuzz, with short limits so that every tunnel ends quickly. */
export interface FuzzServer {
  readonly rpc: RpcServer;
  readonly port: number;
  readonly url: string;
  /** Everything the server logged. */
  readonly logs: string[];
}

/** startFuzzServer serves the Echo fixture on 127.0.0.1:0 with short frame and call deadlines. */
export async function startFuzzServer(): Promise<FuzzServer> {
  const logs: string[] = [];
  const rpc = new RpcServer({
    frameTimeout: 250,
    maxTimeout: 200,
    shutdownTimeout: 500,
    maxConnectionsPerIp: 100_000,
    logger: (entry) => logs.push(logLine(entry)),
  }).register(Echo, createEchoService());
  const { port, url } = await rpc.listen(0);
  return { rpc, port, url, logs };
}

// What the Echo fixture may log under fuzz: crash() throwing, and notifications it drops.
const EXPECTED_LOG = /^(Echo\.crash: handler threw.*|.*notification .*dropped.*|\d+ log entries were dropped.*)$/s;

/** unexpectedLogs returns the log lines that are not an expected crash or dropped notification. */
export function unexpectedLogs(logs: readonly string[]): string[] {
  return logs.filter((line) => !EXPECTED_LOG.test(line));
}

/** Failure is one input whose tunnel broke an oracle. */
export interface Failure {
  index: number;
  how: string;
  hex: string;
  problem: string;
}

/** FuzzReport sums up a run. */
export interface FuzzReport {
  seed: number;
  count: number;
  /** Outcomes by kind: "goaway PROTOCOL_ERROR", "response INVALID_ARGUMENT", "result", "pong", "nothing". */
  outcomes: Record<string, number>;
  /** Inputs that broke an oracle (the first 50 are listed in `failures`). */
  failed: number;
  failures: Failure[];
  unexpectedLogs: string[];
  prototypeChanged: boolean;
  seconds: number;
}

const GOODBYE = encodeMessage({ type: MessageType.Goaway, lastId: 0, code: 'UNAVAILABLE', message: 'fuzz input done' });
const TUNNEL_LIMIT_MS = 5000;

/** runInput sends one input on a fresh tunnel and resolves with what the server sent before it closed. */
export async function runInput(port: number, input: FuzzInput): Promise<{ messages: Message[]; problem: string | undefined }> {
  const tunnel = input.withHead ? await RawTunnel.open(port, input.bytes) : await RawTunnel.open(port);
  try {
    if (!input.withHead) tunnel.write(input.bytes);
    tunnel.write(GOODBYE);
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<'open'>((resolve) => (timer = setTimeout(() => resolve('open'), TUNNEL_LIMIT_MS)));
    const outcome = await Promise.race([tunnel.messagesUntilClose().then(() => 'closed' as const), limit]).finally(() => clearTimeout(timer));
    if (outcome === 'open') return { messages: tunnel.messages, problem: `the tunnel was still open after ${TUNNEL_LIMIT_MS} ms` };
    return { messages: tunnel.messages, problem: judge(input, tunnel.messages) };
  } catch (error) {
    return { messages: tunnel.messages, problem: `tunnel error: ${(error as Error).message}` };
  } finally {
    tunnel.destroy();
  }
}

function outcomeOf(messages: Message[]): string {
  if (messages.length === 0) return 'nothing';
  const last = messages[messages.length - 1]!;
  if (last.type === MessageType.Goaway) return `goaway ${last.code}`;
  if (last.type === MessageType.Pong) return 'pong';
  if (last.type === MessageType.Response) return last.error === undefined ? 'result' : `response ${last.error.code}`;
  return 'other';
}

/**
 * runFuzz sends inputs `from` … `from + count - 1` of the run with `seed` to the server at `port`, `parallel`
 * tunnels at a time, and checks every oracle but the final known-good call.
 */
export async function runFuzz(options: {
  server: FuzzServer;
  seed: number;
  count: number;
  from?: number;
  parallel?: number;
  onProgress?: (done: number) => void;
}): Promise<FuzzReport> {
  const { server, seed, count } = options;
  const from = options.from ?? 0;
  const parallel = options.parallel ?? 64;
  const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort().join(',');
  const outcomes: Record<string, number> = {};
  const failures: Failure[] = [];
  let failed = 0;
  let prototypeChanged = false;
  const started = performance.now();
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const input = generateInput(seed, from + next++);
      const { messages, problem } = await runInput(server.port, input);
      const outcome = outcomeOf(messages);
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      if (problem !== undefined) failed++;
      if (problem !== undefined && failures.length < 50) failures.push({ index: input.index, how: input.how, hex: input.bytes.toString('hex').slice(0, 400), problem });
      if (({} as Record<string, unknown>)['polluted'] !== undefined || Object.getOwnPropertyNames(Object.prototype).sort().join(',') !== prototypeKeys) {
        prototypeChanged = true;
      }
      if (++done % 1000 === 0) options.onProgress?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  return {
    seed,
    count,
    outcomes,
    failed,
    failures,
    unexpectedLogs: unexpectedLogs(server.logs).slice(0, 20),
    prototypeChanged,
    seconds: Math.round(performance.now() - started) / 1000,
  };
}
