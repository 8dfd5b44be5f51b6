/** The options of one call, notification or stream: a leaf module, imported by the client and its layers. */

/** CallOptions tune one call. */
export interface CallOptions {
  /** Deadline in ms from now; the server gets what is left of it as meta.timeout. Default: defaultTimeout. */
  timeout?: number;
  /** Aborting it fails the call with CANCELLED and sends a cancel to the server. */
  signal?: AbortSignal;
  /**
   * Headers for the handler (ctx.headers): trace ids, per-call credentials. A plain object of string to string;
   * names are sent in lower case, as HTTP compares them. Two names equal after lowercasing, a value that is not a
   * string, more than maxHeaderCount headers or more than maxHeaderBytes bytes fail this call alone with
   * INVALID_ARGUMENT, unsent.
   */
  headers?: Record<string, string>;
  /**
   * Wait for a tunnel when none is open (true), or fail at once with UNAVAILABLE `{mayHaveRun: false}` (false).
   * Default: the client's waitForReady (true).
   */
  waitForReady?: boolean;
  /**
   * The method is safe to run twice: after a lost tunnel the call is re-sent (up to maxRetries) instead of failing
   * with "may have run". The typed client sets it from the contract. Default false.
   */
  idempotent?: boolean;
  /**
   * Inherit the deadline and cancellation of the inbound call whose handler makes this call (on a tunnelrpc server
   * with propagateContext on): the call gets what is left of that deadline less the client's deadlineMargin (or its
   * own `timeout` when shorter), and is cancelled when the inbound call is. Past the inherited deadline it fails
   * DEADLINE_EXCEEDED unsent. false gives the call its own deadline and signal only. Default true.
   */
  inheritDeadline?: boolean;
}

/** StreamOptions tune one stream, as CallOptions a call; the deadline covers the whole stream. */
export type StreamOptions = Omit<CallOptions, 'idempotent'>;

/** NotifyOptions tune one notification. */
export interface NotifyOptions {
  /** Headers for the handler (ctx.headers), checked as CallOptions.headers. */
  headers?: Record<string, string>;
  /**
   * ms the notification may wait for a tunnel (or for a server that does not read) before it fails
   * DEADLINE_EXCEEDED, unsent. Not sent to the server. Default: defaultTimeout.
   */
  timeout?: number;
  /** Aborting it before the notification is written fails it with CANCELLED, unsent. */
  signal?: AbortSignal;
  /** As CallOptions.waitForReady. */
  waitForReady?: boolean;
  /** As CallOptions.inheritDeadline. Default true. */
  inheritDeadline?: boolean;
}

/** CallFailure says, in every locally made error's `data`, whether the server may have run the call. */
export interface CallFailure {
  /** False when the call surely did not run (never sent, or refused by a goaway): safe to retry. */
  mayHaveRun: boolean;
}
