/**
 * TCP_INFO of a tunnel's socket, read on demand: Node has no API for it, so it goes through the same optional koffi
 * binding of getsockopt as SO_PEERCRED (peer-credentials.ts). Not Linux, no koffi, a unix socket, or a socket
 * already closed: undefined, never a failure.
 */
import { endianness } from 'node:os';
import type { Duplex } from 'node:stream';
import { type TcpInfo } from '@tunnelrpc/protocol';
import { parseTcpInfo } from '@tunnelrpc/protocol/internal';
import { loadGetsockopt } from './peer-credentials.js';

// Linux <netinet/in.h> IPPROTO_TCP 6, <netinet/tcp.h> TCP_INFO 11. The buffer is larger than today's struct: the
// kernel copies min(length, its size) and says how much in `length`.
const IPPROTO_TCP = 6;
const TCP_INFO = 11;
const BUFFER_SIZE = 256;
const LITTLE_ENDIAN = endianness() === 'LE';

/** tcpInfoOf reads TCP_INFO from a tunnel's socket (plain or TLS over TCP), or returns undefined where it cannot. @internal */
export function tcpInfoOf(socket: Duplex): TcpInfo | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: unknown; constructor?: { name?: string } } | null })._handle;
  const kind = handle?.constructor?.name;
  if (handle == null || (kind !== 'TCP' && kind !== 'TLSWrap') || typeof handle.fd !== 'number' || handle.fd < 0) return undefined;
  const call = loadGetsockopt();
  if (call === null) return undefined;
  const value = Buffer.alloc(BUFFER_SIZE);
  const length = Buffer.alloc(4);
  if (LITTLE_ENDIAN) length.writeUInt32LE(BUFFER_SIZE);
  else length.writeUInt32BE(BUFFER_SIZE);
  try {
    if (call(handle.fd, IPPROTO_TCP, TCP_INFO, value, length) !== 0) return undefined;
  } catch {
    return undefined;
  }
  return parseTcpInfo(value, LITTLE_ENDIAN ? length.readUInt32LE(0) : length.readUInt32BE(0), LITTLE_ENDIAN);
}
