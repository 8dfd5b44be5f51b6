#!/usr/bin/env node
/**
 * `tunnelrpc call URL Service.method [JSON] [--stdin] [--timeout ms] [-H 'Name: value'] [--upgrade] [--proxy URL]`: a
 * thin layer over the public API. Exit 0: each stream message as a JSON line on stdout, then the result. Exit 1: an
 * RPC error, `CODE: message` on stderr. Exit 2: a usage, dial or handshake failure, as a sentence on stderr. -H
 * headers go with the CONNECT and to the handler (meta.headers).
 *
 * The CLI knows no contracts, so every call is opened as a bidirectional stream (PROTOCOL.md 12): a unary method
 * ignores the stream meta and answers; a server stream's messages are printed as they come; a client or bidi stream
 * is fed from standard input (--stdin, one JSON value per line) once the server grants credit, or half-closed at once.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { RpcError } from '@tunnelrpc/protocol';
import { connect } from './index.js';

const USAGE = `usage: tunnelrpc call URL Service.method [JSON] [--stdin] [--timeout ms] [-H 'Name: value']... [--upgrade] [--proxy URL]
  URL      http://host:port/_rpc, https://host:port/_rpc, unix:/path/to.sock
  JSON     the params (default: none, sent as nil)
  --stdin    feed a client or bidi stream with the JSON values on standard input, one per line
  --timeout  call deadline in ms (default 30000; for a stream, the whole stream)
  -H, --header  a header for the CONNECT and the call, repeatable
  --upgrade  ask for the tunnel with GET + Upgrade: tunnelrpc (passes HAProxy mode http, nginx) instead of CONNECT
  --proxy URL  dial through this forward proxy (http://[user:password@]host:port); default: http_proxy, https_proxy, no_proxy`;

class UsageError extends Error {}

interface Invocation {
  url: string;
  method: string;
  params: unknown;
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
    options: { upgrade: { type: 'boolean' }, proxy: { type: 'string' }, stdin: { type: 'boolean' }, timeout: { type: 'string' }, header: { type: 'string', short: 'H', multiple: true }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help === true) throw new UsageError('');
  const [command, url, method, json, ...extra] = positionals;
  if (command !== 'call') throw new UsageError(command === undefined ? 'missing command' : `unknown command ${JSON.stringify(command)}`);
  if (url === undefined || method === undefined) throw new UsageError('call needs a URL and a Service.method');
  if (extra.length > 0) throw new UsageError(`unexpected arguments after the JSON params: ${extra.join(' ')}`);
  let params: unknown;
  if (json !== undefined) {
    try {
      params = JSON.parse(json);
    } catch (error) {
      throw new UsageError(`the params are not valid JSON (${(error as Error).message})`);
    }
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
  return { url, method, params, timeout, headers, stdin: values.stdin === true, upgrade: values.upgrade === true, proxy: values.proxy };
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
  const { url, method, params, timeout, headers, stdin, upgrade, proxy } = invocation;
  let client;
  try {
    // One call, one tunnel: a redial in the background could keep the process alive after the answer.
    client = await connect(url, { headers, reconnect: false, handshake: upgrade ? 'upgrade' : 'connect', proxy });
  } catch (error) {
    const rpc = RpcError.from(error, 'UNAVAILABLE');
    process.stderr.write(`tunnelrpc: ${rpc.message} [${rpc.code}]\n`);
    return 2;
  }
  try {
    const call = client.stream(method, params, 'bidiStream', { timeout, headers: Object.keys(headers).length > 0 ? headers : undefined }, stdin ? stdinMessages() : []);
    for await (const message of call) process.stdout.write(`${toJson(message)}\n`);
    process.stdout.write(`${toJson(await call.result)}\n`);
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
