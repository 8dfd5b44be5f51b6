/**
 * Who is calling: the remote address of a tunnel and, behind https with client certificates, the certificate the
 * TLS layer verified (subject, subject alternative names, fingerprint). Handlers read it as `ctx.peer`; `authorize`
 * gets it next to the CONNECT request.
 */
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { readTcpInfo } from '@tunnelrpc/protocol/internal';
import type { PeerAddress, PeerCertificate } from './handler-types.js';
import { peerAddressOf } from './peer-address.js';
import { loadGetsockopt, peerCredentialsOf } from './peer-credentials.js';

/**
 * peerOf describes the remote end of a tunnel's socket: its address (from a trusted PROXY header when there was
 * one), with its verified client certificate and its unix credentials where they exist. @internal
 */
export function peerOf(socket: Duplex): PeerAddress {
  const peer = { ...peerAddressOf(socket) } as PeerAddress;
  // Not enumerable: the peer stays a plain record of facts for logs, JSON and comparisons; the method is read on demand.
  Object.defineProperty(peer, 'tcpInfo', { value: () => readTcpInfo(socket, loadGetsockopt), enumerable: false });
  const certificate = verifiedCertificateOf(socket);
  if (certificate !== undefined) peer.certificate = certificate;
  const credentials = peerCredentialsOf(socket);
  if (credentials !== undefined) peer.credentials = credentials;
  return peer;
}

/**
 * clientCertificateRefusal says why a socket has no client certificate the server verified, or undefined when it
 * has one: not TLS, no certificate sent, or the TLS layer's verification error (CERT_HAS_EXPIRED,
 * UNABLE_TO_VERIFY_LEAF_SIGNATURE, …). @internal
 */
export function clientCertificateRefusal(socket: Duplex): string | undefined {
  if (!isTlsSocket(socket)) return 'a client certificate is required, and this CONNECT did not come over TLS; connect with https:// and tls: { cert, key }';
  if (socket.authorized) return undefined;
  const reason = socket.authorizationError;
  const sent = Object.keys(socket.getPeerCertificate()).length > 0;
  if (!sent) return 'a client certificate is required and none was sent; pass tls: { cert, key } to connect()';
  const code = typeof reason === 'string' ? reason : reason instanceof Error ? ((reason as NodeJS.ErrnoException).code ?? reason.message) : 'not verified';
  return `the client certificate was refused (${code}); present one that is in date and issued by a CA the server trusts`;
}

// A TLS socket says so (`encrypted`), without this module loading node:tls: loading it alone took a bare echo
// server churning 64 KiB frames from 7 to 75-100 mark-compacts in 3 s (bench/PROFILE.md). Plain TCP servers
// should not pay for that.
function isTlsSocket(socket: Duplex): socket is TLSSocket {
  return (socket as Partial<TLSSocket>).encrypted === true && typeof (socket as Partial<TLSSocket>).getPeerCertificate === 'function';
}

function verifiedCertificateOf(socket: Duplex): PeerCertificate | undefined {
  if (!isTlsSocket(socket) || !socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  if (Object.keys(cert).length === 0) return undefined;
  return Object.freeze({
    subject: namesOf(cert.subject),
    issuer: namesOf(cert.issuer),
    subjectAltNames: Object.freeze(typeof cert.subjectaltname === 'string' && cert.subjectaltname !== '' ? cert.subjectaltname.split(', ') : []),
    fingerprint256: cert.fingerprint256,
    serialNumber: cert.serialNumber,
    validFrom: cert.valid_from,
    validTo: cert.valid_to,
  });
}

// A certificate name as a plain frozen record; a repeated attribute (two OU) is joined with ", ".
function namesOf(name: unknown): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  if (typeof name === 'object' && name !== null) {
    for (const [key, value] of Object.entries(name as Record<string, unknown>)) {
      Object.defineProperty(out, key, { value: Array.isArray(value) ? value.join(', ') : String(value), enumerable: true });
    }
  }
  return Object.freeze(out);
}
