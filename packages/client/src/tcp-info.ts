/**
 * TCP_INFO of a tunnel's socket, read on demand through libc's getsockopt bound with the optional koffi package,
 * as the server reads SO_PEERCRED and TCP_INFO. Not Linux, no koffi, a unix socket, or a socket already closed:
 * undefined, never a failure.
 *
 * The server binds getsockopt the same way in its peer-credentials.ts: koffi is an optional peer of each package, so
 * each requires it from its own location, and the one package they share (protocol) loads no native code.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { type TcpInfo } from '@tunnelrpc/protocol';
import { readTcpInfo, type GetSockOpt } from '@tunnelrpc/protocol/internal';

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
  return readTcpInfo(socket, loadGetsockopt);
}
