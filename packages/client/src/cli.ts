#!/usr/bin/env node
/**
 * `tunnelrpc call URL Service.method [JSON | -d JSON | -d @] [--stdin] [--timeout ms] [-H 'Name: value'] [--upgrade]
 * [--proxy URL]`, `tunnelrpc list URL` and `tunnelrpc describe URL Service.method`: a thin layer over the public API
 * (list and describe call the server's tunnelrpc.Reflection). Exit 0: for call, each stream message as a JSON line on
 * stdout, then the result; for describe, JSON; for list, one method a line. Exit 1: an RPC error, `CODE: message` on
 * stderr. Exit 2: a usage, dial or handshake failure, as a sentence on stderr. -H headers go with the CONNECT and to
 * the handler (meta.headers).
 *
 * The CLI knows no contracts, so every call is opened as a bidirectional stream (PROTOCOL.md 12): a unary method
 * ignores the stream meta and answers; a server stream's messages are printed as they come; a client or bidi stream
 * is fed from standard input (--stdin, one JSON value per line) once the server grants credit, or half-closed at once.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Reflection, RpcError, type MethodDescription } from '@tunnelrpc/protocol';
import { connect, createClient } from './index.js';

const USAGE = `usage: tunnelrpc call URL Service.method [JSON | -d JSON | -d @] [--stdin] [--timeout ms] [-H 'Name: value']... [--upgrade] [--proxy URL]
       tunnelrpc list URL [-H 'Name: value']... [--upgrade] [--proxy URL]
       tunnelrpc describe URL Service.method [-H 'Name: value']... [--upgrade] [--proxy URL]
  URL      http://host:port/_rpc, https://host:port/_rpc, unix:/path/to.sock
  JSON     the params (default: none, sent as nil); -d @ reads them from standard input
  --stdin    feed a client or bidi stream with the JSON values on standard input, one per line
  --timeout  call deadline in ms (default 30000; for a stream, the whole stream)
  -H, --header  a header for the CONNECT and the call, repeatable
  --upgrade  ask for the tunnel with GET + Upgrade: tunnelrpc (passes HAProxy mode http, nginx) instead of CONNECT
  --proxy URL  dial through this forward proxy (http://[user:password@]host:port); default: http_proxy, https_proxy, no_proxy
  list       every service and method the server has (tunnelrpc.Reflection), one a line: name, kind, idempotent
  describe   one method's kind and the JSON Schemas of its params, result and stream messages`;

class UsageError extends Error {}

interface Invocation {
  command: 'call' | 'list' | 'describe';
  url: string;
  method: string;
  /** The params as JSON text, '@' for standard input, or undefined for none. */
  json: string | undefined;
  timeout: number | undefined;
  headers: Record<string, string>;
  stdin: boolean;
  upgrade: boolean;
  proxy: string | undefined;
}

function parseInvocation(argv: string[]): Invocation {
  const { values, positionals } = parseArgs({
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
    },
  });
  if (values.help === true) throw new UsageError('');
  const [command, url, method, positionalJson, ...extra] = positionals;
  let json = positionalJson;
  if (command === 'list') {
    if (url === undefined) throw new UsageError('list needs a URL');
    if (method !== undefined) throw new UsageError(`unexpected arguments after the URL: ${positionals.slice(2).join(' ')}`);
  } else if (command === 'describe') {
    if (url === undefined || method === undefined) throw new UsageError('describe needs a URL and a Service.method');
    if (positionalJson !== undefined) throw new UsageError(`unexpected arguments after the method: ${positionals.slice(3).join(' ')}`);
  } else if (command === 'call') {
    if (url === undefined || method === undefined) throw new UsageError('call needs a URL and a Service.method');
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
    if (!Number.isInteger(timeout) || timeout < 0) throw new UsageError(`--timeout must be a whole number of ms; got ${values.timeout}`);
  }
  const headers: Record<string, string> = {};
  for (const header of values.header ?? []) {
    const colon = header.indexOf(':');
    if (colon <= 0) throw new UsageError(`-H takes 'Name: value'; got ${JSON.stringify(header)}`);
    headers[header.slice(0, colon).trim()] = header.slice(colon + 1).trim();
  }
  return { command, url, method: method ?? '', json, timeout, headers, stdin: values.stdin === true, upgrade: values.upgrade === true, proxy: values.proxy };
}

function parseParams(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch (error) {
    throw new UsageError(`the params are not valid JSON (${(error as Error).message})`);
  }
}

// Standard input to its end, as text: the params of `call -d @`.
async function readStdin(): Promise<string> {
  let text = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) text += chunk as string;
  return text;
}

function findMethod(services: ReadonlyArray<{ name: string; methods: MethodDescription[] }>, path: string): MethodDescription | undefined {
  const dot = path.lastIndexOf('.');
  const service = services.find((each) => each.name === path.slice(0, dot));
  return service?.methods.find((each) => each.name === path.slice(dot + 1));
}

// The messages of --stdin: one JSON value per non-empty line. A line that is not JSON ends the stream (cancelled).
async function* stdinMessages(): AsyncGenerator<unknown> {
  let line = 0;
  for await (const text of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    line++;
    if (text.trim().length === 0) continue;
    try {
      yield JSON.parse(text) as unknown;
    } catch (error) {
      throw new Error(`line ${line} of standard input is not valid JSON (${(error as Error).message})`);
    }
  }
}

// JSON has no bytes or bigints: print bytes as base64 strings and bigints as decimal strings.
function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (typeof item === 'bigint') return item.toString();
    if (item instanceof Uint8Array) return Buffer.from(item).toString('base64');
    if (typeof item === 'object' && item !== null && (item as { type?: unknown }).type === 'Buffer' && Array.isArray((item as { data?: unknown }).data)) {
      return Buffer.from((item as { data: number[] }).data).toString('base64');
    }
    return item;
  }) ?? 'null';
}

async function main(argv: string[]): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseInvocation(argv);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (message.length === 0) {
      process.stdout.write(`${USAGE}\n`); // --help asked for it: not an error
      return 0;
    }
    process.stderr.write(`tunnelrpc: ${message}\n${USAGE}\n`);
    return 2;
  }
  const { command, url, method, json, timeout, headers, stdin, upgrade, proxy } = invocation;
  let params: unknown;
  if (json !== undefined) {
    try {
      params = parseParams(json === '@' ? await readStdin() : json);
    } catch (error) {
      process.stderr.write(`tunnelrpc: ${json === '@' ? 'standard input: ' : ''}${(error as Error).message}\n${USAGE}\n`);
      return 2;
    }
  }
  let client;
  try {
    // One call, one tunnel: a redial in the background could keep the process alive after the answer.
    client = await connect(url, { headers, reconnect: false, handshake: upgrade ? 'upgrade' : 'connect', proxy });
  } catch (error) {
    const rpc = RpcError.from(error, 'UNAVAILABLE');
    process.stderr.write(`tunnelrpc: ${rpc.message} [${rpc.code}]\n`);
    return 2;
  }
  const callHeaders = Object.keys(headers).length > 0 ? headers : undefined;
  try {
    if (command === 'call') {
      const call = client.stream(method, params, 'bidiStream', { timeout, headers: callHeaders }, stdin ? stdinMessages() : []);
      for await (const message of call) process.stdout.write(`${toJson(message)}\n`);
      process.stdout.write(`${toJson(await call.result)}\n`);
      return 0;
    }
    const { services } = await createClient(Reflection, client).list(undefined, { timeout, headers: callHeaders });
    if (command === 'list') {
      const lines = services.flatMap((service) => service.methods.map((each) => `${service.name}.${each.name} ${each.kind}${each.idempotent ? ' idempotent' : ''}`));
      process.stdout.write(lines.map((line) => `${line}\n`).join(''));
      return 0;
    }
    const found = findMethod(services, method);
    if (found === undefined) {
      process.stderr.write(`NOT_FOUND: ${url} has no method ${method}; tunnelrpc list ${url} shows what it has\n`);
      return 1;
    }
    process.stdout.write(`${JSON.stringify({ method, kind: found.kind, idempotent: found.idempotent, params: found.params, result: found.result, clientMessage: found.clientMessage, serverMessage: found.serverMessage, maxTimeout: found.maxTimeout }, null, 2)}\n`);
    return 0;
  } catch (error) {
    const rpc = RpcError.from(error, 'UNKNOWN');
    process.stderr.write(`${rpc.code}: ${rpc.message}\n`);
    return 1;
  } finally {
    await client.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`tunnelrpc: unexpected failure: ${String(error)}\n`);
    process.exitCode = 2;
  },
);
