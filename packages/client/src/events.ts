/**
 * Client connection events: connected, disconnected, reconnecting. Listeners run synchronously; one that throws is
 * skipped and never harms the client or its calls.
 */
import type { ErrorCode, TcpInfo } from '@tunnelrpc/protocol';

/** ClientConnectedEvent: a tunnel opened (the server answered 200). */
export interface ClientConnectedEvent {
  readonly type: 'connected';
  /** The URL the client dials. */
  readonly target: string;
  /** Remote address and port of the socket (undefined on a unix socket). */
  readonly address: string | undefined;
  readonly port: number | undefined;
  /**
   * Reads the kernel's TCP_INFO of this tunnel's socket now; keep it to sample the tunnel later, as
   * @tunnelrpc/prometheus does at scrape time. undefined once the socket closed, or where it cannot be read.
   */
  readonly tcpInfo: () => TcpInfo | undefined;
}

/** ClientDisconnectedEvent: a tunnel ended (its socket closed). */
export interface ClientDisconnectedEvent {
  readonly type: 'disconnected';
  readonly target: string;
  /** Why, in one line. */
  readonly reason: string;
  /** The code of the error that ended it, when one did (UNAVAILABLE for a lost socket, a goaway's code). */
  readonly code: ErrorCode | undefined;
  /**
   * Bytes read from and written to the tunnel's socket (the CONNECT and its reply included), as counted when the
   * tunnel ended: a goaway written last or bytes still in flight may be missing.
   */
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** ClientReconnectingEvent: a redial is scheduled. */
export interface ClientReconnectingEvent {
  readonly type: 'reconnecting';
  readonly target: string;
  /**
   * Number of this dial in the current run: 1 after a tunnel that proved itself was lost, else one more than the
   * dials that failed (or tunnels that achieved nothing) in a row; the first dial of createRpcClient was 1.
   */
  readonly attempt: number;
  /** ms until the dial starts (0: at once). */
  readonly delay: number;
}

/** ClientEvent is any client connection event; switch on `type`. */
export type ClientEvent = ClientConnectedEvent | ClientDisconnectedEvent | ClientReconnectingEvent;

/** ClientListener receives client events, synchronously. One that throws is skipped. */
export type ClientListener = (event: ClientEvent) => void;

/** createClientEmitter returns the guarded fan-out to `listeners`, or undefined when there are none. @internal */
export function createClientEmitter(listeners: readonly ClientListener[]): ((event: ClientEvent) => void) | undefined {
  if (listeners.length === 0) return undefined;
  return (event) => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch {
        // A listener's bug is its own: the client has no logger, and a throw here would land in a socket event.
      }
    }
  };
}
