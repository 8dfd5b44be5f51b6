/**
 * Refusals: an ordinary HTTP response on a socket that asked for a tunnel, then close
 * (PROTOCOL.md "Refusal"; ws websocket-server.js abortHandshake).
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ErrorCode } from '@tunnelrpc/protocol';
import { SERVER_MARKER_HEADER, SERVER_MARKER_VALUE } from '@tunnelrpc/protocol/internal';

// A refused peer that never reads must not hold the socket open forever.
const REFUSAL_LINGER_MS = 1000;

/** refuseConnect writes `status` with Connection: close and a short text body, then closes the socket. */
export function refuseConnect(socket: Duplex, status: number, body: string, extraHeaders: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const text = body;
  // The marker tells a client this refusal is the server's own, not a proxy's (PROTOCOL.md 2.3).
  let head = `HTTP/1.0 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\n${SERVER_MARKER_HEADER}: ${SERVER_MARKER_VALUE}\r\n`;
  head += `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\n`;
  for (const [name, value] of Object.entries(extraHeaders)) head += `${name}: ${value}\r\n`;
  socket.end(`${head}\r\n${text}`);
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
}

/** statusForCode picks the HTTP status that refuses a CONNECT for an error code thrown by `authorize`. */
export function statusForCode(code: ErrorCode): number {
  switch (code) {
    case 'UNAUTHENTICATED':
      return 401;
    case 'RESOURCE_EXHAUSTED':
      return 429;
    case 'UNAVAILABLE':
      return 503;
    default:
      return 403;
  }
}

/**
 * malformedConnect names what makes a CONNECT head one that HTTP itself refuses, or returns undefined. A body on
 * a CONNECT is the dangerous one: we would read it as frames while a proxy in front reads it as a body, and the two
 * would no longer agree where frames start (request smuggling's shape).
 */
export function malformedConnect(req: IncomingMessage): string | undefined {
  if (req.httpVersionMajor !== 1 || (req.httpVersionMinor !== 0 && req.httpVersionMinor !== 1)) {
    return '400 CONNECT must be HTTP/1.0 or HTTP/1.1';
  }
  // RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request without exactly one Host header.
  if (req.httpVersionMinor === 1 && req.headers.host === undefined) return '400 an HTTP/1.1 CONNECT needs a Host header';
  // RFC 9110 section 9.3.6: a CONNECT request has no content.
  if (req.headers['transfer-encoding'] !== undefined) return '400 a CONNECT carries no body; send no Transfer-Encoding';
  const length = req.headers['content-length'];
  if (length !== undefined && length !== '0') return '400 a CONNECT carries no body; send no Content-Length';
  return undefined;
}

/**
 * answerClientError replaces Node's reply to a head its parser refused (431 too large, 408 too slow, 400 malformed)
 * with the same status marked as a tunnelrpc server's own (PROTOCOL.md 2.3), for servers listen() creates. Node's
 * own handler (_http_server.js socketOnError) picks the status the same way.
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\n${SERVER_MARKER_HEADER}: ${SERVER_MARKER_VALUE}\r\n\r\n`);
  }
  socket.destroy();
}
