/**
 * The mirror of EnvelopeEncoder: reads the hot messages (requests, successful responses, stream messages) by hand,
 * in place in the received chunk, after the pre-scan has checked the frame and recorded where each element of the
 * message array starts. Only the values (params, result, message, and meta beyond `{timeout}`) go to msgpackr, each
 * decoded from its own byte range. No tuple array, no view per frame, no string per method name.
 *
 * Anything unusual (another integer form for the id, a non-ASCII method, an error response) answers undefined, and
 * the caller decodes the frame the general way, so both paths accept and refuse exactly the same frames.
 */
import type { Unpackr } from 'msgpackr';
import type { Message, RequestMessage, RequestMeta } from './message-types.js';
import { elementOffset } from './prescan.js';

// A cache of names (methods, map keys) indexed by a hash of their bytes: frames repeat few names, and making a
// string of each name per request was a fifth of the decoding. A colliding or hostile stream of names only
// replaces entries.
const NAME_SLOTS = 512;
const nameBytes: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(NAME_SLOTS).fill(undefined);
const nameStrings: string[] = new Array<string>(NAME_SLOTS).fill('');

// "timeout" as a fixstr: the one meta key every call sends.
const TIMEOUT_KEY = [0xa7, 0x74, 0x69, 0x6d, 0x65, 0x6f, 0x75, 0x74];

// One options object, reused: msgpackr reads start and end from it and keeps nothing.
const range = { start: 0, end: 0 };

/**
 * readHotMessage reads a message whose frame `bytes[start, end)` scanFrame has just checked, or answers undefined
 * for the general path. `unpackr` decodes the values; `readMeta` turns a meta value other than `{timeout}` into
 * RequestMeta (it throws for a malformed one). A value that is one byte array is read here, as the unpackr would
 * give it: a copy when its copyBuffers option is set, else a view of `bytes`. Throws what msgpackr throws for a
 * value it cannot decode.
 */
export function readHotMessage(
  bytes: Uint8Array,
  start: number,
  end: number,
  unpackr: Unpackr,
  readMeta: (value: unknown) => RequestMeta | undefined,
): Message | undefined {
  const head = bytes[start]!;
  if (head < 0x93 || head > 0x95) return undefined;
  const arity = head & 0x0f;
  switch (bytes[start + 1]) {
    case 0: {
      if (arity < 4) return undefined;
      const id = uintAt(bytes, elementOffset(1), elementOffset(2));
      const method = methodAt(bytes, elementOffset(2), elementOffset(3));
      if (id < 0 || method === undefined) return undefined;
      const paramsEnd = arity === 5 ? elementOffset(4) : end;
      const request: RequestMessage = { type: 0, id, method, params: valueAt(bytes, elementOffset(3), paramsEnd, unpackr) };
      if (arity === 5) {
        const meta = metaAt(bytes, paramsEnd, end, unpackr, readMeta);
        if (meta !== undefined) request.meta = meta;
      }
      return request;
    }
    case 1: {
      if (arity !== 4 || bytes[elementOffset(2)] !== 0xc0) return undefined;
      const id = uintAt(bytes, elementOffset(1), elementOffset(2));
      if (id < 0) return undefined;
      return { type: 1, id, result: valueAt(bytes, elementOffset(3), end, unpackr) };
    }
    case 4: {
      if (arity !== 3) return undefined;
      const id = uintAt(bytes, elementOffset(1), elementOffset(2));
      if (id < 0) return undefined;
      return { type: 4, id, message: valueAt(bytes, elementOffset(2), end, unpackr) };
    }
    default:
      return undefined;
  }
}

// An unsigned integer in one of the forms an encoder writes for ids (fixint, uint8, uint16, uint32) that fills
// bytes[at, next) exactly, or -1 for any other form (the general path decides).
function uintAt(bytes: Uint8Array, at: number, next: number): number {
  const b = bytes[at]!;
  if (b <= 0x7f) return next === at + 1 ? b : -1;
  switch (b) {
    case 0xcc:
      return next === at + 2 ? bytes[at + 1]! : -1;
    case 0xcd:
      return next === at + 3 ? (bytes[at + 1]! << 8) | bytes[at + 2]! : -1;
    case 0xce:
      return next === at + 5 ? bytes[at + 1]! * 0x1000000 + ((bytes[at + 2]! << 16) | (bytes[at + 3]! << 8) | bytes[at + 4]!) : -1;
    default:
      return -1;
  }
}

// An ASCII method name (fixstr or str8) filling bytes[at, next), from the cache when its bytes were seen before.
function methodAt(bytes: Uint8Array, at: number, next: number): string | undefined {
  const b = bytes[at]!;
  if (b >= 0xa0 && b <= 0xbf) return cachedName(bytes, at + 1, next);
  if (b === 0xd9) return cachedName(bytes, at + 2, next);
  return undefined;
}

// The ASCII string of bytes[from, to), from the name cache; undefined if a byte is not ASCII.
function cachedName(bytes: Uint8Array, from: number, to: number): string | undefined {
  const length = to - from;
  let hash = length;
  for (let i = from; i < to; i++) {
    const c = bytes[i]!;
    if (c >= 0x80) return undefined;
    hash = (Math.imul(hash, 31) + c) | 0;
  }
  const slot = hash & (NAME_SLOTS - 1);
  const known = nameBytes[slot];
  if (known !== undefined && known.length === length && sameBytes(known, bytes, from)) return nameStrings[slot];
  const name = Buffer.from(bytes.buffer, bytes.byteOffset + from, length).toString('latin1');
  nameBytes[slot] = bytes.slice(from, to);
  nameStrings[slot] = name;
  return name;
}

function sameBytes(known: Uint8Array, bytes: Uint8Array, from: number): boolean {
  for (let i = 0; i < known.length; i++) if (known[i] !== bytes[from + i]) return false;
  return true;
}

const copyOf = (bytes: Uint8Array, from: number, to: number): Uint8Array => Uint8Array.prototype.slice.call(bytes, from, to);

// msgpackr keeps its options on the instance, and reads copyBuffers there itself; the typings leave it out.
const copiesBytes = (unpackr: Unpackr): boolean => (unpackr as { copyBuffers?: boolean }).copyBuffers === true;

// One value from bytes[at, next). The one-byte scalars, a lone byte array and a small map of scalars are read here
// (an unpack call costs more); msgpackr decodes the rest.
function valueAt(bytes: Uint8Array, at: number, next: number, unpackr: Unpackr): unknown {
  const b = bytes[at]!;
  if (b >= 0x80 && b <= 0x8f && bytes instanceof Buffer) {
    const object = flatMapAt(bytes, at, next);
    if (object !== undefined) return object;
  } else if (next === at + 1) {
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b === 0xc0) return null;
    if (b === 0xc2) return false;
    if (b === 0xc3) return true;
  } else if (b === 0xc4 || b === 0xc5 || b === 0xc6) {
    const from = at + (b === 0xc4 ? 2 : b === 0xc5 ? 3 : 5);
    const length = b === 0xc4 ? bytes[at + 1]! : b === 0xc5 ? (bytes[at + 1]! << 8) | bytes[at + 2]! : bytes[at + 1]! * 0x1000000 + ((bytes[at + 2]! << 16) | (bytes[at + 3]! << 8) | bytes[at + 4]!);
    // The same object msgpackr makes: a view, or a copy of the same class as `bytes` (a Buffer from a socket;
    // Buffer's own slice() would be a view).
    if (from + length === next) return copiesBytes(unpackr) ? copyOf(bytes, from, next) : bytes.subarray(from, next);
  }
  range.start = at;
  range.end = next;
  return unpackr.unpack(bytes, range);
}

// Keys msgpackr renames so that a decoded map never sets its object's prototype.
const PROTO_KEY = '__proto__';
const PROTO_KEY_RENAMED = '__proto_';

/**
 * A fixmap whose keys are ASCII fixstrs and whose values are nil, booleans, integers up to 32 bits, float 64s or
 * ASCII strings up to 255 bytes, read as msgpackr reads it with mapsAsObjects: a plain object, keys in order, a
 * later duplicate key winning, "__proto__" renamed "__proto_". Undefined for any other map (msgpackr reads it).
 * The pre-scan has checked every length against the frame.
 */
function flatMapAt(bytes: Buffer, at: number, next: number): Record<string, unknown> | undefined {
  const entries = bytes[at]! & 0x0f;
  const object: Record<string, unknown> = {};
  let pos = at + 1;
  for (let i = 0; i < entries; i++) {
    const k = bytes[pos]!;
    if (k < 0xa0 || k > 0xbf) return undefined;
    const keyEnd = pos + 1 + (k & 0x1f);
    const key = cachedName(bytes, pos + 1, keyEnd);
    if (key === undefined) return undefined;
    pos = keyEnd;
    const b = bytes[pos++]!;
    let value: unknown;
    if (b <= 0x7f) {
      value = b;
    } else if (b >= 0xe0) {
      value = b - 0x100;
    } else if (b >= 0xa0 && b <= 0xbf) {
      value = asciiAt(bytes, pos, (pos += b & 0x1f));
    } else {
      switch (b) {
        case 0xc0: value = null; break;
        case 0xc2: value = false; break;
        case 0xc3: value = true; break;
        case 0xcc: value = bytes[pos++]; break;
        case 0xcd: value = bytes.readUInt16BE(pos); pos += 2; break;
        case 0xce: value = bytes.readUInt32BE(pos); pos += 4; break;
        case 0xd0: value = bytes.readInt8(pos++); break;
        case 0xd1: value = bytes.readInt16BE(pos); pos += 2; break;
        case 0xd2: value = bytes.readInt32BE(pos); pos += 4; break;
        case 0xcb: value = bytes.readDoubleBE(pos); pos += 8; break;
        case 0xd9: {
          const from = pos + 1;
          value = asciiAt(bytes, from, (pos = from + bytes[from - 1]!));
          break;
        }
        default:
          return undefined;
      }
    }
    // A string that was not ASCII.
    if (value === undefined) return undefined;
    object[key === PROTO_KEY ? PROTO_KEY_RENAMED : key] = value;
  }
  return pos === next ? object : undefined;
}

// The string of bytes[from, to) if they are all ASCII, else undefined (msgpackr decodes UTF-8 its own way).
function asciiAt(bytes: Buffer, from: number, to: number): string | undefined {
  if (to - from <= 8) {
    let text = '';
    for (let i = from; i < to; i++) {
      const c = bytes[i]!;
      if (c >= 0x80) return undefined;
      text += String.fromCharCode(c);
    }
    return text;
  }
  for (let i = from; i < to; i++) if (bytes[i]! >= 0x80) return undefined;
  return bytes.toString('latin1', from, to);
}

// The meta element: nil, `{timeout: <uint>}` read here, or anything else through msgpackr and readMeta.
function metaAt(
  bytes: Uint8Array,
  at: number,
  end: number,
  unpackr: Unpackr,
  readMeta: (value: unknown) => RequestMeta | undefined,
): RequestMeta | undefined {
  if (end === at + 1 && bytes[at] === 0xc0) return undefined;
  if (bytes[at] === 0x81 && end > at + 1 + TIMEOUT_KEY.length) {
    let key = true;
    for (let i = 0; i < TIMEOUT_KEY.length; i++) {
      if (bytes[at + 1 + i] !== TIMEOUT_KEY[i]) {
        key = false;
        break;
      }
    }
    if (key) {
      const timeout = uintAt(bytes, at + 1 + TIMEOUT_KEY.length, end);
      if (timeout >= 0) return { timeout };
    }
  }
  return readMeta(valueAt(bytes, at, end, unpackr));
}
