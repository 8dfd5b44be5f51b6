/**
 * Peer credentials of a unix socket tunnel: the uid, gid and pid of the connecting process, read with getsockopt
 * SO_PEERCRED (Linux). Node has no API for it, so this calls libc through koffi, an optional peer dependency:
 * without koffi, or on another platform, or on a TCP socket, there are no credentials and nothing fails.
 */
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import type { GetSockOpt } from '@tunnelrpc/protocol/internal';

/** PeerCredentials is the process on the other end of a unix socket, as the kernel saw it at connect(). */
export interface PeerCredentials {
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
}

// Linux <sys/socket.h>: SOL_SOCKET 1, SO_PEERCRED 17; struct ucred { pid_t pid; uid_t uid; gid_t gid; } (12 bytes).
const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const UCRED_SIZE = 12;

// undefined: not tried yet; null: unavailable (not Linux, no koffi, no libc.so.6).
let getsockopt: GetSockOpt | null | undefined;

/**
 * loadGetsockopt binds libc's getsockopt through koffi once; null where that cannot be done. TCP_INFO (peer.ts) uses
 * it too. The client binds its own in its tcp-info.ts: koffi is an optional peer of each package, so each requires it
 * from its own location, and the one package they share (protocol) loads no native code.
 * @internal
 */
export function loadGetsockopt(): GetSockOpt | null {
  if (getsockopt !== undefined) return getsockopt;
  getsockopt = null;
  if (process.platform !== 'linux') return null;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as { load(path: string): { func(signature: string): GetSockOpt } };
    getsockopt = koffi.load('libc.so.6').func('int getsockopt(int fd, int level, int name, void *value, void *length)');
  } catch {
    // koffi is optional: without it unix peers simply have no credentials, and TCP tunnels no TCP_INFO.
  }
  return getsockopt;
}

/** peerCredentialsAvailable tells whether credentials can be read here (Linux with koffi installed). @internal */
export function peerCredentialsAvailable(): boolean {
  return loadGetsockopt() !== null;
}

/** peerCredentialsOf reads SO_PEERCRED from a unix socket, or returns undefined where it cannot. @internal */
export function peerCredentialsOf(socket: Duplex): PeerCredentials | undefined {
  // Only a Pipe handle (a unix socket) has peer credentials; TCP and TLS sockets have a remote address instead.
  const handle = (socket as unknown as { _handle?: { fd?: unknown; constructor?: { name?: string } } })._handle;
  if (handle === undefined || handle.constructor?.name !== 'Pipe' || typeof handle.fd !== 'number' || handle.fd < 0) return undefined;
  const call = loadGetsockopt();
  if (call === null) return undefined;
  const value = Buffer.alloc(UCRED_SIZE);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(UCRED_SIZE);
  try {
    if (call(handle.fd, SOL_SOCKET, SO_PEERCRED, value, length) !== 0) return undefined;
  } catch {
    return undefined;
  }
  return Object.freeze({ pid: value.readInt32LE(0), uid: value.readUInt32LE(4), gid: value.readUInt32LE(8) });
}
