/**
 * Tunnel life events, Go's ConnState for tunnels: opened, refused, active and idle, goaway, closed. Listeners run
 * synchronously; one that throws is logged and skipped, and never harms a tunnel.
 */
import type { TcpInfo } from '@tunnelrpc/protocol';
import type { LogEntry } from './log.js';

/** TunnelOpened: a CONNECT was answered 200 and the socket now carries frames. */
export interface TunnelOpenedEvent {
  readonly type: 'open';
  /** Server-wide number of the tunnel, from 1; the same in its later events. */
  readonly tunnel: number;
  /** Remote IP address and port. */
  readonly address: string;
  readonly port: number | undefined;
  /** What ServerOptions.authorize returned (undefined without authorize). */
  readonly principal: unknown;
  /**
   * Reads the kernel's TCP_INFO of this tunnel's socket now (as ctx.peer.tcpInfo()); keep it to sample the tunnel
   * later, as @tunnelrpc/prometheus does at scrape time. undefined once the socket closed, or where it cannot be read.
   */
  readonly tcpInfo: () => TcpInfo | undefined;
}

/** TunnelRefused: a CONNECT was answered with an error status and closed. */
export interface TunnelRefusedEvent {
  readonly type: 'refused';
  readonly address: string;
  /** HTTP status sent: 400, 401, 403, 404, 429 or 503. */
  readonly status: number;
  /** The body sent, one line. */
  readonly reason: string;
}

/** TunnelActive: the tunnel went from no call running to one (calls and notifications with async handlers, and streams). */
export interface TunnelActiveEvent {
  readonly type: 'active';
  readonly tunnel: number;
}

/** TunnelIdle: the tunnel's last running call ended. */
export interface TunnelIdleEvent {
  readonly type: 'idle';
  readonly tunnel: number;
}

/** TunnelGoaway: a goaway was sent to the client, or received from it (then its code and message are escaped, bounded peer text). */
export interface TunnelGoawayEvent {
  readonly type: 'goaway';
  readonly tunnel: number;
  readonly direction: 'sent' | 'received';
  readonly code: string;
  readonly message: string;
}

/** TunnelClosed: the socket closed. */
export interface TunnelClosedEvent {
  readonly type: 'close';
  readonly tunnel: number;
  /** Why, in one line: the goaway's message, the error that ended it, or that the client closed it. */
  readonly reason: string;
  /** ms from open to close. */
  readonly duration: number;
  /** Requests and notifications received. */
  readonly calls: number;
  /** Bytes read from and written to the tunnel's socket (the CONNECT head and the 200 line included). */
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** ServerEvent is any tunnel life event; switch on `type`. */
export type ServerEvent = TunnelOpenedEvent | TunnelRefusedEvent | TunnelActiveEvent | TunnelIdleEvent | TunnelGoawayEvent | TunnelClosedEvent;

/** ServerListener receives server events, synchronously. A listener that throws is logged (warn) and ignored. */
export type ServerListener = (event: ServerEvent) => void;

/**
 * createEmitter returns the function that hands an event to every listener, each guarded, or undefined when there
 * are none (callers skip building events then).
 * @internal
 */
export function createEmitter(listeners: readonly ServerListener[], log: (entry: LogEntry) => void): ((event: ServerEvent) => void) | undefined {
  if (listeners.length === 0) return undefined;
  return (event) => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        log({ level: 'warn', message: `a ServerOptions.listeners entry threw on a ${event.type} event; the tunnel is not affected`, error });
      }
    }
  };
}
