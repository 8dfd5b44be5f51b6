/**
 * Which forward proxy, if any, a dial goes through: the `proxy` option, else the environment as undici's
 * EnvHttpProxyAgent reads it (lib/dispatcher/env-http-proxy-agent.js): `http_proxy` then `HTTP_PROXY` for http://
 * targets; `https_proxy` then `HTTPS_PROXY`, falling back to the http proxy, for https:// targets; `no_proxy` then
 * `NO_PROXY` lists hosts reached directly (comma or space separated; `host`, `.suffix`, `*.suffix`, `host:port`,
 * `[v6]:port`; `*` for every host). Lower case wins when both are set, even when it is empty. Pure: the environment
 * is an argument.
 */
import { RpcError } from '@tunnelrpc/protocol';

/** ProxyChoice is a forward proxy to dial through, parsed from its URL. */
export interface ProxyChoice {
  host: string;
  port: number;
  /** `Basic base64(user:pass)` when the URL carries credentials. */
  authorization: string | undefined;
  /** The proxy's URL without credentials, for messages. */
  display: string;
  /** Where the URL came from, for messages: "option proxy", "env https_proxy"… */
  source: string;
}

/** ProxyTarget is what chooseProxy needs of a dial target: https or not, host and port. */
export interface ProxyTarget {
  tls: boolean;
  host: string;
  port: number;
}

/**
 * chooseProxy returns the proxy for `target`, or undefined to dial directly. `option` is ClientOptions.proxy: a URL
 * string always wins (no_proxy does not apply to it), false never proxies, undefined reads `env`. Throws
 * INVALID_ARGUMENT for a proxy URL it cannot use. connect() passes process.env.
 */
export function chooseProxy(target: ProxyTarget, option: string | false | undefined, env: Readonly<Record<string, string | undefined>>): ProxyChoice | undefined {
  if (option === false) return undefined;
  if (option !== undefined) return parseProxyUrl(option, 'option proxy');
  const httpName = env['http_proxy'] !== undefined ? 'http_proxy' : 'HTTP_PROXY';
  const httpsName = env['https_proxy'] !== undefined ? 'https_proxy' : 'HTTPS_PROXY';
  let name = httpName;
  let url = env[httpName];
  if (target.tls && env[httpsName]) {
    name = httpsName;
    url = env[httpsName];
  }
  if (!url) return undefined;
  if (!shouldProxy(target, env['no_proxy'] ?? env['NO_PROXY'] ?? '')) return undefined;
  return parseProxyUrl(url, `env ${name}`);
}

// no_proxy matching, entry by entry, as EnvHttpProxyAgent#shouldProxy.
function shouldProxy(target: ProxyTarget, noProxy: string): boolean {
  const entries = noProxy.split(/[,\s]/).filter((entry) => entry.length > 0);
  if (entries.length === 0) return true;
  if (noProxy.trim() === '*') return false;
  let hostname = target.host.toLowerCase();
  if (hostname.length > 1 && hostname.endsWith('.')) hostname = hostname.slice(0, -1);
  for (const entry of entries) {
    const { host, port } = parseNoProxyEntry(entry);
    if (port !== 0 && port !== target.port) continue;
    if (hostname === host || hostname.endsWith(`.${host}`)) return false;
  }
  return true;
}

function parseNoProxyEntry(entry: string): { host: string; port: number } {
  let host: string;
  let port = 0;
  const v6WithPort = /^\[(.+)\]:(\d+)$/.exec(entry);
  if (v6WithPort !== null) {
    host = v6WithPort[1]!;
    port = Number(v6WithPort[2]);
  } else {
    const unbracketed = entry.replace(/^\[(.+)\]$/, '$1');
    // A bare IPv6 address has several colons: only `name:digits` is a host and a port.
    const hostPort = unbracketed.split(':').length === 2 ? /^(.+):(\d+)$/.exec(unbracketed) : null;
    host = hostPort === null ? unbracketed : hostPort[1]!;
    port = hostPort === null ? 0 : Number(hostPort[2]);
  }
  return { host: host.replace(/^\*?\./, '').replace(/^(.+)\.$/, '$1').toLowerCase(), port };
}

function parseProxyUrl(url: string, source: string): ProxyChoice {
  const bad = (why: string): RpcError =>
    new RpcError('INVALID_ARGUMENT', `cannot use the proxy URL from ${source}: ${why}; write http://host:port or http://user:password@host:port`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad('it is not a URL');
  }
  if (parsed.protocol !== 'http:') throw bad(`the scheme ${parsed.protocol} is not supported (only http:// proxies; the tunnel inside is still TLS for https:// targets)`);
  if (parsed.hostname === '') throw bad('it has no host');
  let authorization: string | undefined;
  if (parsed.username !== '' || parsed.password !== '') {
    let user: string;
    let password: string;
    try {
      user = decodeURIComponent(parsed.username);
      password = decodeURIComponent(parsed.password);
    } catch {
      throw bad('its credentials have a malformed percent escape');
    }
    authorization = `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
  }
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  const port = parsed.port === '' ? 80 : Number(parsed.port);
  return { host, port, authorization, display: `http://${parsed.host}`, source };
}
