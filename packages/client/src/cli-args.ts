/**
 * The tunnelrpc command line: the usage text, the exit codes, and argv parsed into an Invocation. Nothing here
 * dials; a usage error is found before any socket opens.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { ConnectionOptions } from 'node:tls';
import type { ClientOptions } from './options.js';

/** EXIT is every exit code the CLI uses. @internal */
export const EXIT = {
  /** The call answered (or the reader of standard output went away: `| head` is not an error). */
  ok: 0,
  /** The call failed with an RPC error (also a misspelt method and params the method's schema refuses). */
  rpcError: 1,
  /** A usage error, or the tunnel could not be opened (dial, TLS, proxy, handshake refusal); breaking: a module that does not load. */
  failure: 2,
} as const;

/** USAGE is the help text. @internal */
export const USAGE = `usage: tunnelrpc call URL Service.method [JSON | -d JSON | -d @] [--stdin] [options]
       tunnelrpc list URL [options]
       tunnelrpc describe URL Service.method [options]
       tunnelrpc bench URL Service.method [-d JSON] [-c 64] [--duration 10s] [--rps R] [--connections N] [--json] [options]
       tunnelrpc breaking OLD.js NEW.js
  URL      http://host:port/_rpc, https://host:port/_rpc, unix:/path/to.sock
  JSON     the params (default: none, sent as nil); -d @ reads them from standard input
  list       every service and method the server has (tunnelrpc.Reflection), one a line: name, kind, idempotent
  describe   one method's kind and the JSON Schema of its params and result
  bench      load one method: -c calls in flight over --connections tunnels for --duration (or -n calls),
             optionally paced at --rps; prints a latency histogram, calls/s and a count per code
  breaking   compare two versions of a contract module (every defineService export) and list what breaks
             old clients or old servers; exit 1 when something does
options:
  --stdin        feed a client or bidi stream with the JSON values on standard input, one per line
  --timeout ms   call deadline (default 30000; for a stream, the whole stream); 0 means no deadline
  --format F     ndjson (default): each stream message, then the result, one compact JSON line each;
                 json: one indented document: the result, or {"messages": [...], "result": ...} for a stream;
                 errors go to stderr as {"code", "message", "data"}
  --no-validate  send the params without checking them against the method's described schema
  -H, --header 'Name: value'  a header for the CONNECT and the call, repeatable
  --upgrade      ask for the tunnel with GET + Upgrade: tunnelrpc (passes HAProxy mode http, nginx) instead of CONNECT
  --proxy URL    dial through this forward proxy (http://[user:password@]host:port); default: http_proxy, https_proxy, no_proxy
  --cacert FILE  trust the CA certificates in this PEM file for an https:// URL (instead of the system's)
  --cert FILE    present this PEM client certificate (mutual TLS); needs --key
  --key FILE     the PEM private key of --cert
  --insecure, -k  do not verify the server's certificate (testing only)
  -v, --verbose  print the time of each phase on stderr (connect, reflect, first answer, total)
exit codes: 0 the call answered; 1 an RPC error (CODE: message, then data: JSON, on stderr), or breaking
            found a change that breaks old clients; 2 usage error, or the tunnel could not be opened (a sentence
            ending in [CODE] on stderr)`;

/** UsageError is a mistake on the command line: exit 2 with the usage. An empty message asks for --help. @internal */
export class UsageError extends Error {}

/** OutputFormat is --format. @internal */
export type OutputFormat = 'ndjson' | 'json';

/** BenchSettings are the bench subcommand's options. @internal */
export interface BenchSettings {
  concurrency: number;
  /** ms, or undefined when `count` bounds the run. */
  duration: number | undefined;
  count: number | undefined;
  rps: number | undefined;
  connections: number;
  json: boolean;
}

/** Invocation is argv, checked. @internal */
export interface Invocation {
  command: 'call' | 'list' | 'describe' | 'bench' | 'breaking';
  url: string;
  method: string;
  /** The params as JSON text, '@' for standard input, or undefined for none. */
  json: string | undefined;
  /** ms; undefined for the client's default. 0 on the command line becomes the longest deadline a timer can hold. */
  timeout: number | undefined;
  headers: Record<string, string>;
  stdin: boolean;
  upgrade: boolean;
  proxy: string | undefined;
  tls: ConnectionOptions | undefined;
  format: OutputFormat;
  validate: boolean;
  verbose: boolean;
  bench: BenchSettings;
  /** breaking: the two module paths. */
  files: [string, string];
}

// setTimeout's ceiling (about 24.8 days): what "no deadline" becomes, as every call has one.
const LONGEST_TIMEOUT = 2_147_483_647;

/** parseInvocation checks argv; throws UsageError naming the first mistake. @internal */
export function parseInvocation(argv: string[]): Invocation {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        upgrade: { type: 'boolean' },
        proxy: { type: 'string' },
        stdin: { type: 'boolean' },
        timeout: { type: 'string' },
        header: { type: 'string', short: 'H', multiple: true },
        data: { type: 'string', short: 'd' },
        help: { type: 'boolean', short: 'h' },
        format: { type: 'string' },
        'no-validate': { type: 'boolean' },
        cacert: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        insecure: { type: 'boolean', short: 'k' },
        verbose: { type: 'boolean', short: 'v' },
        concurrency: { type: 'string', short: 'c' },
        duration: { type: 'string' },
        number: { type: 'string', short: 'n' },
        rps: { type: 'string' },
        connections: { type: 'string' },
        json: { type: 'boolean' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) throw new UsageError('');
  const [command, url, method, positionalJson, ...extra] = positionals;
  let json = positionalJson;
  if (command === 'breaking') {
    if (url === undefined || method === undefined) throw new UsageError('breaking needs the old and the new contract module');
    if (positionalJson !== undefined) throw new UsageError(`unexpected arguments after the two modules: ${positionals.slice(3).join(' ')}`);
  } else if (command === 'list') {
    if (url === undefined) throw new UsageError('list needs a URL');
    if (method !== undefined) throw new UsageError(`unexpected arguments after the URL: ${positionals.slice(2).join(' ')}`);
  } else if (command === 'describe') {
    if (url === undefined || method === undefined) throw new UsageError('describe needs a URL and a Service.method');
    if (positionalJson !== undefined) throw new UsageError(`unexpected arguments after the method: ${positionals.slice(3).join(' ')}`);
  } else if (command === 'call' || command === 'bench') {
    if (url === undefined || method === undefined) throw new UsageError(`${command} needs a URL and a Service.method`);
    if (extra.length > 0) throw new UsageError(`unexpected arguments after the JSON params: ${extra.join(' ')}`);
    if (values.data !== undefined) {
      if (positionalJson !== undefined) throw new UsageError('give the params once: as JSON after the method, or with -d');
      json = values.data;
    }
    if (json !== undefined && json !== '@') parseParams(json);
    // Standard input can carry the params or the stream's messages, not both.
    if (json === '@' && values.stdin === true) throw new UsageError('-d @ and --stdin both read standard input; give the params inline');
  } else {
    throw new UsageError(command === undefined ? 'missing command' : `unknown command ${JSON.stringify(command)}`);
  }
  let timeout: number | undefined;
  if (values.timeout !== undefined) {
    timeout = Number(values.timeout);
    if (!Number.isInteger(timeout) || timeout < 0) throw new UsageError(`--timeout must be a whole number of ms (0: no deadline); got ${values.timeout}`);
    if (timeout === 0 || timeout > LONGEST_TIMEOUT) timeout = LONGEST_TIMEOUT;
  }
  const headers: Record<string, string> = {};
  for (const header of values.header ?? []) {
    const colon = header.indexOf(':');
    if (colon <= 0) throw new UsageError(`-H takes 'Name: value'; got ${JSON.stringify(header)}`);
    headers[header.slice(0, colon).trim()] = header.slice(colon + 1).trim();
  }
  const format = values.format ?? 'ndjson';
  if (format !== 'ndjson' && format !== 'json') throw new UsageError(`--format takes json or ndjson; got ${JSON.stringify(format)}`);
  return {
    command,
    url,
    method: method ?? '',
    json,
    timeout,
    headers,
    stdin: values.stdin === true,
    upgrade: values.upgrade === true,
    proxy: values.proxy,
    tls: tlsOptions(values),
    format,
    validate: values['no-validate'] !== true,
    verbose: values.verbose === true,
    bench: benchSettings(values),
    files: [url, method ?? ''],
  };
}

/** clientOptions are the connect() options of an invocation. @internal */
export function clientOptions(invocation: Invocation): ClientOptions {
  return {
    headers: invocation.headers,
    // One call, one tunnel: a redial in the background could keep the process alive after the answer.
    reconnect: false,
    handshake: invocation.upgrade ? 'upgrade' : 'connect',
    proxy: invocation.proxy,
    ...(invocation.tls === undefined ? {} : { tls: invocation.tls }),
  };
}

/** parseParams parses JSON params; throws UsageError saying why they are not JSON. @internal */
export function parseParams(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch (error) {
    throw new UsageError(`the params are not valid JSON (${(error as Error).message})`);
  }
}

// --cacert, --cert, --key and --insecure as node:tls options, named as curl and grpcurl name them.
function tlsOptions(values: { cacert?: string; cert?: string; key?: string; insecure?: boolean }): ConnectionOptions | undefined {
  if ((values.cert === undefined) !== (values.key === undefined)) throw new UsageError('--cert and --key go together: the client certificate and its private key');
  const tls: ConnectionOptions = {};
  if (values.cacert !== undefined) tls.ca = readPem('--cacert', values.cacert);
  if (values.cert !== undefined) tls.cert = readPem('--cert', values.cert);
  if (values.key !== undefined) tls.key = readPem('--key', values.key);
  if (values.insecure === true) tls.rejectUnauthorized = false;
  return Object.keys(tls).length === 0 ? undefined : tls;
}

function readPem(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`${flag} ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

function benchSettings(values: { concurrency?: string; duration?: string; number?: string; rps?: string; connections?: string; json?: boolean }): BenchSettings {
  const concurrency = wholeNumber('-c', values.concurrency, 64, 1, 100_000);
  const count = values.number === undefined ? undefined : wholeNumber('-n', values.number, 0, 1, Number.MAX_SAFE_INTEGER);
  const duration = values.duration === undefined ? (count === undefined ? 10_000 : undefined) : parseDuration(values.duration);
  const rps = values.rps === undefined ? undefined : wholeNumber('--rps', values.rps, 0, 1, 10_000_000);
  const connections = wholeNumber('--connections', values.connections, 1, 1, 1024);
  return { concurrency, duration, count, rps, connections, json: values.json === true };
}

function wholeNumber(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) throw new UsageError(`${flag} takes a whole number from ${min} to ${max}; got ${text}`);
  return value;
}

/** parseDuration reads `10s`, `500ms`, `2m` or a bare number of seconds, in ms. @internal */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (match === null) throw new UsageError(`--duration takes a time such as 10s, 500ms or 2m; got ${text}`);
  const unit = match[2] === 'ms' ? 1 : match[2] === 'm' ? 60_000 : 1000;
  const ms = Math.round(Number(match[1]) * unit);
  if (ms < 1 || ms > 86_400_000) throw new UsageError(`--duration must be from 1ms to 24h; got ${text}`);
  return ms;
}
