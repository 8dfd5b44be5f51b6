/**
 * A listener that reads the PROXY protocol (v1 or v2) in front of every connection before the http server sees it
 * (haproxy doc/proxy-protocol.txt; pires/go-proxyproto's Conn is the shape). Connections from sources not in
 * `trusted` are closed unread: a header is never taken from anyone else. A trusted connection must send its whole
 * header within headerTimeout; the bytes behind it are put back (unshift) for the http server, and the header's
 * source address is recorded as the tunnel's peer (peer-address.ts).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { RpcError } from '@tunnelrpc/protocol';
import { parseProxyHeader, type ParsedProxyHeader } from '@tunnelrpc/protocol/internal';
import type { LogEntry } from './log.js';
import { normalizeAddress, recordPeerAddress } from './peer-address.js';

/** ProxyProtocolOptions turns on the PROXY protocol for the listener listen() creates. */
export interface ProxyProtocolOptions {
  /**
   * Source addresses (IPv4 or IPv6 literals: your balancers) allowed to send a PROXY header. Every connection from
   * one of them must start with a header; connections from any other address are closed unread. Required, 1 … 1000
   * entries; an IPv4 entry also matches its IPv4-mapped IPv6 form.
   */
  trusted: readonly string[];
  /**
   * ms a trusted connection has to send its whole PROXY header before it is closed. Default 5000. Range 3000 …
   * 2147483647 (the spec asks for at least 3 s).
   */
  headerTimeout?: number;
}

/** ResolvedProxyProtocol is ProxyProtocolOptions checked and filled. @internal */
export interface ResolvedProxyProtocol {
  trusted: ReadonlySet<string>;
  headerTimeout: number;
}

/**
 * createProxyListener returns a net.Server whose connections reach `http` (through its 'connection' event) only
 * after a valid PROXY header from a trusted source. @internal
 */
export function createProxyListener(http: HttpServer, options: ResolvedProxyProtocol, log: (entry: LogEntry) => void): Server {
  return createServer((socket) => {
    try {
      readHeader(socket, http, options, log);
    } catch (error) {
      // Nothing here should throw; if it does, it costs this connection only.
      socket.destroy();
      log({ level: 'error', message: 'unexpected error reading a PROXY header; the connection was closed', error });
    }
  });
}

function readHeader(socket: Socket, http: HttpServer, options: ResolvedProxyProtocol, log: (entry: LogEntry) => void): void {
  const source = socket.remoteAddress;
  if (source === undefined) {
    // Node has no address for a socket already reset by its peer (a port probe): nothing to read, nothing to say.
    socket.destroy();
    return;
  }
  if (!options.trusted.has(normalizeAddress(source))) {
    log({ level: 'warn', message: 'connection closed: its source is not in proxyProtocol.trusted, and this listener takes connections only through the balancers listed there', peer: source });
    socket.destroy();
    return;
  }
  let received: Buffer = Buffer.alloc(0);
  const fail = (why: string): void => {
    finish();
    log({ level: 'warn', message: `connection closed: ${why}`, peer: `${source}:${socket.remotePort}` });
    socket.destroy();
  };
  const onData = (chunk: Buffer): void => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    let parsed: ParsedProxyHeader | undefined;
    try {
      parsed = parseProxyHeader(received);
    } catch (error) {
      fail(RpcError.from(error, 'INVALID_ARGUMENT').message);
      return;
    }
    if (parsed === undefined) return;
    finish();
    const { header, consumed } = parsed;
    if (header.command === 'proxy') {
      recordPeerAddress(socket, { address: header.sourceAddress, port: header.sourcePort, family: header.family });
    }
    // httpolyglot's order: stop the flow, give back what follows the header, hand the socket on, then let it flow.
    socket.pause();
    try {
      if (consumed < received.length) socket.unshift(received.subarray(consumed));
      http.emit('connection', socket);
    } catch (error) {
      // A throw from a 'connection' listener must cost this connection, not escape the socket event.
      socket.destroy();
      log({ level: 'error', message: 'unexpected error handing a connection to the http server after its PROXY header; it was closed', error });
      return;
    }
    process.nextTick(() => socket.resume());
  };
  const onEnd = (): void => fail('the connection ended before its PROXY header was complete');
  const onError = (): void => fail('socket error before the PROXY header was complete');
  const timer = setTimeout(() => fail(`no complete PROXY header within proxyProtocol.headerTimeout ${options.headerTimeout} ms`), options.headerTimeout);
  const finish = (): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('error', onError);
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('error', onError);
}
