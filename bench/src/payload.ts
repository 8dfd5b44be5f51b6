/**
 * The payloads every peer echoes, as services send them, the same values in every process of a run:
 *
 *   small, 1k, 64k           opaque bytes of 32 B, 1 KiB, 64 KiB (a MessagePack bin; the raw body for grpc-js,
 *                            undici and Go)
 *   str32, str1k, str64k     {a: 1, b: <string of 32, 1024 or 65536 ASCII characters>}
 *   object                   {items: [20 records]}, each record a map of numbers, a string, a boolean, a list of
 *                            strings, a nested map (an address) and a timestamp (a Date): 2.3 KiB of MessagePack
 *
 * bench/go/main.go builds the same values as Go types (go/main.go createPayload).
 */
import { pack } from 'msgpackr';

/** PayloadShape is how a payload looks to a service: bytes, a small map with a string, or a list of records. */
export type PayloadShape = 'bytes' | 'string' | 'object';

/** PAYLOADS maps each payload name of the CLI to its shape and size (bytes, characters, or records). */
export const PAYLOADS = {
  small: { shape: 'bytes', size: 32 },
  '1k': { shape: 'bytes', size: 1024 },
  '64k': { shape: 'bytes', size: 65_536 },
  str32: { shape: 'string', size: 32 },
  str1k: { shape: 'string', size: 1024 },
  str64k: { shape: 'string', size: 65_536 },
  object: { shape: 'object', size: 20 },
} as const satisfies Record<string, { shape: PayloadShape; size: number }>;

/** PayloadName is a payload the CLI accepts. */
export type PayloadName = keyof typeof PAYLOADS;

/** PAYLOAD_NAMES lists the payloads in the order tables show them. */
export const PAYLOAD_NAMES = Object.keys(PAYLOADS) as PayloadName[];

/** isPayloadName tells whether `name` is one of PAYLOADS. */
export function isPayloadName(name: string): name is PayloadName {
  return Object.hasOwn(PAYLOADS, name);
}

/** Row is one record of the `object` payload. */
export interface Row {
  id: number;
  name: string;
  active: boolean;
  score: number;
  tags: string[];
  address: { city: string; zip: string };
  createdAt: Date;
}

/** ObjectPayload is the `object` payload. */
export interface ObjectPayload {
  items: Row[];
}

/** StringPayload is a `str*` payload. */
export interface StringPayload {
  a: number;
  b: string;
}

/** PayloadValue is any payload's value. */
export type PayloadValue = Buffer | StringPayload | ObjectPayload;

const TAGS = ['alpha', 'beta'];
const CITIES = ['Springfield', 'Rivertown', 'Lakeside', 'Hillview'];
// 2026-01-02T03:04:05.678Z, plus i hours: a timestamp with milliseconds, as services store them.
const EPOCH_MS = 1_767_323_045_678;

/** createPayload returns the value of payload `name`; every call returns an equal value. */
export function createPayload(name: PayloadName): PayloadValue {
  const { shape, size } = PAYLOADS[name];
  if (shape === 'bytes') return createBytes(size);
  if (shape === 'string') return { a: 1, b: createAscii(size) };
  const items: Row[] = [];
  for (let i = 0; i < size; i++) {
    items.push({
      id: 100_000 + i,
      name: `user-${i}`,
      active: i % 3 !== 0,
      score: 0.5 + i * 1.25,
      tags: TAGS.slice(0, 1 + (i % 2)),
      address: { city: CITIES[i % CITIES.length]!, zip: String(10_000 + i * 7) },
      createdAt: new Date(EPOCH_MS + i * 3_600_000),
    });
  }
  return { items };
}

/** payloadBytes is the payload's size on a MessagePack wire (the bin or map alone, without any envelope). */
export function payloadBytes(name: PayloadName): number {
  const { shape, size } = PAYLOADS[name];
  return shape === 'bytes' ? size : pack(createPayload(name)).length;
}

/** describePayload says what payload `name` is, for tables: "64 KiB bytes", "1 KiB string", "20 records". */
export function describePayload(name: string): string {
  if (!isPayloadName(name)) return name;
  const { shape, size } = PAYLOADS[name];
  if (shape === 'object') return `${size} records, ${formatSize(payloadBytes(name))}`;
  return `${formatSize(size)} ${shape === 'bytes' ? 'bytes' : 'string'}`;
}

/** checkEcho says why `echoed` is not the echo of payload `name`, or returns undefined when it is. */
export function checkEcho(name: PayloadName, echoed: unknown): string | undefined {
  const { shape, size } = PAYLOADS[name];
  if (shape === 'bytes') {
    const length = echoed instanceof Uint8Array ? echoed.length : undefined;
    return length === size ? undefined : `echo of ${length ?? typeof echoed} bytes, expected ${size}`;
  }
  if (shape === 'string') {
    const b = (echoed as Partial<StringPayload> | undefined)?.b;
    return typeof b === 'string' && b.length === size ? undefined : `echo without a ${size}-character b`;
  }
  const items = (echoed as Partial<ObjectPayload> | undefined)?.items;
  return Array.isArray(items) && items.length === size ? undefined : `echo without ${size} items`;
}

/**
 * createBytes returns `bytes` bytes of a fixed pseudo-random pattern (xorshift32), so no compression or
 * run-length trick in any stack can make one peer's payload cheaper than another's.
 */
export function createBytes(bytes: number): Buffer {
  const payload = Buffer.allocUnsafe(bytes);
  let state = 0x9e3779b9;
  for (let i = 0; i < bytes; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    payload[i] = state & 0xff;
  }
  return payload;
}

// The same pattern mapped onto 'a'..'z', so every peer carries the same characters (ASCII: one byte each).
function createAscii(length: number): string {
  const bytes = createBytes(length);
  for (let i = 0; i < length; i++) bytes[i] = 0x61 + (bytes[i]! % 26);
  return bytes.toString('latin1');
}

function formatSize(bytes: number): string {
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}
