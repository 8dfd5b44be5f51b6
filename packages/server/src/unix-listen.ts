/**
 * Listening on a unix socket path: a stale socket file left by a process that died is removed, but one another
 * process is serving, or a file that is not a socket, is never touched; after listening the file gets the mode
 * asked for. Node's listen(path) fails with EADDRINUSE on any existing file, stale or not.
 */
import { chmod, lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { RpcError } from '@tunnelrpc/protocol';

/** UnixListenTarget is where listen() takes a unix socket: the path and its file mode. */
export interface UnixListenTarget {
  /** The socket file to create. */
  path: string;
  /**
   * File mode of the socket, which decides who may connect (write permission). Default 0o600: the owner only;
   * 0o660 lets the group in. Range 0 … 0o777.
   */
  mode?: number;
}

/** DEFAULT_SOCKET_MODE lets only the owner connect. */
export const DEFAULT_SOCKET_MODE = 0o600;

/** checkUnixTarget validates the target, throwing INVALID_ARGUMENT naming the bad field. @internal */
export function checkUnixTarget(target: UnixListenTarget): { path: string; mode: number } {
  if (typeof target.path !== 'string' || target.path.length === 0 || target.path.includes('\0')) {
    throw new RpcError('INVALID_ARGUMENT', 'listen({ path }) needs a non-empty socket file path without NUL bytes');
  }
  const mode = target.mode ?? DEFAULT_SOCKET_MODE;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new RpcError('INVALID_ARGUMENT', `listen({ mode }) must be a file mode from 0 to 0o777 such as 0o660; got ${String(target.mode)}`);
  }
  return { path: target.path, mode };
}

/**
 * clearStaleSocket makes `path` free to listen on: nothing there, or a socket file nobody answers on (removed).
 * Rejects FAILED_PRECONDITION when another process serves it, or when the path is not a socket. @internal
 */
export async function clearStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new RpcError('UNAVAILABLE', `cannot listen on ${path}: ${(error as Error).message}`, undefined, { cause: error });
  }
  if (!isSocket) throw new RpcError('FAILED_PRECONDITION', `cannot listen on ${path}: a file that is not a socket is there; it was left alone. Remove it or choose another path`);
  if (await answers(path)) {
    throw new RpcError('FAILED_PRECONDITION', `cannot listen on ${path}: another process is serving that socket; it was left alone. Stop that process or choose another path`);
  }
  await unlink(path).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new RpcError('UNAVAILABLE', `cannot remove the stale socket ${path}: ${(error as Error).message}`, undefined, { cause: error });
  });
}

/** setSocketMode gives the socket file its mode once the server listens. @internal */
export async function setSocketMode(path: string, mode: number): Promise<void> {
  await chmod(path, mode);
}

// Whether something accepts connections on the socket (ECONNREFUSED: a stale file from a dead process).
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
