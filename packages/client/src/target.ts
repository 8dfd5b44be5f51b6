/**
 * Parsing of the URLs connect() takes:
 *   http://host:port/path                 TCP
 *   https://host:port/path                TLS
 *   unix:/path/to/socket                  unix socket, RPC path /_rpc
 *   http+unix://%2Fpath%2Fto%2Fsocket/path  unix socket with an RPC path (socket path percent-encoded)
 */
import { RpcError } from '@tunnelrpc/protocol';
import { DEFAULT_RPC_PATH } from '@tunnelrpc/protocol/internal';

/** DialTarget says where and how to dial. @internal */
export type DialTarget =
  // address: the IP a host name resolved to (the pool dials it; TLS still checks the certificate against host).
  | { kind: 'tcp' | 'tls'; host: string; port: number; path: string; hostHeader: string; display: string; address?: string }
  | { kind: 'unix'; socketPath: string; path: string; hostHeader: string; display: string };

/**
 * parseTargets turns what connect() was given (one URL, or a non-empty list of distinct URLs) into DialTargets, or
 * throws INVALID_ARGUMENT saying what is expected: JavaScript callers may pass anything.
 */
export function parseTargets(urls: unknown): DialTarget[] {
  const form = 'pass a URL string such as "http://host:port/_rpc", or a non-empty array of them';
  if (typeof urls === 'string') return [parseTarget(urls)];
  if (!Array.isArray(urls)) {
    throw new RpcError('INVALID_ARGUMENT', `connect() needs a URL or a list of URLs; got ${urls === null ? 'null' : typeof urls}; ${form}`);
  }
  if (urls.length === 0) throw new RpcError('INVALID_ARGUMENT', `connect() got an empty list of URLs; ${form}`);
  const targets: DialTarget[] = [];
  const seen = new Set<string>();
  (urls as unknown[]).forEach((url, index) => {
    if (typeof url !== 'string') {
      throw new RpcError('INVALID_ARGUMENT', `URL ${index} of the list given to connect() is ${url === null ? 'null' : `a ${typeof url}`}, not a string; ${form}`);
    }
    const target = parseTarget(url);
    if (seen.has(target.display)) throw new RpcError('INVALID_ARGUMENT', `connect() got ${target.display} twice; list each endpoint once (use tunnelsPerEndpoint for more tunnels to one)`);
    seen.add(target.display);
    targets.push(target);
  });
  return targets;
}

/** parseTarget turns a connect() URL into a DialTarget, or throws INVALID_ARGUMENT saying what form is expected. */
export function parseTarget(url: string): DialTarget {
  const bad = (why: string): RpcError =>
    new RpcError('INVALID_ARGUMENT', `cannot use ${JSON.stringify(url)} as a tunnelrpc URL: ${why}; write http://host:port/_rpc, https://host:port/_rpc, unix:/path/to.sock or http+unix://%2Fpath%2Fto.sock/_rpc`);
  if (url.startsWith('unix:') && !url.startsWith('unix://')) {
    const socketPath = url.slice('unix:'.length);
    if (socketPath.length === 0) throw bad('the socket path is empty');
    return { kind: 'unix', socketPath, path: DEFAULT_RPC_PATH, hostHeader: 'localhost', display: url };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad('it is not a URL');
  }
  const path = parsed.pathname === '' || parsed.pathname === '/' ? DEFAULT_RPC_PATH : parsed.pathname;
  if (parsed.protocol === 'http+unix:') {
    let socketPath: string;
    try {
      socketPath = decodeURIComponent(parsed.host);
    } catch {
      // decodeURIComponent throws a URIError on a bad escape such as %ZZ; connect() only ever rejects RpcError.
      throw bad('the socket path has a malformed percent escape');
    }
    if (socketPath.length === 0) throw bad('the socket path is empty');
    return { kind: 'unix', socketPath, path, hostHeader: 'localhost', display: url };
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw bad(`the scheme ${parsed.protocol} is not supported`);
  const tls = parsed.protocol === 'https:';
  const port = parsed.port === '' ? (tls ? 443 : 80) : Number(parsed.port);
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  return { kind: tls ? 'tls' : 'tcp', host, port, path, hostHeader: parsed.host, display: `${parsed.protocol}//${parsed.host}${path}` };
}
