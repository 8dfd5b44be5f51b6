/**
 * The CONNECT handshake (PROTOCOL.md "Handshake"): the client's request head, the server's one accepted reply,
 * and a parser for the reply head that keeps every byte behind it.
 */
import { RpcError } from './errors.js';

/** DEFAULT_RPC_PATH is the request target of the CONNECT when none is given. */
export const DEFAULT_RPC_PATH = '/_rpc';

/** CONNECTED_RESPONSE is the exact reply of a server that takes the tunnel; frames follow it. */
export const CONNECTED_RESPONSE = 'HTTP/1.0 200 Connected\r\n\r\n';

/**
 * UPGRADE_TOKEN is the protocol name of the Upgrade handshake (PROTOCOL.md 2.5): `Upgrade: tunnelrpc` on the GET
 * and on the 101.
 */
export const UPGRADE_TOKEN = 'tunnelrpc';

/** SWITCHING_RESPONSE is the exact reply of a server that takes a tunnel asked for by Upgrade; frames follow it. */
export const SWITCHING_RESPONSE = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: tunnelrpc\r\nConnection: Upgrade\r\n\r\n';

/**
 * SERVER_MARKER_HEADER is the header a tunnelrpc server puts on every refusal it writes (value: the wire version),
 * so a client can tell the server's refusal from that of a proxy in between (PROTOCOL.md 2.3).
 */
export const SERVER_MARKER_HEADER = 'Tunnelrpc-Server';

/** SERVER_MARKER_VALUE is the value of SERVER_MARKER_HEADER. */
export const SERVER_MARKER_VALUE = 'wire-v1';

/** DEFAULT_MAX_HEAD_SIZE caps the reply head a client reads: 8 KiB. */
export const DEFAULT_MAX_HEAD_SIZE = 8 * 1024;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** encodeConnectRequest builds `CONNECT <path> HTTP/1.0` with Host and the given headers. */
export function encodeConnectRequest(path: string, host: string, headers: Readonly<Record<string, string>> = {}): Buffer {
  // Visible ASCII only: anything else could end the request line early (latin1 keeps only a char's low byte).
  if (!/^\/[\x21-\x7e]*$/.test(path)) {
    throw new RpcError('INVALID_ARGUMENT', `RPC path ${JSON.stringify(path)} must start with "/" and hold only visible ASCII (no spaces or controls)`);
  }
  if (!/^[\x21-\x7e]+$/.test(host)) {
    throw new RpcError('INVALID_ARGUMENT', `Host ${JSON.stringify(host)} must be visible ASCII (no spaces or controls)`);
  }
  let head = `CONNECT ${path} HTTP/1.0\r\nHost: ${host}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) {
      throw new RpcError('INVALID_ARGUMENT', `handshake header ${JSON.stringify(name)} has a character HTTP does not allow (CR, LF or a control)`);
    }
    if (name.toLowerCase() === 'host') continue;
    head += `${name}: ${value}\r\n`;
  }
  return Buffer.from(`${head}\r\n`, 'latin1');
}

/** encodeUpgradeRequest builds `GET <path> HTTP/1.1` with Host, `Connection: Upgrade`, `Upgrade: tunnelrpc` and the headers. */
export function encodeUpgradeRequest(path: string, host: string, headers: Readonly<Record<string, string>> = {}): Buffer {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    // Ours: a caller's Connection or Upgrade would break the handshake that this request is.
    if (lower !== 'connection' && lower !== 'upgrade') kept[name] = value;
  }
  const connect = encodeConnectRequest(path, host, { ...kept, Connection: 'Upgrade', Upgrade: UPGRADE_TOKEN }).toString('latin1');
  return Buffer.from(`GET ${path} HTTP/1.1${connect.slice(connect.indexOf('\r\n'))}`, 'latin1');
}

/**
 * encodeProxyConnectRequest builds `CONNECT host:port HTTP/1.1` for a forward proxy (RFC 9110 section 9.3.6,
 * authority form), with Host and the headers (Proxy-Authorization).
 */
export function encodeProxyConnectRequest(authority: string, headers: Readonly<Record<string, string>> = {}): Buffer {
  if (!/^[\x21-\x7e]+:\d+$/.test(authority)) {
    throw new RpcError('INVALID_ARGUMENT', `proxy CONNECT target ${JSON.stringify(authority)} must be host:port in visible ASCII`);
  }
  const head = encodeConnectRequest('/', authority, headers).toString('latin1');
  return Buffer.from(`CONNECT ${authority} HTTP/1.1${head.slice(head.indexOf('\r\n'))}`, 'latin1');
}

/** isTunnelrpcReply tells whether a reply head carries SERVER_MARKER_HEADER: it came from a tunnelrpc server. */
export function isTunnelrpcReply(head: ResponseHead): boolean {
  return head.headers[SERVER_MARKER_HEADER.toLowerCase()] !== undefined;
}

/** ResponseHead is a parsed HTTP response head plus every byte that came after it. */
export interface ResponseHead {
  status: number;
  reason: string;
  /** Header names in lower case; a repeated header keeps its last value. */
  headers: Record<string, string>;
  /** Bytes after the blank line: frames after a 200, the body after a refusal. */
  rest: Buffer;
}

/**
 * parseResponseHead parses the reply to a CONNECT or an Upgrade, from a server or a forward proxy. Returns undefined while the blank line has not arrived yet.
 * Throws RpcError UNAVAILABLE when the head passes `maxHeadSize` or is not HTTP. Accepts CRLF and bare LF line
 * ends (RFC 9112 section 2.2).
 */
export function parseResponseHead(buf: Buffer, maxHeadSize: number = DEFAULT_MAX_HEAD_SIZE): ResponseHead | undefined {
  const end = findHeadEnd(buf, Math.min(buf.length, maxHeadSize));
  if (end === undefined || end.bodyStart > maxHeadSize) {
    if (buf.length > maxHeadSize) {
      throw new RpcError('UNAVAILABLE', `the server's reply head passed ${maxHeadSize} bytes without ending; this is not a tunnelrpc endpoint`, { maxHeadSize });
    }
    if (buf.length >= 5 && buf.subarray(0, 5).toString('latin1') !== 'HTTP/') throw notHttp();
    return undefined;
  }
  const lines = buf.subarray(0, end.headLength).toString('latin1').split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  const match = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (match === null) throw notHttp();
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(match[1]), reason: match[2] ?? '', headers, rest: buf.subarray(end.bodyStart) };
}

function notHttp(): RpcError {
  return new RpcError('UNAVAILABLE', 'the server did not answer the CONNECT with an HTTP/1.x status line; this is not a tunnelrpc endpoint');
}

// Finds the blank line that ends the head: CRLF CRLF, or bare LF LF (mixed forms included).
function findHeadEnd(buf: Buffer, limit: number): { headLength: number; bodyStart: number } | undefined {
  for (let i = 0; i < limit; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) return { headLength: i, bodyStart: i + 2 };
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return { headLength: i, bodyStart: i + 3 };
  }
  return undefined;
}
