/**
 * Refusals: an ordinary HTTP response on a socket that asked for a tunnel, then close
 * (PROTOCOL.md "Refusal"; ws websocket-server.js abortHandshake).
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { SERVER_MARKER_HEADER, SERVER_MARKER_VALUE, type ErrorCode } from '@tunnelrpc/protocol';

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
