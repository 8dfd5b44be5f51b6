/**
 * What a reply to the tunnelrpc handshake means: the tunnel (200 to a CONNECT, 101 with `Upgrade: tunnelrpc` to an
 * Upgrade), a refusal, and whether a refusal came from the server or from a proxy in between (PROTOCOL.md 2.3, 2.5).
 */
import { SERVER_MARKER_HEADER, UPGRADE_TOKEN, isTunnelrpcReply, type ResponseHead } from '@tunnelrpc/protocol';

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
 * describeRefusal adds to a refusal's message where it came from when the reply has no tunnelrpc marker: a proxy
 * (or another HTTP server) refused, not the tunnelrpc server; with CONNECT, it points to the Upgrade handshake. @internal
 */
export function describeRefusal(head: ResponseHead, handshake: HandshakeKind): string {
  if (isTunnelrpcReply(head)) return '';
  const what = handshake === 'connect' ? 'CONNECT' : 'the Upgrade';
  const hint =
    handshake === 'connect'
      ? `; HTTP proxies (HAProxy mode http, nginx, Envoy) refuse CONNECT to a path but pass the Upgrade handshake: connect with { handshake: 'upgrade' } (CLI --upgrade)`
      : '; check that the proxy forwards the Upgrade and Connection headers to the server (nginx: proxy_http_version 1.1 and proxy_set_header for both)';
  return ` (not from a tunnelrpc server, whose replies carry ${SERVER_MARKER_HEADER}: a proxy between here and the server refused ${what}${hint})`;
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
