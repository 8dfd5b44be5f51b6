/**
 * Dialing: open TCP, TLS or a unix socket, send the CONNECT, read the reply head (size-capped, timed), and hand
 * back the socket with every byte that came after the head. Nothing behind the head is ever dropped: a server may
 * write frames in the same packet as its 200 line (grpc-node PR #2746 is this bug).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { createRequire } from 'node:module';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { RpcError, escapePeerText } from '@tunnelrpc/protocol';
import { CONTRACT_HEADER, CONTRACT_SKEW_HEADER, parseSkewHeader, encodeConnectRequest, encodeUpgradeRequest, parseResponseHead, type ResponseHead } from '@tunnelrpc/protocol/internal';
import { acceptsReply, describeRefusal, plainText, refusalCode } from './handshake-reply.js';
import { openProxyTunnel } from './proxy.js';

import { chooseProxy, type ProxyChoice } from './proxy-env.js';
import type { ResolvedClientOptions } from './options.js';
import type { DialTarget } from './target.js';

const require = createRequire(import.meta.url);

// node:tls is loaded on the first TLS dial: loading it alone took a bare echo server churning 64 KiB frames from 7
// to 75-100 mark-compacts in 3 s (bench/PROFILE.md). Plain TCP clients should not pay for that.
function tlsConnect(options: ConnectionOptions): TLSSocket {
  return (require('node:tls') as typeof import('node:tls')).connect(options);
}

/** Dialed is an open tunnel: the socket, and the bytes already read past the 200 head. @internal */
export interface Dialed {
  socket: Socket;
  rest: Buffer;
}

// How much of a refusal body is kept for the error message, and how long we wait for it.
const MAX_REFUSAL_BODY = 1024;
const REFUSAL_BODY_WAIT_MS = 200;

/**
 * dial opens a tunnel or rejects with an RpcError whose code and message say what failed and where. Through a
 * forward proxy (option proxy, or the environment: proxy-env.ts) it first opens a tunnel to the target there.
 * Aborting `signal` stops it at any step (headers, connect, head, refusal body): the socket is destroyed, the timer
 * cleared, and it rejects CANCELLED.
 */
export async function dial(target: DialTarget, options: ResolvedClientOptions, signal?: AbortSignal): Promise<Dialed> {
  const given = await connectHeaders(target, options);
  const headers = options.contractHeader === undefined ? given : { ...given, [CONTRACT_HEADER]: options.contractHeader };
  if (signal?.aborted === true) throw dialAborted(target);
  let proxy: ProxyChoice | undefined;
  try {
    proxy = target.kind === 'unix' ? undefined : chooseProxy({ tls: target.kind === 'tls', host: target.host, port: target.port }, options.proxy, process.env);
    // Checked before the proxy is dialed: a header it refuses (CR, LF) must not open anything.
    if (proxy !== undefined) encodeHandshake(target, options, headers);
  } catch (error) {
    throw RpcError.from(error, 'INVALID_ARGUMENT');
  }
  if (proxy === undefined || target.kind === 'unix') return handshake(target, options, headers, undefined, options.handshakeTimeout, signal);
  const started = Date.now();
  const where = { tls: target.kind === 'tls', host: target.host, port: target.port };
  const tunneled = await openProxyTunnel(proxy, where, options.handshakeTimeout, options.maxHeadSize);
  // close() may have come while the proxy answered.
  if (isAborted(signal)) {
    tunneled.destroy();
    throw dialAborted(target);
  }
  return handshake(target, options, headers, tunneled, Math.max(1, options.handshakeTimeout - (Date.now() - started)), signal);
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function dialAborted(target: DialTarget): RpcError {
  return new RpcError('CANCELLED', `the dial to ${target.display} was stopped: close() was called on the client`);
}

// The CONNECT headers of this dial: the object, or what the function gives now (a rotating token).
async function connectHeaders(target: DialTarget, options: ResolvedClientOptions): Promise<Record<string, string>> {
  const given = options.headers;
  if (typeof given !== 'function') return given;
  let headers: unknown;
  try {
    headers = await given();
  } catch (error) {
    const code = error instanceof RpcError ? error.code : 'UNAVAILABLE';
    throw new RpcError(code, `the headers function for ${target.display} failed (${error instanceof Error ? error.message : String(error)}); the dial is retried with backoff`, undefined, { cause: error });
  }
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers) || Object.values(headers).some((value) => typeof value !== 'string')) {
    throw new RpcError('INVALID_ARGUMENT', `the headers function for ${target.display} must return an object of string values; fix the function`);
  }
  return headers as Record<string, string>;
}

function encodeHandshake(target: DialTarget, options: ResolvedClientOptions, headers: Record<string, string>): Buffer {
  const encode = options.handshake === 'upgrade' ? encodeUpgradeRequest : encodeConnectRequest;
  return encode(target.path, target.hostHeader, headers);
}

// The tunnelrpc handshake over a new socket, or over `tunneled`, a proxy's tunnel to the target (TLS inside for https).
function handshake(target: DialTarget, options: ResolvedClientOptions, headers: Record<string, string>, tunneled: Socket | undefined, timeout: number, signal: AbortSignal | undefined): Promise<Dialed> {
  return new Promise((resolve, reject) => {
    let socket: Socket;
    try {
      // Build the head before dialing: a header it refuses (CR, LF) must not leave an open socket behind.
      const request = encodeHandshake(target, options, headers);
      const servername = target.kind === 'tls' && !isIp(target.host) ? target.host : undefined;
      socket =
        target.kind === 'unix'
          ? netConnect({ path: target.socketPath })
          : target.kind === 'tls'
            ? tlsConnect({ ...(tunneled === undefined ? { host: target.address ?? target.host, port: target.port } : { socket: tunneled }), servername, ALPNProtocols: ['http/1.1'], ...options.tls })
            : tunneled ?? netConnect({ host: target.address ?? target.host, port: target.port });
      socket.write(request);
    } catch (error) {
      reject(RpcError.from(error, 'INVALID_ARGUMENT'));
      return;
    }
    let received: Buffer = Buffer.alloc(0);
    let settled = false;
    const onAbort = (): void => {
      // After the head (reading a refusal body) settled is true: destroying the socket ends that read too.
      socket.destroy();
      finish(dialAborted(target));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (outcome: RpcError | Dialed): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (outcome instanceof RpcError) {
        socket.destroy();
        reject(outcome);
      } else {
        resolve(outcome);
      }
    };
    const timer = setTimeout(() => {
      finish(new RpcError('UNAVAILABLE', `no CONNECT reply from ${target.display} within handshakeTimeout ${options.handshakeTimeout} ms; is a tunnelrpc server listening there?`));
    }, timeout);
    const onError = (error: Error): void => {
      const errno = (error as NodeJS.ErrnoException).code;
      finish(new RpcError('UNAVAILABLE', `cannot connect to ${target.display}: ${errno ?? error.message}${hintFor(errno)}`, errno === undefined ? undefined : { errno }, { cause: error }));
    };
    const onClose = (): void => {
      finish(new RpcError('UNAVAILABLE', `${target.display} closed the connection during the CONNECT handshake; is it a tunnelrpc server?`));
    };
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      let head: ResponseHead | undefined;
      try {
        head = parseResponseHead(received, options.maxHeadSize);
      } catch (error) {
        const parseError = RpcError.from(error, 'UNAVAILABLE');
        finish(new RpcError('UNAVAILABLE', `${target.display}: ${parseError.message}`, parseError.data, { cause: error }));
        return;
      }
      if (head === undefined) return;
      const accepted = acceptsReply(head, options.handshake);
      if (accepted === true) {
        finish({ socket, rest: head.rest });
        const skew = head.headers[CONTRACT_SKEW_HEADER.toLowerCase()];
        if (skew !== undefined && options.contractHeader !== undefined) reportSkew(options, target, skew);
        return;
      }
      if (accepted !== false) {
        finish(new RpcError('UNAVAILABLE', `${target.display}: ${accepted}`, { status: head.status }));
        return;
      }
      const refused = head;
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      readRefusalBody(socket, refused).then((body) => {
        signal?.removeEventListener('abort', onAbort);
        socket.destroy();
        // The reason and body are the peer's words: escaped, so they cannot forge lines or repaint a terminal.
        const shown = escapePeerText(plainText(body, refused), MAX_REFUSAL_BODY);
        const text = shown.length > 0 ? `: ${shown}` : '';
        const verb = options.handshake === 'upgrade' ? 'Upgrade' : 'CONNECT';
        reject(new RpcError(refusalCode(refused), `${verb} ${target.display} refused with HTTP ${refused.status} ${escapePeerText(refused.reason, 80)}${text}${describeRefusal(refused, options.handshake)}`, { status: refused.status, body }));
      });
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    // A proxy's tunnel comes paused (proxy.ts), with the bytes behind the proxy's head put back.
    if (tunneled !== undefined) socket.resume();
  });
}

// Clients whose skew was reported already: once per client, not once per tunnel or redial.
const reported = new WeakSet<ResolvedClientOptions>();

function reportSkew(options: ResolvedClientOptions, target: DialTarget, value: string): void {
  const skew = parseSkewHeader(value);
  if (skew.length === 0 || reported.has(options)) return;
  reported.add(options);
  try {
    options.onContractSkew(skew, target.display);
  } catch {
    // The listener's bug is its own; this runs in a socket event, where a throw would crash the process.
  }
}

// The body of a refusal explains it; read what is there (bounded in size and time) so the error can say why.
function readRefusalBody(socket: Socket, head: ResponseHead): Promise<string> {
  const declared = Number(head.headers['content-length']);
  const want = Number.isInteger(declared) && declared >= 0 ? Math.min(declared, MAX_REFUSAL_BODY) : MAX_REFUSAL_BODY;
  let body: Buffer = head.rest.subarray(0, MAX_REFUSAL_BODY);
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', done);
      socket.off('close', done);
      socket.off('error', done);
      resolve(body.subarray(0, want).toString('utf8').trim());
    };
    const onData = (chunk: Buffer): void => {
      body = Buffer.concat([body, chunk]).subarray(0, MAX_REFUSAL_BODY);
      if (body.length >= want) done();
    };
    const timer = setTimeout(done, REFUSAL_BODY_WAIT_MS);
    if (body.length >= want) {
      done();
      return;
    }
    socket.on('data', onData);
    socket.on('end', done);
    socket.on('close', done);
    socket.on('error', done);
  });
}

function hintFor(errno: string | undefined): string {
  switch (errno) {
    case 'ECONNREFUSED':
      return ' (nothing listens there; check the host and port, or start the server)';
    case 'ENOENT':
      return ' (no unix socket at that path)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return ' (the host name does not resolve)';
    default:
      // Node's TLS verification codes: DEPTH_ZERO_SELF_SIGNED_CERT, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ERR_TLS_CERT_ALTNAME_INVALID…
      return errno !== undefined && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(errno)
        ? " (the server's certificate is not trusted for this host: pass its CA as options.tls.ca, or connect by the name the certificate holds)"
        : '';
  }
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
