/**
 * TCP_INFO of a tunnel's socket, read on demand through libc's getsockopt bound with the optional koffi package,
 * as the server reads SO_PEERCRED and TCP_INFO. Not Linux, no koffi, a unix socket, or a socket already closed:
 * undefined, never a failure.
 */
import { createRequire } from 'node:module';
import { endianness } from 'node:os';
import type { Socket } from 'node:net';
import { type TcpInfo } from '@tunnelrpc/protocol';
import { parseTcpInfo } from '@tunnelrpc/protocol/internal';

type GetSockOpt = (fd: number, level: number, name: number, value: Buffer, length: Buffer) => number;

// Linux <netinet/in.h> IPPROTO_TCP 6, <netinet/tcp.h> TCP_INFO 11. The buffer is larger than today's struct: the
// kernel copies min(length, its size) and says how much in `length`.
const IPPROTO_TCP = 6;
const TCP_INFO = 11;
const BUFFER_SIZE = 256;
const LITTLE_ENDIAN = endianness() === 'LE';

// undefined: not tried yet; null: unavailable (not Linux, no koffi, no libc.so.6).
let getsockopt: GetSockOpt | null | undefined;

function loadGetsockopt(): GetSockOpt | null {
  if (getsockopt !== undefined) return getsockopt;
  getsockopt = null;
  if (process.platform !== 'linux') return null;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as { load(path: string): { func(signature: string): GetSockOpt } };
    getsockopt = koffi.load('libc.so.6').func('int getsockopt(int fd, int level, int name, void *value, void *length)');
  } catch {
    // koffi is optional: without it tunnels simply have no TCP_INFO.
  }
  return getsockopt;
}

/** tcpInfoOf reads TCP_INFO from a tunnel's socket (plain or TLS over TCP), or returns undefined where it cannot. @internal */
export function tcpInfoOf(socket: Socket): TcpInfo | undefined {
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
