/**
 * What a reply to the tunnelrpc handshake means: the tunnel (200 to a CONNECT, 101 with `Upgrade: tunnelrpc` to an
 * Upgrade), a refusal, and whether a refusal came from the server or from a proxy in between (PROTOCOL.md 2.3, 2.5).
 */
import { type ErrorCode } from '@tunnelrpc/protocol';
import { SERVER_MARKER_HEADER, UPGRADE_TOKEN, codeFromHttpStatus, isTunnelrpcReply, type ResponseHead } from '@tunnelrpc/protocol/internal';

/** HandshakeKind is the way the client asks for a tunnel: `CONNECT <path>`, or `GET <path>` with Upgrade. */
export type HandshakeKind = 'connect' | 'upgrade';

/**
 * acceptsReply returns true for the reply that opens the tunnel, false for a refusal, and a sentence for a reply
 * that is neither (a 101 to the wrong protocol, a 101 to a CONNECT, a 2xx to an Upgrade). @internal
 */
export function acceptsReply(head: ResponseHead, handshake: HandshakeKind): boolean | string {
  if (handshake === 'connect') {
    if (head.status === 200) return true;
    if (head.status === 101) return 'answered the CONNECT with 101 Switching Protocols; this is not a tunnelrpc endpoint';
    return false;
  }
  if (head.status === 101) {
    const upgrade = (head.headers['upgrade'] ?? '').toLowerCase();
    if (upgrade === UPGRADE_TOKEN) return true;
    return `switched to ${JSON.stringify(upgrade.slice(0, 40))} instead of Upgrade: ${UPGRADE_TOKEN}; this is not a tunnelrpc endpoint`;
  }
  if (head.status >= 200 && head.status < 300) {
    return `answered the Upgrade with ${head.status} instead of 101 Switching Protocols; a proxy in between may not pass Upgrade requests, or this is not a tunnelrpc endpoint`;
  }
  return false;
}

/**
 * refusalCode is the error code of a refusal. A tunnelrpc server's own (marked) refusal maps as PROTOCOL.md 2.4
 * says. An unmarked 400 or 405 is a proxy refusing the handshake itself, a deployment problem no retry fixes:
 * FAILED_PRECONDITION, not the UNIMPLEMENTED or UNKNOWN that would send the reader looking for a missing method. @internal
 */
export function refusalCode(head: ResponseHead): ErrorCode {
  if (!isTunnelrpcReply(head) && (head.status === 400 || head.status === 405)) return 'FAILED_PRECONDITION';
  return codeFromHttpStatus(head.status);
}

/**
 * describeRefusal adds to a refusal's message where it came from when the reply has no tunnelrpc marker, with
 * advice that fits its status: a 502, 503 or 504 from a proxy means the server behind it is down or unreachable
 * (the proxy's recipe is fine); a 400 or 405 means the proxy refused the handshake (with CONNECT: use the Upgrade
 * handshake; with the Upgrade: forward its headers). @internal
 */
export function describeRefusal(head: ResponseHead, handshake: HandshakeKind): string {
  if (isTunnelrpcReply(head)) return '';
  const what = handshake === 'connect' ? 'CONNECT' : 'the Upgrade';
  const notOurs = `not from a tunnelrpc server, whose replies carry ${SERVER_MARKER_HEADER}`;
  if (head.status === 502 || head.status === 503 || head.status === 504) {
    return ` (${notOurs}: a proxy between here and the server answered for it because it could not reach the tunnelrpc server behind it; check that the server is up and that the proxy's upstream address and port are right)`;
  }
  const hint =
    handshake === 'connect'
      ? `; HTTP proxies (HAProxy mode http, nginx, Envoy) refuse CONNECT to a path but pass the Upgrade handshake: connect with { handshake: 'upgrade' } (CLI --upgrade)`
      : '; check that the proxy forwards the Upgrade and Connection headers to the server (nginx: proxy_http_version 1.1 and proxy_set_header for both)';
  return ` (${notOurs}: a proxy between here and the server refused ${what}${hint})`;
}

/**
 * plainText is a refusal body as one line for an error message: an HTML error page (nginx, HAProxy) loses its tags,
 * repeated words and runs of whitespace, so the message reads "405 Not Allowed nginx/1.22.1". @internal
 */
export function plainText(body: string, head: ResponseHead): string {
  const html = /html/i.test(head.headers['content-type'] ?? '') || /^\s*<(!doctype|html)/i.test(body);
  if (!html) return body;
  // "<title>405 Not Allowed</title> ... <h1>405 Not Allowed</h1>": the title and the heading say the same.
  return dropRepeats(body.replace(/<[^>]*>/g, ' ').split(/\s+/).filter((word) => word.length > 0));
}

// ["A", "B", "A", "B", "C"] -> "A B C": drops each phrase repeated right after itself (bodies are at most 1 KiB).
function dropRepeats(words: string[]): string {
  for (let size = Math.floor(words.length / 2); size >= 1; size--) {
    for (let start = 0; start + 2 * size <= words.length; start++) {
      if (words.slice(start, start + size).join(' ') === words.slice(start + size, start + 2 * size).join(' ')) {
        return dropRepeats([...words.slice(0, start + size), ...words.slice(start + 2 * size)]);
      }
    }
  }
  return words.join(' ');
}
