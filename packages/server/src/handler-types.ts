/**
 * The public shapes a server's handlers are written against: the context every handler gets, the peer it reads,
 * and the handler type of each method kind. A leaf module: it imports no server code, so every file may import it.
 */
import type { Socket } from 'node:net';
import type { MethodSpec, ParsedClientMessageOf, TcpInfo, ParsedInputOf, ReturnOf, ServerMessageOf, ServiceContract } from '@tunnelrpc/protocol';
import type { PeerCredentials } from './peer-credentials.js';

/**
 * PeerAddress is the remote end of a tunnel: as the socket reports it, or, on a listener with the proxyProtocol
 * option, the client's address from the balancer's PROXY header.
 */
export interface PeerAddress {
  address: string | undefined;
  port: number | undefined;
  family: string | undefined;
  /** The client certificate the TLS layer verified (https with `requestCert`); absent otherwise. */
  certificate?: PeerCertificate;
  /**
   * The connecting process's uid, gid and pid, on a unix socket on Linux with the optional `koffi` package
   * installed (SO_PEERCRED); absent otherwise.
   */
  credentials?: PeerCredentials;
  /**
   * tcpInfo reads the kernel's view of the tunnel's TCP connection now (getsockopt TCP_INFO): round-trip time and
   * its variance, retransmits, congestion window, unacknowledged and lost segments, bytes acked and received.
   * undefined where it cannot be read: not Linux, the optional `koffi` package missing, a unix socket, or the
   * socket closed. Each call reads afresh; nothing is read unless asked.
   */
  tcpInfo(): TcpInfo | undefined;
}

/** PeerCertificate is a verified client certificate, as `ctx.peer.certificate` and `authorize` see it. */
export interface PeerCertificate {
  /** Subject names, such as `{ CN: 'billing', O: 'Example' }`. */
  readonly subject: Readonly<Record<string, string>>;
  /** Issuer names. */
  readonly issuer: Readonly<Record<string, string>>;
  /** Subject alternative names as OpenSSL prints them: `DNS:billing.internal`, `URI:spiffe://…`, `IP Address:10.0.0.5`. */
  readonly subjectAltNames: readonly string[];
  /** SHA-256 fingerprint, colon-separated hex: pin it to allow one certificate exactly. */
  readonly fingerprint256: string;
  readonly serialNumber: string;
  readonly validFrom: string;
  readonly validTo: string;
}

/** CallContext is handed to every handler next to its parsed params. */
export interface CallContext<Auth = unknown> {
  /** Wire name of the method, `"Service.method"`. */
  readonly method: string;
  /** Aborted when the call is cancelled, passes its deadline, or its connection closes. */
  readonly signal: AbortSignal;
  /** Absolute deadline, in ms since the epoch (compare with Date.now()). */
  readonly deadline: number;
  /** Headers the caller sent in meta.headers. */
  readonly headers: Readonly<Record<string, string>>;
  /** True for a notification: the result is discarded and errors are only logged. */
  readonly notification: boolean;
  /** Remote address of the tunnel. */
  readonly peer: PeerAddress;
  /** The tunneled socket (a net.Socket, or a tls.TLSSocket behind https). */
  readonly socket: Socket;
  /** What ServerOptions.authorize returned for this tunnel (undefined without authorize). */
  readonly auth: Auth;
  /**
   * Aborted when the server begins to shut down (`close()`): a long stream or a held call can finish with a result
   * now, before shutdownTimeout cuts it off. One signal for the whole server; never aborted otherwise.
   */
  readonly draining: AbortSignal;
}

/** Handler runs one method: parsed params in, result (or a promise of it) out. Throw RpcError to fail the call. */
export type Handler<M extends MethodSpec, Auth = unknown> = (input: ParsedInputOf<M>, ctx: CallContext<Auth>) => ReturnOf<M> | Promise<ReturnOf<M>>;

/**
 * ServerStreamHandler runs a serverStream method: an async generator whose every `yield` sends one message (pulled
 * only when the client has granted credit) and whose return value is the result. `finally` blocks run when the
 * stream ends early (cancel, deadline, goaway cut-off, a lost tunnel); ctx.signal is aborted then.
 */
export type ServerStreamHandler<M extends MethodSpec, Auth = unknown> = (input: ParsedInputOf<M>, ctx: CallContext<Auth>) => AsyncIterator<ServerMessageOf<M>, ReturnOf<M>, undefined>;

/**
 * ClientStreamHandler runs a clientStream method: it reads the client's messages (validated, ending when the client
 * half-closes, throwing the RpcError that ended the stream otherwise) and returns the result.
 */
export type ClientStreamHandler<M extends MethodSpec, Auth = unknown> = (input: ParsedInputOf<M>, messages: AsyncIterable<ParsedClientMessageOf<M>>, ctx: CallContext<Auth>) => ReturnOf<M> | Promise<ReturnOf<M>>;

/** BidiStreamHandler runs a bidiStream method: the client's messages in, an async generator of messages out. */
export type BidiStreamHandler<M extends MethodSpec, Auth = unknown> = (input: ParsedInputOf<M>, messages: AsyncIterable<ParsedClientMessageOf<M>>, ctx: CallContext<Auth>) => AsyncIterator<ServerMessageOf<M>, ReturnOf<M>, undefined>;

/** HandlerOf is the handler type a method spec requires, by its kind. */
export type HandlerOf<M extends MethodSpec, Auth = unknown> = M extends { readonly kind: 'serverStream' }
  ? ServerStreamHandler<M, Auth>
  : M extends { readonly kind: 'clientStream' }
    ? ClientStreamHandler<M, Auth>
    : M extends { readonly kind: 'bidiStream' }
      ? BidiStreamHandler<M, Auth>
      : Handler<M, Auth>;

/** ServiceImpl is the handler object a contract requires: one handler per method, typed from the schemas. */
export type ServiceImpl<C extends ServiceContract, Auth = unknown> = { [K in keyof C['methods']]: HandlerOf<C['methods'][K], Auth> };
