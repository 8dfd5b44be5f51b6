#!/usr/bin/env node
/**
 * The tunnelrpc command line: `call`, `list`, `describe`, `bench` and `breaking` (usage and exit codes in
 * cli-args.ts). A thin layer over the public API: list, describe and the checks before a call ask the server's
 * tunnelrpc.Reflection.
 *
 * The CLI knows no contracts, so every call is opened as a bidirectional stream (PROTOCOL.md 12): a unary method
 * ignores the stream meta and answers; a server stream's messages are printed as they come; a client or bidi stream
 * is fed from standard input (--stdin, one JSON value per line) once the server grants credit, or half-closed at once.
 */
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { Reflection, RpcError, type ServiceDescription } from '@tunnelrpc/protocol';
import { EXIT, USAGE, clientOptions, parseInvocation, parseParams, type Invocation } from './cli-args.js';
import { runBench } from './cli-bench.js';
import { runBreaking } from './cli-breaking.js';
import { Output, shownText, toJson } from './cli-output.js';
import { checkParams, findMethod, unknownMethod } from './cli-reflect.js';
import { connect, createClient, type RpcClient } from './index.js';

// Standard input to its end, as text: the params of `call -d @`.
async function readStdin(): Promise<string> {
  let text = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) text += chunk as string;
  return text;
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

function elapsed(since: number): string {
  return `${(performance.now() - since).toFixed(1)} ms`;
}

// The server's services from Reflection, or undefined when it does not serve reflection (or refuses it).
async function reflect(client: RpcClient, invocation: Invocation, output: Output): Promise<readonly ServiceDescription[] | undefined> {
  const started = performance.now();
  try {
    const { services } = await createClient(Reflection, client).list(undefined, { timeout: invocation.timeout, headers: callHeaders(invocation), signal: output.signal });
    if (invocation.verbose) output.note(`reflect ${elapsed(started)} (${services.length} services)`);
    return services;
  } catch (error) {
    if (invocation.verbose) output.note(`reflect ${elapsed(started)}: not available (${shownText(RpcError.from(error).code)}); the params go unchecked`);
    return undefined;
  }
}

function callHeaders(invocation: Invocation): Record<string, string> | undefined {
  return Object.keys(invocation.headers).length > 0 ? invocation.headers : undefined;
}

async function runCall(client: RpcClient, invocation: Invocation, params: unknown, output: Output): Promise<number> {
  const { method, format, verbose } = invocation;
  let kind: string | undefined;
  if (invocation.validate) {
    const services = await reflect(client, invocation, output);
    if (services !== undefined) {
      const found = findMethod(services, method);
      if (found === undefined) throw unknownMethod(services, method, invocation.url);
      kind = found.kind;
      const refused = checkParams(method, found.params, params);
      if (refused !== undefined) throw refused;
    }
  }
  const started = performance.now();
  let first = true;
  const answered = (): void => {
    if (verbose && first) output.note(`first answer ${elapsed(started)} (queue + network + server)`);
    first = false;
  };
  const call = client.stream(method, params, 'bidiStream', { timeout: invocation.timeout, headers: callHeaders(invocation), signal: output.signal }, invocation.stdin ? stdinMessages() : []);
  const messages: unknown[] = [];
  for await (const message of call) {
    answered();
    if (format === 'json') messages.push(message);
    else output.line(toJson(message));
  }
  const result = await call.result;
  answered();
  if (verbose) output.note(`call ${elapsed(started)}`);
  if (format === 'ndjson') output.line(toJson(result));
  else if (messages.length > 0 || kind === 'serverStream' || kind === 'bidiStream') output.line(toJson({ messages, result }, 2));
  else output.line(toJson(result, 2));
  return EXIT.ok;
}

async function runReflection(client: RpcClient, invocation: Invocation, output: Output): Promise<number> {
  const { services } = await createClient(Reflection, client).list(undefined, { timeout: invocation.timeout, headers: callHeaders(invocation), signal: output.signal });
  if (invocation.command === 'list') {
    if (invocation.format === 'json') {
      output.line(toJson(services, 2));
      return EXIT.ok;
    }
    // Names come from the server: escaped, so a name cannot repaint the terminal or forge a line.
    for (const service of services) {
      for (const each of service.methods) output.line(`${shownText(`${service.name}.${each.name}`)} ${shownText(each.kind)}${each.idempotent ? ' idempotent' : ''}`);
    }
    return EXIT.ok;
  }
  const found = findMethod(services, invocation.method);
  if (found === undefined) throw unknownMethod(services, invocation.method, invocation.url);
  output.line(toJson({ method: invocation.method, kind: found.kind, idempotent: found.idempotent, params: found.params, result: found.result, clientMessage: found.clientMessage, serverMessage: found.serverMessage, maxTimeout: found.maxTimeout }, 2));
  return EXIT.ok;
}

async function main(argv: string[]): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseInvocation(argv);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (message.length === 0) {
      process.stdout.write(`${USAGE}\n`); // --help asked for it: not an error
      return EXIT.ok;
    }
    process.stderr.write(`tunnelrpc: ${message}\n${USAGE}\n`);
    return EXIT.failure;
  }
  const output = new Output();
  if (invocation.command === 'breaking') return runBreaking(invocation.files, output);
  let params: unknown;
  if (invocation.json !== undefined) {
    try {
      params = parseParams(invocation.json === '@' ? await readStdin() : invocation.json);
    } catch (error) {
      process.stderr.write(`tunnelrpc: ${invocation.json === '@' ? 'standard input: ' : ''}${(error as Error).message}\n${USAGE}\n`);
      return EXIT.failure;
    }
  }
  if (invocation.command === 'bench') return runBench(invocation, params, output);
  let client: RpcClient;
  const started = performance.now();
  try {
    client = await connect(invocation.url, clientOptions(invocation));
  } catch (error) {
    output.failure(RpcError.from(error, 'UNAVAILABLE'));
    return EXIT.failure;
  }
  if (invocation.verbose) output.note(`connect ${elapsed(started)} (dial + ${invocation.upgrade ? 'Upgrade' : 'CONNECT'} handshake to ${shownText(invocation.url)})`);
  try {
    return invocation.command === 'call' ? await runCall(client, invocation, params, output) : await runReflection(client, invocation, output);
  } catch (error) {
    // The reader of standard output left: the answer has nowhere to go, and that is how `| head` ends a tool.
    if (output.closed) return EXIT.ok;
    output.error(RpcError.from(error, 'UNKNOWN'), invocation.format);
    return EXIT.rpcError;
  } finally {
    await client.close();
    if (invocation.verbose) output.note(`total ${elapsed(started)}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`tunnelrpc: unexpected failure: ${shownText(String(error))}\n`);
    process.exitCode = EXIT.failure;
  },
);
