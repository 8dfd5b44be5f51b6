/**
 * The PROXY protocol header a layer-4 balancer (HAProxy `send-proxy`/`send-proxy-v2`, nginx `proxy_protocol on`)
 * puts in front of a connection to pass on the client's address (haproxy doc/proxy-protocol.txt).
 *
 * v1, text, at most 107 bytes including the CRLF:
 *   "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"   (TCP6 likewise; "PROXY UNKNOWN[ ...]\r\n")
 * v2, binary, exactly 16 + length bytes:
 *   0d 0a 0d 0a 00 0d 0a 51 55 49 54 0a   signature (12 bytes)
 *   2c                                     version 2 (high nibble), command 0 LOCAL / 1 PROXY (low nibble)
 *   fp                                     family 0 UNSPEC / 1 INET / 2 INET6 / 3 UNIX, transport 0 / 1 STREAM / 2 DGRAM
 *   LL LL                                  length of what follows, big-endian
 *   INET:  src(4) dst(4) sport(2) dport(2); INET6: src(16) dst(16) sport(2) dport(2); then TLVs (skipped)
 *
 * parseProxyHeader never looks past the header: nothing after the v1 CRLF or the v2 length is read or consumed.
 */
import { RpcError } from './errors.js';

/** PROXY_V1_MAX_LENGTH is the longest v1 header, CRLF included (the spec's 107 bytes). */
export const PROXY_V1_MAX_LENGTH = 107;

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V2_FIXED = 16;

/**
 * ProxyHeader is what a header says. `local` (v2 LOCAL, v1 UNKNOWN, v2 UNSPEC or UNIX addresses: a health check or
 * a connection the balancer made itself) means: use the socket's own address.
 */
export type ProxyHeader =
  | { version: 1 | 2; command: 'local' }
  | {
      version: 1 | 2;
      command: 'proxy';
      family: 'IPv4' | 'IPv6';
      sourceAddress: string;
      sourcePort: number;
      destinationAddress: string;
      destinationPort: number;
    };

/** ParsedProxyHeader is a header and the number of bytes it took; the bytes after them belong to the connection. */
export interface ParsedProxyHeader {
  header: ProxyHeader;
  consumed: number;
}

/**
 * parseProxyHeader reads a v1 or v2 PROXY header from the start of `bytes`. Returns undefined while more bytes are
 * needed, and throws RpcError INVALID_ARGUMENT when the bytes cannot be a valid header (including a v1 line that
 * passes 107 bytes without its CRLF). `consumed` never passes the header's own end.
 */
export function parseProxyHeader(bytes: Uint8Array): ParsedProxyHeader | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length === 0) return undefined;
  if (buf[0] === V2_SIGNATURE[0]) {
    const have = Math.min(buf.length, V2_SIGNATURE.length);
    if (!buf.subarray(0, have).equals(V2_SIGNATURE.subarray(0, have))) throw notProxy();
    return buf.length < V2_FIXED ? undefined : parseV2(buf);
  }
  const have = Math.min(buf.length, V1_PREFIX.length);
  if (!buf.subarray(0, have).equals(V1_PREFIX.subarray(0, have))) throw notProxy();
  return parseV1(buf);
}

function notProxy(): RpcError {
  return invalid('the connection did not start with a PROXY protocol header (v1 "PROXY " or the v2 signature); the listener expects one from every connection');
}

function invalid(message: string): RpcError {
  return new RpcError('INVALID_ARGUMENT', message);
}

function parseV1(buf: Buffer): ParsedProxyHeader | undefined {
  const limit = Math.min(buf.length, PROXY_V1_MAX_LENGTH);
  let lf = -1;
  for (let i = 0; i < limit; i++) {
    if (buf[i] === 0x0a) {
      lf = i;
      break;
    }
  }
  if (lf === -1) {
    if (buf.length >= PROXY_V1_MAX_LENGTH) throw invalid(`PROXY v1 header has no CRLF within ${PROXY_V1_MAX_LENGTH} bytes`);
    return undefined;
  }
  if (lf === 0 || buf[lf - 1] !== 0x0d) throw invalid('PROXY v1 header must end with CRLF');
  const line = buf.subarray(0, lf - 1).toString('latin1');
  if (/[^\x20-\x7e]/.test(line)) throw invalid('PROXY v1 header holds a control or non-ASCII byte');
  const consumed = lf + 1;
  const parts = line.split(' ');
  if (parts[1] === 'UNKNOWN') return { header: { version: 1, command: 'local' }, consumed };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) {
    throw invalid('PROXY v1 header must be "PROXY TCP4|TCP6 src dst sport dport" or "PROXY UNKNOWN"');
  }
  const family = parts[1] === 'TCP4' ? 'IPv4' : 'IPv6';
  const check = family === 'IPv4' ? isIpv4Text : isIpv6Text;
  const [, , source, destination, sourcePort, destinationPort] = parts as [string, string, string, string, string, string];
  if (!check(source) || !check(destination)) throw invalid(`PROXY v1 ${parts[1]} header has an address that is not ${family}`);
  return {
    header: {
      version: 1,
      command: 'proxy',
      family,
      sourceAddress: family === 'IPv6' ? source.toLowerCase() : source,
      sourcePort: portText(sourcePort),
      destinationAddress: family === 'IPv6' ? destination.toLowerCase() : destination,
      destinationPort: portText(destinationPort),
    },
    consumed,
  };
}

function isIpv4Text(text: string): boolean {
  const octets = text.split('.');
  return octets.length === 4 && octets.every((octet) => /^(0|[1-9]\d{0,2})$/.test(octet) && Number(octet) <= 255);
}

// Text form only (hex groups, "::" at most once, an optional IPv4 tail); the v1 sender is a trusted balancer.
function isIpv6Text(text: string): boolean {
  if (text.length < 2 || text.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(text)) return false;
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const groups = halves.flatMap((half) => (half === '' ? [] : half.split(':')));
  const last = groups[groups.length - 1] ?? '';
  const v4 = last.includes('.');
  if (v4 && !isIpv4Text(last)) return false;
  const hexGroups = v4 ? groups.slice(0, -1) : groups;
  if (!hexGroups.every((group) => /^[0-9A-Fa-f]{1,4}$/.test(group))) return false;
  const count = hexGroups.length + (v4 ? 2 : 0);
  return halves.length === 2 ? count < 8 : count === 8;
}

function portText(text: string): number {
  if (!/^(0|[1-9]\d{0,4})$/.test(text) || Number(text) > 65535) throw invalid('PROXY v1 header has a port that is not 0 … 65535');
  return Number(text);
}

function parseV2(buf: Buffer): ParsedProxyHeader | undefined {
  const versionCommand = buf[12]!;
  if (versionCommand >> 4 !== 2) throw invalid(`PROXY v2 header has version ${versionCommand >> 4}; only 2 is defined`);
  const command = versionCommand & 0x0f;
  if (command > 1) throw invalid(`PROXY v2 header has command ${command}; only LOCAL (0) and PROXY (1) are defined`);
  const familyByte = buf[13]!;
  const length = buf.readUInt16BE(14);
  const consumed = V2_FIXED + length;
  if (buf.length < consumed) return undefined;
  if (command === 0) return { header: { version: 2, command: 'local' }, consumed };
  const family = familyByte >> 4;
  const transport = familyByte & 0x0f;
  if (family > 3 || transport > 2) throw invalid(`PROXY v2 header has an unknown address family or transport (0x${familyByte.toString(16).padStart(2, '0')})`);
  if (transport === 2) throw invalid('PROXY v2 header describes a datagram (UDP) connection; this listener serves TCP');
  if (family === 0 || family === 3) return { header: { version: 2, command: 'local' }, consumed };
  const size = family === 1 ? 12 : 36;
  if (length < size) throw invalid(`PROXY v2 header's length ${length} is too short for its ${family === 1 ? 'IPv4' : 'IPv6'} addresses (${size} bytes)`);
  const body = buf.subarray(V2_FIXED, V2_FIXED + size);
  const addressLength = family === 1 ? 4 : 16;
  const format = family === 1 ? formatIpv4 : formatIpv6;
  return {
    header: {
      version: 2,
      command: 'proxy',
      family: family === 1 ? 'IPv4' : 'IPv6',
      sourceAddress: format(body.subarray(0, addressLength)),
      destinationAddress: format(body.subarray(addressLength, 2 * addressLength)),
      sourcePort: body.readUInt16BE(2 * addressLength),
      destinationPort: body.readUInt16BE(2 * addressLength + 2),
    },
    consumed,
  };
}

function formatIpv4(bytes: Buffer): string {
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

// RFC 5952, as Node writes remoteAddress: lower case, the longest run of two or more zero groups as "::",
// and an IPv4-mapped address as ::ffff:a.b.c.d.
function formatIpv6(bytes: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) return `::ffff:${formatIpv4(bytes.subarray(12))}`;
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
