/**
 * A validating walk over one MessagePack value that runs before msgpackr sees the bytes (SECURITY.md, "Guards").
 * It allocates nothing per value and never recurses, so hostile input costs one linear pass:
 * - depth <= maxDepth and values <= maxItemsPerFrame (an item cap is what bounds the decoded heap);
 * - only the timestamp extension (-1) in its three standard forms; every other extension is refused, including
 *   msgpackr's record (0x72), structured-clone (0x69/0x70) and class extensions that msgpackr cannot turn off;
 * - the never-used byte 0xc1, declared lengths past the end, and trailing bytes are refused;
 * - map keys are scalars (no arrays, maps or extensions as keys).
 */
import { RpcError, protocolViolation } from './errors.js';
import type { DecodeLimits } from './limits.js';

const TIMESTAMP_TYPE = 0xff; // extension type -1 as an unsigned byte
const NANOS_PER_SECOND = 1_000_000_000;
const MAX_DATE_MS = 8.64e15;
// Shared scan state: a scan is synchronous and never re-entered, and this runs for every frame, so nothing is
// allocated per scan. remaining[d]: values still to read in the container open at depth d; isMap[d]: that
// container is a map.
// Counts fit 32 bits: a container's count is checked against the bytes left, and a frame is under 2^32 bytes.
let scratchRemaining = new Uint32Array(33);
let scratchIsMap = new Uint8Array(33);
let scanDepth = 0;
let scanItems = 0;
let scanLargestMap = 0;
// Bytes of a str, bin or extension body still to skip when a scan of parts ends a part inside one.
let scanSkip = 0;

/** TOP_ELEMENTS is how many element offsets of the message array a scan records (see elementOffset). */
const TOP_ELEMENTS = 6;
const elementAt = new Int32Array(TOP_ELEMENTS);
let elementCount = 0;

/** ScanStats receives what a scan measured beyond the value count. */
export interface ScanStats {
  /** Entries (key-value pairs) of the largest map in the value; 0 when it holds none. */
  largestMap: number;
}

type ScanLimits = Pick<DecodeLimits, 'maxDepth' | 'maxItemsPerFrame'>;

/**
 * scanMessagePack checks that `buf` holds exactly one standard MessagePack value within the limits, and returns
 * how many values it holds. Throws RpcError: RESOURCE_EXHAUSTED over maxItemsPerFrame, INTERNAL (a protocol
 * violation) for anything else. Messages never quote the peer's bytes.
 */
export function scanMessagePack(buf: Uint8Array, limits: ScanLimits, stats?: ScanStats): number {
  return scanFrame(buf, 0, buf.length, limits, stats);
}

/**
 * scanFrame is scanMessagePack over `buf[start, end)`, so that a frame is checked where it lies in a received
 * chunk. It also records where the first elements of a top-level array start: elementOffset(i) after it. @internal
 */
export function scanFrame(buf: Uint8Array, start: number, end: number, limits: ScanLimits, stats?: ScanStats): number {
  beginScan(limits);
  const pos = scanRange(buf, start, end, limits, true);
  return endScan(pos, end, stats);
}

/** elementOffset is where element i (0-based) of the array the last scanFrame read starts. @internal */
export function elementOffset(i: number): number {
  return elementAt[i]!;
}

/**
 * scanParts checks a payload given in parts (PayloadParts) without joining them: a part may begin or end inside a
 * str or bin body, as the envelope encoder cuts around large byte arrays. Only when a value's header is split
 * across parts are the parts joined for the scan. Same result and errors as scanMessagePack on the joined bytes.
 */
export function scanParts(parts: readonly Uint8Array[], limits: ScanLimits): number {
  beginScan(limits);
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    let pos = 0;
    if (scanSkip > 0) {
      const skipped = Math.min(scanSkip, part.length);
      scanSkip -= skipped;
      pos = skipped;
    }
    const last = i === parts.length - 1;
    if (pos === part.length && !last) continue;
    pos = scanRange(part, pos, part.length, limits, last);
    if (last) return endScan(pos, part.length);
    // A header split across parts, or bytes left after the value: the joined scan decides, with its own words.
    if (pos < part.length) return scanMessagePack(Buffer.concat(parts as Uint8Array[]), limits);
  }
  return endScan(0, 0);
}

function beginScan(limits: ScanLimits): void {
  if (scratchRemaining.length <= limits.maxDepth) {
    scratchRemaining = new Uint32Array(limits.maxDepth + 1);
    scratchIsMap = new Uint8Array(limits.maxDepth + 1);
  }
  scratchRemaining[0] = 1;
  scratchIsMap[0] = 0;
  scanDepth = 0;
  scanItems = 0;
  scanLargestMap = 0;
  scanSkip = 0;
  elementCount = 0;
}

function endScan(pos: number, end: number, stats?: ScanStats): number {
  if (scanSkip > 0 || scanDepth > 0 || scratchRemaining[0] !== 0) throw truncated();
  if (pos !== end) throw protocolViolation(`${end - pos} bytes left over after the MessagePack value; a frame holds exactly one`);
  if (stats !== undefined) stats.largestMap = scanLargestMap;
  return scanItems;
}

// Walks buf[pos, end) on from the shared state, and returns where it stopped: at the end of the value, or at `end`.
// A header or length past `end` is truncation when `final`; otherwise the walk returns -1 (a body past `end` is
// left in scanSkip).
function scanRange(buf: Uint8Array, pos: number, end: number, limits: ScanLimits, final: boolean): number {
  const { maxDepth, maxItemsPerFrame } = limits;
  const remaining = scratchRemaining;
  const isMap = scratchIsMap;
  let depth = scanDepth;
  let items = scanItems;
  let largestMap = scanLargestMap;

  for (;;) {
    while (depth > 0 && remaining[depth] === 0) depth--;
    if (depth === 0 && remaining[0] === 0) break;
    if (pos >= end && !final) break;
    const isKey = isMap[depth] === 1 && (remaining[depth]! & 1) === 0;
    if (depth === 1 && elementCount < TOP_ELEMENTS) elementAt[elementCount++] = pos;
    remaining[depth]!--;
    if (++items > maxItemsPerFrame) throw tooManyItems(maxItemsPerFrame);
    if (pos >= end) throw truncated();
    const b = buf[pos++]!;
    // The one-byte forms that make up most of a message (fixints, short strings) skip the general decoding below.
    if (b <= 0x7f || b >= 0xe0) continue;
    if (b >= 0xa0 && b <= 0xbf) {
      const after = pos + (b & 0x1f);
      if (after <= end) {
        pos = after;
        continue;
      }
    }
    let children = -1; // >= 0 when b opens a container
    let map = false;
    let skip = 0;
    let need = 0; // header bytes after b
    if (b <= 0x8f) {
      children = b & 0x0f;
      map = true;
    } else if (b <= 0x9f) {
      children = b & 0x0f;
    } else if (b <= 0xbf) {
      skip = b & 0x1f;
    } else {
      switch (b) {
        case 0xc0: case 0xc2: case 0xc3:
          break;
        case 0xc1:
          throw protocolViolation('the never-used MessagePack byte 0xc1');
        case 0xc4: case 0xd9:
          need = 1; break;
        case 0xc5: case 0xda: case 0xdc: case 0xde:
          need = 2; break;
        case 0xc6: case 0xdb: case 0xdd: case 0xdf:
          need = 4; break;
        case 0xca: case 0xce: case 0xd2:
          skip = 4; break;
        case 0xcb: case 0xcf: case 0xd3:
          skip = 8; break;
        case 0xcc: case 0xd0:
          skip = 1; break;
        case 0xcd: case 0xd1:
          skip = 2; break;
        case 0xd6:
          need = 5; break;
        case 0xd7:
          need = 9; break;
        case 0xc7:
          need = 2; break;
        case 0xc8: case 0xc9: case 0xd4: case 0xd5: case 0xd8: {
          const typeAt = b === 0xc8 ? pos + 2 : b === 0xc9 ? pos + 4 : pos;
          if (typeAt >= end && !final) {
            scanDepth = depth;
            return -1;
          }
          if (typeAt < end && buf[typeAt] === TIMESTAMP_TYPE) throw protocolViolation('a timestamp extension (-1) must hold 4, 8 or 12 bytes');
          throw extensionRefused(typeAt < end ? buf[typeAt] : undefined);
        }
      }
    }
    if (need > 0) {
      if (pos + need > end || (b === 0xc7 && buf[pos] === 12 && pos + 14 > end)) {
        if (final) throw truncated();
        // A header split across parts: the caller joins them.
        scanDepth = depth;
        return -1;
      }
      switch (b) {
        case 0xc4: case 0xd9: skip = buf[pos]!; pos += 1; break;
        case 0xc5: case 0xda: skip = u16(buf, pos); pos += 2; break;
        case 0xc6: case 0xdb: skip = u32(buf, pos); pos += 4; break;
        case 0xdc: children = u16(buf, pos); pos += 2; break;
        case 0xdd: children = u32(buf, pos); pos += 4; break;
        case 0xde: children = u16(buf, pos); pos += 2; map = true; break;
        case 0xdf: children = u32(buf, pos); pos += 4; map = true; break;
        case 0xd6: checkTimestamp(buf, pos, 4); skip = 5; break;
        case 0xd7: checkTimestamp(buf, pos, 8); skip = 9; break;
        case 0xc7:
          if (buf[pos] !== 12) {
            if (buf[pos + 1] === TIMESTAMP_TYPE) throw protocolViolation('a timestamp extension (-1) must hold 4, 8 or 12 bytes');
            throw extensionRefused(buf[pos + 1]);
          }
          checkTimestamp(buf, pos + 1, 12);
          skip = 14;
          break;
      }
    }
    if (skip > 0) {
      if (pos + skip > end) {
        if (final) throw truncated();
        // The body goes on in the next part.
        scanSkip = pos + skip - end;
        pos = end;
        break;
      }
      pos += skip;
    }
    if (children >= 0) {
      if (isKey) throw protocolViolation('a map key is an array or a map; keys must be scalars (strings or integers)');
      // The container read at stack depth d sits at nesting level d + 1 (the message array is level 1).
      if (depth + 1 > maxDepth) throw protocolViolation(`MessagePack nesting deeper than maxDepth ${maxDepth}`, { maxDepth });
      const count = map ? children * 2 : children;
      // Each value takes at least one byte: a count beyond the bytes left is a lie, refused before any allocation.
      // Over parts, later parts may hold the values: the caller joins them to decide.
      if (count > end - pos) {
        if (final) throw protocolViolation('a MessagePack array or map declares more values than the frame holds');
        scanDepth = depth;
        return -1;
      }
      if (map && children > largestMap) largestMap = children;
      if (count > 0) {
        depth++;
        remaining[depth] = count;
        isMap[depth] = map ? 1 : 0;
      }
    } else if (isKey && (b === 0xd6 || b === 0xd7 || b === 0xc7)) {
      throw protocolViolation('a map key is an extension value; keys must be scalars (strings or integers)');
    }
  }
  scanDepth = depth;
  scanItems = items;
  scanLargestMap = largestMap;
  return pos;
}

function tooManyItems(maxItemsPerFrame: number): RpcError {
  return new RpcError(
    'RESOURCE_EXHAUSTED',
    `frame holds more than maxItemsPerFrame ${maxItemsPerFrame} MessagePack values; ` +
      'send bulk data as bin or str, or raise maxItemsPerFrame on the receiving peer',
    { maxItemsPerFrame },
  );
}

function truncated(): RpcError {
  return protocolViolation('truncated MessagePack value: a length runs past the end of the frame');
}

function u16(buf: Uint8Array, at: number): number {
  return (buf[at]! << 8) | buf[at + 1]!;
}

function u32(buf: Uint8Array, at: number): number {
  return buf[at]! * 0x1000000 + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!);
}

function extensionRefused(type: number | undefined): RpcError {
  const signed = type === undefined ? 'unknown' : String(type > 127 ? type - 256 : type);
  return protocolViolation(`MessagePack extension type ${signed} is not allowed; only the timestamp extension (-1) is`);
}

// Timestamps (extension -1) in their three standard forms; an out-of-range nanosecond field would decode as an
// Invalid Date, so it is refused here. `at` points at the type byte.
function checkTimestamp(buf: Uint8Array, at: number, length: 4 | 8 | 12): void {
  if (buf[at] !== TIMESTAMP_TYPE) throw extensionRefused(buf[at]);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (length === 8) {
    if (view.getUint32(at + 1) >>> 2 >= NANOS_PER_SECOND) throw badTimestamp();
  } else if (length === 12) {
    if (view.getUint32(at + 1) >= NANOS_PER_SECOND) throw badTimestamp();
    // JavaScript Dates end at +-8.64e15 ms; a 96-bit timestamp past that would decode as an Invalid Date.
    const ms = Number(view.getBigInt64(at + 5)) * 1000 + view.getUint32(at + 1) / 1e6;
    if (!(Math.abs(ms) <= MAX_DATE_MS)) throw badTimestamp();
  }
}

function badTimestamp(): RpcError {
  return protocolViolation('timestamp extension out of range (nanoseconds of 1e9 or more, or beyond the Date range)');
}
