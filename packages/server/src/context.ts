/**
 * HandlerContext is the CallContext a handler gets. Its AbortSignal is made only when the handler reads it: most
 * handlers never do, and an AbortController costs about as much as the rest of a small call.
 */
import type { Socket } from 'node:net';
import type { RpcError } from '@tunnelrpc/protocol';
import type { CallContext, PeerAddress } from './handler-types.js';

/** HandlerContext carries one handler run; abort() ends its signal, now or when it is first read. @internal */
export class HandlerContext implements CallContext {
  readonly method: string;
  readonly deadline: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly notification: boolean;
  readonly peer: PeerAddress;
  readonly socket: Socket;
  readonly auth: unknown;
  readonly draining: AbortSignal;
  #controller: AbortController | undefined;
  #reason: RpcError | undefined;
  // One internal listener (the interceptor chain's innermost step), told without making an AbortController.
  #onAbort: ((reason: RpcError) => void) | undefined;

  constructor(
    method: string,
    deadline: number,
    headers: Readonly<Record<string, string>>,
    notification: boolean,
    peer: PeerAddress,
    socket: Socket,
    auth: unknown,
    draining: AbortSignal,
  ) {
    this.method = method;
    this.deadline = deadline;
    this.headers = headers;
    this.notification = notification;
    this.peer = peer;
    this.socket = socket;
    this.auth = auth;
    this.draining = draining;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#reason !== undefined) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** aborted tells whether the call ended for the handler already (cancel, deadline, disconnect). */
  get aborted(): boolean {
    return this.#reason !== undefined;
  }

  /** endedWith is the error the call ended with for the handler (its signal's reason), or undefined while it runs. */
  get endedWith(): RpcError | undefined {
    return this.#reason;
  }

  /** abortReason is why the call ended for the handler, or undefined while it runs. */
  get abortReason(): RpcError | undefined {
    return this.#reason;
  }

  /** watched tells whether the internal listener is taken. */
  get watched(): boolean {
    return this.#onAbort !== undefined;
  }

  /**
   * whenAborted sets the one internal listener told when the call ends early (undefined clears it): what the
   * interceptor chain needs, without the AbortController that reading `signal` makes.
   */
  whenAborted(listener: ((reason: RpcError) => void) | undefined): void {
    this.#onAbort = listener;
  }

  /** abort ends the handler's signal with `reason` (CANCELLED, DEADLINE_EXCEEDED); the first reason wins. */
  abort(reason: RpcError): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    this.#controller?.abort(reason);
    const listener = this.#onAbort;
    this.#onAbort = undefined;
    listener?.(reason);
  }
}
