/**
 * A hand-written encoder for the hot messages (requests and responses). msgpackr costs 300 to 700 ns per pack()
 * call whatever the size, which made it the largest cost of a small call; the envelope is a handful of bytes we
 * can write directly. Scalars, strings, byte arrays and small plain objects of those (a typical params or result,
 * and headers) are written here; any other value (arrays, nested objects, Dates, Maps) is packed by msgpackr and
 * copied in, so the output is always the same standard MessagePack.
 *
 * Output goes into a shared slab: each encoded message is a view of it that is never written again (like
 * msgpackr's own buffers), valid until the caller drops it.
 *
 * Over 400 lines: every writer here moves the same slab position, kept in private fields of one class so that
 * the hot path writes each byte without a call into another object.
 */
import type { Packr } from 'msgpackr';

const SLAB_SIZE = 64 * 1024;
// Worst case of everything but the params: array header, type, id, method header, meta with timeout.
const ENVELOPE_MARGIN = 64;

const MAX_CACHED_METHODS = 1024;

// Strings shorter than this are copied by a loop when they are ASCII (at most 255, the str8 form's bound).
const ASCII_LOOP_MAX = 64;
// Plain objects with more keys than this go to msgpackr whole: they are rarely flat, and msgpackr's loop is tighter.
const FLAT_OBJECT_MAX_KEYS = 32;
// Byte arrays this large are sent from the caller's memory, not copied (see PayloadParts).
const ZERO_COPY_BYTES = 16 * 1024;

/**
 * PayloadParts is one frame payload, whole or in pieces whose concatenation is the payload. Pieces let large
 * byte arrays go to the socket without a copy; such a Buffer must not be changed until its call has ended.
 */
export type PayloadParts = Uint8Array | readonly Uint8Array[];

/** payloadLength is the byte length of a payload given whole or in parts. */
export function payloadLength(payload: PayloadParts): number {
  if (payload instanceof Uint8Array) return payload.length;
  let length = 0;
  for (const part of payload) length += part.length;
  return length;
}

// A standalone MessagePack str (header and UTF-8 bytes), for names written again and again.
function encodeString(text: string): Uint8Array {
  const length = Buffer.byteLength(text, 'utf8');
  const header = length < 32 ? [0xa0 | length] : length < 0x100 ? [0xd9, length] : length < 0x10000 ? [0xda, length >>> 8, length & 0xff] : [0xdb, (length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff];
  const out = Buffer.allocUnsafe(header.length + length);
  out.set(header, 0);
  out.write(text, header.length, 'utf8');
  return out;
}

const TIMEOUT_KEY = encodeString('timeout');
const HEADERS_KEY = encodeString('headers');

/** EnvelopeEncoder writes wire-v1 requests and responses. @internal */
export class EnvelopeEncoder {
  readonly #packr: Packr;
  readonly #methods = new Map<string, Uint8Array>();
  #slab = Buffer.allocUnsafe(SLAB_SIZE);
  #parts: Uint8Array[] | undefined;
  #start = 0;
  #pos = 0;
  // True while the message begun holds no value packed by msgpackr (see flat).
  #flat = true;
  // MessagePack values written here so far in the message begun (see items), and its nesting (see depth).
  #items = 0;
  #depth = 2;

  constructor(packr: Packr) {
    this.#packr = packr;
  }

  /** request writes `[0, id, method, params, {timeout, headers?}]` (meta omitted when undefined). */
  request(id: number, method: string, params: unknown, timeout: number | undefined, headers: Record<string, string> | undefined): PayloadParts {
    this.#begin(0);
    const hasMeta = timeout !== undefined || headers !== undefined;
    this.#byte(hasMeta ? 0x95 : 0x94);
    this.#byte(0x00);
    this.#uint(id);
    this.#raw(this.#methodBytes(method));
    this.#items += 4;
    this.#value(params);
    if (hasMeta) {
      this.#ensure(ENVELOPE_MARGIN);
      this.#byte(0x80 | ((timeout === undefined ? 0 : 1) + (headers === undefined ? 0 : 1)));
      this.#items++;
      if (timeout !== undefined) {
        this.#raw(TIMEOUT_KEY);
        this.#uint(timeout);
        this.#items += 2;
      }
      if (headers !== undefined) {
        this.#raw(HEADERS_KEY);
        this.#items++;
        // A map in the meta map: the third level.
        this.#depth = 3;
        this.#value(headers);
      }
    }
    return this.#end();
  }

  /** response writes `[1, id, nil, result]`; errors go through the generic path, they are rare. */
  result(id: number, result: unknown): PayloadParts {
    this.#begin(0);
    this.#byte(0x94);
    this.#byte(0x01);
    this.#uint(id);
    this.#byte(0xc0);
    this.#items += 4;
    this.#value(result);
    return this.#end();
  }

  /** streamMessage writes `[4, id, message]` (PROTOCOL.md 12.2): the hot frame of a stream. */
  streamMessage(id: number, message: unknown): PayloadParts {
    this.#begin(0);
    this.#byte(0x93);
    this.#byte(0x04);
    this.#uint(id);
    this.#items += 3;
    this.#value(message);
    return this.#end();
  }

  // A client calls few distinct methods: their encoded names are kept instead of UTF-8 encoded per call.
  #methodBytes(method: string): Uint8Array {
    let bytes = this.#methods.get(method);
    if (bytes === undefined) {
      bytes = encodeString(method);
      if (this.#methods.size >= MAX_CACHED_METHODS) this.#methods.clear();
      this.#methods.set(method, bytes);
    }
    return bytes;
  }

  #raw(bytes: Uint8Array): void {
    this.#ensure(bytes.length);
    this.#slab.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /**
   * flat tells whether the last message was written here alone: envelope, scalars, strings, byte arrays and plain
   * objects of those, no value packed by msgpackr. Such a message holds `items` values nested `depth` deep.
   */
  get flat(): boolean {
    return this.#flat;
  }

  /** items counts the MessagePack values of the last message; exact when it is flat. */
  get items(): number {
    return this.#items;
  }

  /** depth is how deep the last message nests (the message array is level 1); exact when it is flat. */
  get depth(): number {
    return this.#depth;
  }

  #begin(extra: number): void {
    if (SLAB_SIZE - this.#pos < ENVELOPE_MARGIN + extra) this.#newSlab(ENVELOPE_MARGIN + extra);
    this.#start = this.#pos;
    // A message that threw midway (a getter, or a value msgpackr refuses) may have left parts behind.
    this.#parts = undefined;
    this.#flat = true;
    this.#items = 0;
    this.#depth = 2;
  }

  #end(): PayloadParts {
    const out = this.#slab.subarray(this.#start, this.#pos);
    this.#start = this.#pos;
    const parts = this.#parts;
    if (parts === undefined) return out;
    this.#parts = undefined;
    if (out.length > 0) parts.push(out);
    return parts;
  }

  // Large byte arrays are not copied: the message becomes parts, with the caller's bytes as one of them.
  #cutAround(data: Uint8Array): void {
    const parts = (this.#parts ??= []);
    if (this.#pos > this.#start) parts.push(this.#slab.subarray(this.#start, this.#pos));
    parts.push(data);
    this.#start = this.#pos;
  }

  // Makes room for n more bytes, moving the message begun so far to a new slab if needed.
  #ensure(n: number): void {
    if (this.#slab.length - this.#pos >= n) return;
    const begun = this.#slab.subarray(this.#start, this.#pos);
    this.#newSlab(begun.length + n);
    this.#slab.set(begun, 0);
    this.#pos = begun.length;
  }

  #newSlab(atLeast: number): void {
    this.#slab = Buffer.allocUnsafe(Math.max(SLAB_SIZE, atLeast));
    this.#start = 0;
    this.#pos = 0;
  }

  #byte(b: number): void {
    this.#slab[this.#pos++] = b;
  }

  // Non-negative integers up to 2^32 - 1 (ids, timeouts), smallest form.
  #uint(n: number): void {
    const slab = this.#slab;
    let pos = this.#pos;
    if (n < 0x80) {
      slab[pos++] = n;
    } else if (n < 0x100) {
      slab[pos++] = 0xcc;
      slab[pos++] = n;
    } else if (n < 0x10000) {
      slab[pos++] = 0xcd;
      slab[pos++] = n >>> 8;
      slab[pos++] = n & 0xff;
    } else {
      slab[pos++] = 0xce;
      slab.writeUInt32BE(n, pos);
      pos += 4;
    }
    this.#pos = pos;
  }

  #string(text: string): void {
    // Short ASCII strings (keys, names, ids) are copied here: a call into Buffer's UTF-8 writer costs more than
    // the loop.
    if (text.length < ASCII_LOOP_MAX && this.#ascii(text)) return;
    // Short strings: room for 3 bytes per UTF-16 unit, so one pass writes them; longer ones measure first.
    if (text.length < 32) {
      this.#ensure(1 + text.length * 3);
      const written = this.#slab.write(text, this.#pos + 1, 'utf8');
      if (written < 32) {
        this.#slab[this.#pos] = 0xa0 | written;
        this.#pos += 1 + written;
        return;
      }
    }
    const length = Buffer.byteLength(text, 'utf8');
    this.#ensure(5 + length);
    const slab = this.#slab;
    if (length < 32) {
      slab[this.#pos++] = 0xa0 | length;
    } else if (length < 0x100) {
      slab[this.#pos++] = 0xd9;
      slab[this.#pos++] = length;
    } else if (length < 0x10000) {
      slab[this.#pos++] = 0xda;
      slab.writeUInt16BE(length, this.#pos);
      this.#pos += 2;
    } else {
      slab[this.#pos++] = 0xdb;
      slab.writeUInt32BE(length, this.#pos);
      this.#pos += 4;
    }
    this.#pos += slab.write(text, this.#pos, 'utf8');
  }

  // Writes `text` as a fixstr or str8 if it is all ASCII; false, having written nothing, if it is not.
  #ascii(text: string): boolean {
    const length = text.length;
    this.#ensure(2 + length);
    const slab = this.#slab;
    const head = this.#pos;
    let pos = head + (length < 32 ? 1 : 2);
    for (let i = 0; i < length; i++) {
      const unit = text.charCodeAt(i);
      if (unit >= 0x80) return false;
      slab[pos++] = unit;
    }
    if (length < 32) {
      slab[head] = 0xa0 | length;
    } else {
      slab[head] = 0xd9;
      slab[head + 1] = length;
    }
    this.#pos = pos;
    return true;
  }

  #bytes(data: Uint8Array): void {
    const length = data.length;
    this.#ensure(length >= ZERO_COPY_BYTES ? 5 : 5 + length);
    const slab = this.#slab;
    if (length < 0x100) {
      slab[this.#pos++] = 0xc4;
      slab[this.#pos++] = length;
    } else if (length < 0x10000) {
      slab[this.#pos++] = 0xc5;
      slab.writeUInt16BE(length, this.#pos);
      this.#pos += 2;
    } else {
      slab[this.#pos++] = 0xc6;
      slab.writeUInt32BE(length, this.#pos);
      this.#pos += 4;
    }
    if (length >= ZERO_COPY_BYTES) {
      this.#cutAround(data);
      return;
    }
    slab.set(data, this.#pos);
    this.#pos += length;
  }

  // One value, at nesting level 2 of the message: a plain object of scalars is written here, anything deeper
  // through msgpackr.
  #value(value: unknown): void {
    if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array) && this.#flatObject(value)) return;
    this.#scalar(value);
  }

  // A scalar, string or byte array; anything else through msgpackr.
  #scalar(value: unknown): void {
    this.#ensure(9);
    this.#items++;
    switch (typeof value) {
      case 'string':
        this.#string(value);
        return;
      case 'boolean':
        this.#byte(value ? 0xc3 : 0xc2);
        return;
      case 'undefined':
        this.#byte(0xc0);
        return;
      case 'number':
        this.#number(value);
        return;
      case 'object':
        if (value === null) {
          this.#byte(0xc0);
          return;
        }
        // Plain byte arrays only: other typed arrays are msgpackr's business.
        if (value instanceof Uint8Array && (value.constructor === Uint8Array || value.constructor === Buffer)) {
          this.#bytes(value);
          return;
        }
        break;
    }
    this.#packed(value);
  }

  /**
   * Writes a plain object whose values are all scalars, strings or small byte arrays, as msgpackr would with this
   * package's options: own enumerable string keys in their order, keys holding undefined left out. Returns false,
   * having written nothing, for any other object. One pass, each property read once (a getter may answer
   * differently the next time): the map header is written last, and a value it cannot take rewinds the message to
   * where the object began.
   */
  #flatObject(value: object): boolean {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) return false;
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    const length = keys.length;
    if (length > FLAT_OBJECT_MAX_KEYS) return false;
    // Offsets from the message's start: #ensure may move the message to a new slab.
    this.#ensure(1);
    const header = this.#pos - this.#start;
    const itemsBefore = this.#items;
    this.#pos++;
    let count = 0;
    for (let i = 0; i < length; i++) {
      const key = keys[i]!;
      const item = record[key];
      if (item === undefined) continue;
      // Large byte arrays are cut out of the slab (no rewinding past that), and nested values are msgpackr's.
      if (!isScalar(item) || (item instanceof Uint8Array && item.length >= ZERO_COPY_BYTES)) {
        this.#pos = this.#start + header;
        this.#items = itemsBefore;
        return false;
      }
      count++;
      this.#string(key);
      this.#scalar(item);
    }
    // The map, and a key and a value per entry.
    this.#items = itemsBefore + 1 + 2 * count;
    if (count < 16) {
      this.#slab[this.#start + header] = 0x80 | count;
      return true;
    }
    // 16 to 32 entries: a map16 header, 2 bytes longer than the place kept for it.
    this.#ensure(2);
    const at = this.#start + header;
    this.#slab.copyWithin(at + 3, at + 1, this.#pos);
    this.#slab[at] = 0xde;
    this.#slab[at + 1] = 0;
    this.#slab[at + 2] = count;
    this.#pos += 2;
    return true;
  }

  // Integers in their smallest integer form (a peer reading an int field must not get a float), others float 64.
  #number(n: number): void {
    const slab = this.#slab;
    if (Number.isInteger(n)) {
      if (n >= 0 && n <= 0xffff_ffff) {
        this.#uint(n);
        return;
      }
      if (n >= -32 && n < 0) {
        slab[this.#pos++] = n & 0xff;
        return;
      }
      if (n >= -0x8000_0000 && n < 0) {
        slab[this.#pos++] = 0xd2;
        slab.writeInt32BE(n, this.#pos);
        this.#pos += 4;
        return;
      }
      // 64-bit integers (and unsafe ones) keep msgpackr's encoding.
      this.#packed(n);
      return;
    }
    slab[this.#pos++] = 0xcb;
    slab.writeDoubleBE(n, this.#pos);
    this.#pos += 8;
  }

  // Anything else: msgpackr packs it (throwing for what MessagePack cannot hold) and the bytes are copied in, unless
  // they are large: then msgpackr's own buffer becomes a part of the message. msgpackr never writes to bytes it has
  // returned (each pack starts past the last one), and copying 64 KiB strings again was a tenth of the client's time.
  #packed(value: unknown): void {
    this.#flat = false;
    const packed = this.#packr.pack(value);
    if (packed.length >= ZERO_COPY_BYTES) {
      this.#cutAround(packed);
      return;
    }
    this.#ensure(packed.length);
    this.#slab.set(packed, this.#pos);
    this.#pos += packed.length;
  }
}

// What #scalar writes itself: nil, booleans, numbers, strings and plain byte arrays (numbers msgpackr must write,
// 64-bit integers, go to it from there).
function isScalar(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return true;
    case 'object':
      return value === null || (value instanceof Uint8Array && (value.constructor === Uint8Array || value.constructor === Buffer));
    default:
      return false;
  }
}
