/**
 * Listening on a unix socket path: a stale socket file left by a process that died is removed, but one another
 * process is serving, or a file that is not a socket, is never touched. Node's listen(path) fails with EADDRINUSE
 * on any existing file, stale or not.
 *
 * The socket is born with its mode and appears at its path already complete: it is bound inside a fresh 0700
 * directory next to the path, with the umask set for that one synchronous bind, then hard-linked into place.
 * Setting the mode after binding would leave a window in which the umask's mode applies (with umask 000 anyone may
 * connect), and chmod(path) follows a symlink someone swapped in after the bind. link() never follows a symlink
 * and never replaces what is at the path: anything that appeared there in the meantime makes listen fail. Where the
 * folder's path is too long to hold the private name within the socket path limit, the socket is bound at its path
 * directly, with the same umask (bind() follows no symlink either).
 */
import { lstat, link, mkdtemp, rm, unlink, chmod } from 'node:fs/promises';
import { connect, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
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

// sun_path holds 108 bytes on Linux and 104 on macOS and the BSDs, the NUL included. libuv cuts a longer path
// without a word, and the socket would appear under another name than the one asked for.
const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;
// The private folder and name beside the path: "<folder>/.trpc-XXXXXX/s" (mkdtemp adds six characters).
const PRIVATE_PREFIX = '.trpc-';
const PRIVATE_EXTRA_BYTES = `/${PRIVATE_PREFIX}XXXXXX/s`.length;

/** UnixSocketFile names the socket file a server created, so close() removes that file and no other. @internal */
export interface UnixSocketFile {
  path: string;
  dev: number;
  ino: number;
}

/** checkUnixTarget validates the target, throwing INVALID_ARGUMENT naming the bad field. @internal */
export function checkUnixTarget(target: UnixListenTarget): { path: string; mode: number } {
  if (typeof target.path !== 'string' || target.path.length === 0 || target.path.includes('\0')) {
    throw new RpcError('INVALID_ARGUMENT', 'listen({ path }) needs a non-empty socket file path without NUL bytes');
  }
  const bytes = Buffer.byteLength(target.path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new RpcError('INVALID_ARGUMENT', `listen({ path }) is ${bytes} bytes; a unix socket path holds at most ${MAX_SOCKET_PATH_BYTES} here, and a longer one would be cut short without a word. Choose a shorter path`);
  }
  const mode = target.mode ?? DEFAULT_SOCKET_MODE;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new RpcError('INVALID_ARGUMENT', `listen({ mode }) must be a file mode from 0 to 0o777 such as 0o660; got ${String(target.mode)}`);
  }
  return { path: target.path, mode };
}

/**
 * bindUnixSocket makes `server` listen on a socket file at `path` with `mode`, created as the file comment above
 * says. Rejects FAILED_PRECONDITION when another process serves the path, when a file that is not a socket is there,
 * or when something appeared at the path while binding; UNAVAILABLE for other file system errors. On rejection
 * the server may be listening on the private path: the caller closes it. @internal
 */
export async function bindUnixSocket(server: Server, path: string, mode: number): Promise<UnixSocketFile> {
  await clearStaleSocket(path);
  if (Buffer.byteLength(dirname(path)) + PRIVATE_EXTRA_BYTES > MAX_SOCKET_PATH_BYTES) {
    if (!isMainThread) {
      throw new RpcError('INVALID_ARGUMENT', `cannot listen on ${path} from a worker thread: its folder's path leaves no room for the private name the socket is created under (the socket path limit is ${MAX_SOCKET_PATH_BYTES} bytes). Choose a shorter folder, or listen from the main thread`);
    }
    return bindInPlace(server, path, mode);
  }
  let privateDir: string;
  try {
    // mkdtemp creates the directory 0700: no other user can reach the socket in it or swap its name.
    privateDir = await mkdtemp(join(dirname(path), PRIVATE_PREFIX));
  } catch (error) {
    throw new RpcError('UNAVAILABLE', `cannot listen on ${path}: cannot create a private directory beside it: ${(error as Error).message}`, undefined, { cause: error });
  }
  try {
    const privatePath = join(privateDir, 's');
    const bornWithMode = await listenWithMode(server, privatePath, mode, path);
    // Worker threads cannot set the umask; the private directory still keeps the name out of anyone else's reach.
    if (!bornWithMode) await chmod(privatePath, mode);
    const { dev, ino } = await lstat(privatePath);
    try {
      await link(privatePath, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new RpcError('FAILED_PRECONDITION', `cannot listen on ${path}: a file appeared there while the socket was being created; it was left alone. Remove it or choose another path`, undefined, { cause: error });
      }
      throw error;
    }
    return { path, dev, ino };
  } catch (error) {
    if (error instanceof RpcError) throw error;
    throw new RpcError('UNAVAILABLE', `cannot listen on ${path}: ${(error as Error).message}`, undefined, { cause: error });
  } finally {
    // The server keeps its socket; only the private name goes. libuv's unlink of that name at close finds nothing.
    await rm(privateDir, { recursive: true, force: true });
  }
}

// For a folder whose path leaves no room for a private name: bind at the path itself, still born with its mode (the
// umask), and bind() never follows a symlink (it fails EADDRINUSE on any file there). The cost: libuv unlinks this
// path at close whatever is there by then.
async function bindInPlace(server: Server, path: string, mode: number): Promise<UnixSocketFile> {
  await listenWithMode(server, path, mode, path);
  try {
    const { dev, ino } = await lstat(path);
    return { path, dev, ino };
  } catch (error) {
    throw new RpcError('UNAVAILABLE', `cannot listen on ${path}: ${(error as Error).message}`, undefined, { cause: error });
  }
}

/** removeSocketFile removes the socket file at its path if it is still the one this server created. @internal */
export async function removeSocketFile(file: UnixSocketFile): Promise<void> {
  try {
    const now = await lstat(file.path);
    if (now.dev === file.dev && now.ino === file.ino) await unlink(file.path);
  } catch {
    // Already gone, or replaced and then removed by someone else: nothing of ours is left.
  }
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

// Binds with the umask that gives the socket exactly `mode`. The bind is synchronous inside listen() when the
// process binds itself (exclusive: a cluster worker would otherwise ask the primary, which binds later under its own
// umask), so no other JavaScript runs while the umask is changed. Resolves whether the umask could be set.
function listenWithMode(server: Server, privatePath: string, mode: number, shownPath: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(new RpcError('UNAVAILABLE', `cannot listen on ${shownPath}: ${error.message}`, undefined, { cause: error }));
    server.once('error', onError);
    let previous: number | undefined;
    try {
      previous = process.umask(~mode & 0o777);
    } catch {
      previous = undefined;
    }
    try {
      server.listen({ path: privatePath, exclusive: true }, () => {
        server.off('error', onError);
        resolve(previous !== undefined);
      });
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
  });
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
