/**
 * Endpoint: one address of the pool (a URL, or one address a host name resolved to). It keeps up to
 * tunnelsPerEndpoint tunnels open, dials again after a loss with jittered backoff (ejection.ts), and says what it is
 * doing. It owns its tunnels and reports up to the pool through EndpointHost, as a tunnel does through TunnelHost.
 *
 * Over 400 lines: one endpoint's tunnels, redial backoff and outcome counts change together on every tunnel event;
 * the pure deciders it calls (ejection.ts, outlier.ts) and the tunnel itself live elsewhere.
 */
import { RpcError, type TcpInfo } from '@tunnelrpc/protocol';
import type { Call } from './call.js';
import { dial, type Dialed } from './dial.js';
import { dialsToStart, ejectionDelay } from './ejection.js';
import { PeakEwma, blamesEndpoint, ejectionTime, type IntervalCounts } from './outlier.js';
import type { ResolvedClientOptions } from './options.js';
import type { DialTarget } from './target.js';
import { Tunnel, type TunnelHost } from './tunnel.js';
import { createClientEmitter, type ClientEvent } from './events.js';
import type { Socket } from 'node:net';

/** EndpointState says what an endpoint is doing; see EndpointSnapshot.state. */
export type EndpointState = 'connecting' | 'ready' | 'draining' | 'ejected' | 'closed';

/** EndpointSnapshot is a read-only view of one endpoint at the moment `client.endpoints` was read. */
export interface EndpointSnapshot {
  /** The URL this endpoint serves, as given (or as the host name's URL). */
  readonly url: string;
  /** The address dialled when the URL's host name resolved to it; undefined for an address or unix socket URL. */
  readonly address: string | undefined;
  /**
   * `connecting`: its first dial (or the redial after a loss) is under way; `ready`: at least one tunnel takes
   * calls; `draining`: the server sent goaway, its calls finish and new ones go elsewhere; `ejected`: a dial failed
   * or a tunnel was lost, no calls go to it until a redial after `retryAt` succeeds, or its answers made it an
   * outlier (`outlier` true), no calls go to it until `retryAt`; `closed`: gone (client closed, reconnect off, or the
   * host name no longer resolves to it).
   */
  readonly state: EndpointState;
  /** Tunnels taking new calls. */
  readonly tunnels: number;
  /** Calls waiting for their answers on its tunnels (draining ones included). */
  readonly outstanding: number;
  /** Calls and notifications written to its tunnels since the client was made (retries count again). */
  readonly sent: number;
  /** Dials failed, or tunnels lost before they answered anything, in a row; 0 once a tunnel proved itself. */
  readonly failures: number;
  /** Times it was ejected since the client was made. */
  readonly ejections: number;
  /** While ejected: when (Date.now() ms) it is dialled again. */
  readonly retryAt: number | undefined;
  /** The last dial or tunnel error, if any. */
  readonly lastError: RpcError | undefined;
  /** Ejected now for its answers (outlier detection), until `retryAt`. */
  readonly outlier: boolean;
  /** Times it was ejected for its answers since the client was made. */
  readonly outlierEjections: number;
  /** Answers in a row that blamed it (UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED, attempt timeouts). */
  readonly consecutiveFailures: number;
  /** Its peak-EWMA latency estimate in ms, decayed to now; 0 before its first answer, and while it is the only endpoint (nothing to compare). */
  readonly latency: number;
  /**
   * The kernel's TCP_INFO of each tunnel taking calls (rtt, retransmits, congestion window…), read when the snapshot
   * was made; an entry is undefined where it cannot be read (not Linux, the optional koffi missing, unix sockets).
   */
  readonly tcpInfo: readonly (TcpInfo | undefined)[];
}

/** EndpointHost is what an endpoint tells its pool. @internal */
export interface EndpointHost {
  /** A handshake succeeded; the tunnel starts right after. */
  endpointOpened(endpoint: Endpoint): void;
  /** A tunnel opened and survived the frames behind its head: calls waiting may go to it. */
  endpointReady(endpoint: Endpoint): void;
  /** As TunnelHost.tunnelDraining. */
  tunnelDraining(endpoint: Endpoint, refused: Call[]): void;
  /** As TunnelHost.tunnelEnded. */
  tunnelEnded(endpoint: Endpoint, reason: RpcError | undefined, orphans: Call[], refused: Call[]): void;
  /** As TunnelHost.tunnelWritable. */
  tunnelWritable(endpoint: Endpoint): void;
  /** A dial failed, or a tunnel was lost before it proved itself: the endpoint is ejected for a while. */
  endpointFailed(endpoint: Endpoint, error: RpcError): void;
  /** The endpoint closed and holds no tunnel any more. */
  endpointClosed(endpoint: Endpoint): void;
  /** Its answers failed consecutiveFailures times in a row: the pool decides whether it may be ejected. */
  outlierSuspected(endpoint: Endpoint): void;
  /** A call sent on one of its tunnels was answered or given up there (its attempt timer, if any, can go). */
  callEnded(call: Call): void;
  /** `calls` stopped waiting for answers on its tunnels and `ids` were freed there: the pool's totals follow. */
  callsReleased(calls: number, ids: number): void;
  /** Its outlier ejection ended: calls waiting may go to it. */
  outlierReturned(endpoint: Endpoint): void;
  /** Whether any tunnel but `tunnel` (of this endpoint or another) received a frame after `since` (Date.now() ms). */
  othersAnsweredSince(tunnel: Tunnel, since: number): boolean;
}

/** Endpoint keeps the tunnels to one address. @internal */
export class Endpoint implements TunnelHost {
  readonly target: DialTarget;
  // Connection events (ClientOptions.listeners); undefined when nobody listens.
  readonly #emit: ((event: ClientEvent) => void) | undefined;
  // Each tunnel's socket, for the byte counts of its disconnected event (only kept when there are listeners).
  readonly #sockets = new WeakMap<Tunnel, Socket>();
  readonly #options: ResolvedClientOptions;
  readonly #host: EndpointHost;
  readonly #random: () => number;
  readonly #address: string | undefined;
  readonly #open: Tunnel[] = [];
  readonly #draining = new Set<Tunnel>();
  readonly #dials = new Set<AbortController>();
  #retryTimer: NodeJS.Timeout | undefined;
  #retryAt: number | undefined;
  #failures = 0;
  #ejections = 0;
  #sent = 0;
  #lastError: RpcError | undefined;
  #closing = false;
  #closed = false;
  // Set once a tunnel has been open: connect() waits for the first one across the pool.
  #everOpened = false;
  #firstFailure = false;
  /**
   * watched is set by the pool while it has other endpoints: alone, an endpoint is never picked against another nor
   * ejected for its answers, so a client of one URL does not pay for measuring them.
   */
  watched = false;

  /** TunnelHost.measuresLatency: answers are timed only while watched. */
  get measuresLatency(): boolean {
    return this.watched;
  }
  // What its answers say (outlier.ts): latency for the pick, failures for ejection.
  readonly #latency: PeakEwma;
  #consecutiveFailures = 0;
  #successes = 0;
  #failedAnswers = 0;
  #outlier = false;
  #outlierTimer: NodeJS.Timeout | undefined;
  #outlierUntil = 0;
  // Ejections for answers, the multiplier of the next one's length: one off per clean interval.
  #outlierMultiplier = 0;
  #outlierEjections = 0;

  constructor(target: DialTarget, address: string | undefined, options: ResolvedClientOptions, host: EndpointHost, random: () => number) {
    this.target = target;
    this.#address = address;
    this.#options = options;
    this.#host = host;
    this.#random = random;
    this.#emit = createClientEmitter(options.listeners);
    this.#latency = new PeakEwma(options.latencyDecayTime);
  }

  /** outlier tells whether it is ejected for its answers now: the pick passes it over while others take calls. */
  get outlier(): boolean {
    return this.#outlier;
  }

  /** latencyCost is its latency estimate at `now` (performance.now()), for the pick. */
  latencyCost(now: number): number {
    return this.#latency.cost(now);
  }

  /** answeredSince tells whether one of its open tunnels other than `except` received a frame after `since` (Date.now() ms). */
  answeredSince(since: number, except: Tunnel): boolean {
    for (const tunnel of this.#open) if (tunnel !== except && tunnel.lastReceivedAt > since) return true;
    return false;
  }

  /** takeInterval returns its answers since the last call and starts a new count; a clean interval shortens the next ejection. */
  takeInterval(): IntervalCounts {
    const counts = { successes: this.#successes, failures: this.#failedAnswers };
    this.#successes = 0;
    this.#failedAnswers = 0;
    if (!this.#outlier && counts.failures === 0 && this.#outlierMultiplier > 0) this.#outlierMultiplier--;
    return counts;
  }

  /** ejectOutlier takes it out of the pick for a time that grows with each ejection; real calls probe it after. */
  ejectOutlier(now: number = Date.now()): void {
    if (this.#outlier || this.#closing) return;
    const detection = this.#options.outlierDetection;
    this.#outlierMultiplier++;
    this.#outlierEjections++;
    const time = ejectionTime(this.#outlierMultiplier, detection.baseEjectionTime, detection.maxEjectionTime);
    this.#outlier = true;
    this.#outlierUntil = now + time;
    this.#consecutiveFailures = 0;
    this.#outlierTimer = setTimeout(() => {
      this.#outlierTimer = undefined;
      this.#outlier = false;
      this.#outlierUntil = 0;
      try {
        this.#host.outlierReturned(this);
      } catch {
        // The client's flush failed; its next event sends the waiting calls.
      }
    }, time);
    this.#outlierTimer.unref();
  }

  /** attemptTimedOut counts an attempt that waited attemptTimeout ms here without an answer. */
  attemptTimedOut(waited: number): void {
    this.#observe(true, waited, performance.now());
  }

  // TunnelHost: what its answers say.
  callAnswered(_tunnel: Tunnel, call: Call, code: string | undefined): void {
    this.#host.callsReleased(1, 1);
    if (this.#options.attemptTimeout > 0) this.#host.callEnded(call);
    // A stream's length is its caller's business, not a measure of the server.
    if (!this.watched || call.stream !== undefined || call.sentAt === 0) return;
    const now = performance.now();
    this.#observe(blamesEndpoint(code), now - call.sentAt, now);
  }

  callAbandoned(_tunnel: Tunnel, call: Call): void {
    // Its id stays reserved until the server answers it or the tunnel ends (idsReleased).
    this.#host.callsReleased(1, 0);
    if (this.#options.attemptTimeout > 0) this.#host.callEnded(call);
    // An abort before the deadline is the caller's choice; a deadline passed with no answer blames the endpoint.
    if (!this.watched || call.stream !== undefined || call.sentAt === 0 || call.deadline > Date.now()) return;
    const now = performance.now();
    this.#observe(true, now - call.sentAt, now);
  }

  othersAnsweredSince(tunnel: Tunnel, since: number): boolean {
    return this.#host.othersAnsweredSince(tunnel, since);
  }

  idsReleased(_tunnel: Tunnel, count: number): void {
    this.#host.callsReleased(0, count);
  }

  #observe(blamed: boolean, latency: number, now: number): void {
    this.#latency.observe(latency, now);
    if (!blamed) {
      this.#successes++;
      this.#consecutiveFailures = 0;
      return;
    }
    this.#failedAnswers++;
    this.#consecutiveFailures++;
    const threshold = this.#options.outlierDetection.consecutiveFailures;
    if (threshold > 0 && this.#consecutiveFailures >= threshold && !this.#outlier && this.#options.outlierDetection.enabled) this.#host.outlierSuspected(this);
  }

  /** open tunnels taking calls, for the balancer. */
  get open(): readonly Tunnel[] {
    return this.#open;
  }

  /** dialing tells whether a dial is under way or scheduled. */
  get dialing(): boolean {
    return this.#dials.size > 0 || this.#retryTimer !== undefined;
  }

  /** settledFirst tells whether its first dial is done, well or not: connect() waits for every endpoint's. */
  get settledFirst(): boolean {
    return this.#everOpened || this.#firstFailure;
  }

  get lastError(): RpcError | undefined {
    return this.#lastError;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** callCount sums the calls waiting on its tunnels, draining ones included, for its snapshot. */
  get callCount(): number {
    let count = 0;
    for (const tunnel of this.#open) count += tunnel.callCount;
    for (const tunnel of this.#draining) count += tunnel.callCount;
    return count;
  }

  /** countSent records a call written to one of its tunnels. */
  countSent(): void {
    this.#sent++;
  }

  /** start dials what is missing (the first dial, or the rest once one tunnel is up). */
  start(): void {
    if (this.#closing || this.#retryTimer !== undefined) return;
    const count = dialsToStart(this.#open.length, this.#dials.size, this.#options.tunnelsPerEndpoint);
    for (let i = 0; i < count; i++) this.#dial();
  }

  snapshot(): EndpointSnapshot {
    const state: EndpointState = this.#closed || this.#closing
      ? 'closed'
      : this.#outlier
        ? 'ejected'
        : this.#open.length > 0
        ? 'ready'
        : this.#retryTimer !== undefined
          ? 'ejected'
          : this.#draining.size > 0
            ? 'draining'
            : 'connecting';
    return Object.freeze({
      url: this.target.display,
      address: this.#address,
      state,
      tunnels: this.#open.length,
      outstanding: this.callCount,
      sent: this.#sent,
      failures: this.#failures,
      ejections: this.#ejections,
      retryAt: this.#outlier ? this.#outlierUntil : this.#retryAt,
      lastError: this.#lastError,
      outlier: this.#outlier,
      outlierEjections: this.#outlierEjections,
      consecutiveFailures: this.#consecutiveFailures,
      latency: Math.round(this.#latency.cost(performance.now()) * 1000) / 1000,
      tcpInfo: Object.freeze(this.#open.map((tunnel) => tunnel.tcpInfo())),
    });
  }

  /** close stops dialling and closes every tunnel gracefully (each call still bounded by its deadline). */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#retryAt = undefined;
    clearTimeout(this.#outlierTimer);
    this.#outlierTimer = undefined;
    this.#outlier = false;
    // Copies: a tunnel with no calls ends inside close(), and its callback removes it from these.
    for (const abort of [...this.#dials]) abort.abort();
    for (const tunnel of [...this.#open]) tunnel.close();
    for (const tunnel of [...this.#draining]) tunnel.close();
    this.#closeIfDone();
  }

  // Stores a new tunnel, then starts it: the frames that came with its 200 head may end it at once, and its ended
  // callback must find it stored (an ended tunnel never stays among the open ones).
  #adopt(dialed: Dialed): void {
    const tunnel = new Tunnel(dialed.socket, dialed.rest, this.#options, this.#label, this);
    this.#open.push(tunnel);
    this.#everOpened = true;
    this.#lastError = undefined;
    this.#retryAt = undefined;
    // connect() resolves on a handshake, even when the frames behind the head end the tunnel at once (as before).
    this.#host.endpointOpened(this);
    if (this.#emit !== undefined) {
      this.#sockets.set(tunnel, dialed.socket);
      this.#emit({ type: 'connected', target: this.target.display, address: dialed.socket.remoteAddress, port: dialed.socket.remotePort, tcpInfo: () => tunnel.tcpInfo() });
    }
    tunnel.start();
    // Frames behind the 200 head may have ended it at once: the ended callback has removed it then.
    if (this.#open.includes(tunnel)) {
      this.#host.endpointReady(this);
      this.start();
    }
  }

  get #label(): string {
    return this.#address === undefined ? this.target.display : `${this.target.display} (${this.#address})`;
  }

  // TunnelHost: the server sent goaway UNAVAILABLE; new calls go elsewhere while this tunnel's calls finish.
  tunnelDraining(tunnel: Tunnel, refused: Call[]): void {
    if (this.#remove(tunnel)) this.#draining.add(tunnel);
    this.#host.tunnelDraining(this, refused);
    this.#redialAfterLoss(tunnel);
  }

  tunnelEnded(tunnel: Tunnel, reason: RpcError | undefined, orphans: Call[], refused: Call[]): void {
    if (this.#emit !== undefined) {
      const socket = this.#sockets.get(tunnel);
      this.#emit({
        type: 'disconnected',
        target: this.target.display,
        reason: reason?.message ?? 'the tunnel closed',
        code: reason?.code,
        bytesIn: socket?.bytesRead ?? 0,
        bytesOut: socket?.bytesWritten ?? 0,
      });
    }
    const wasOpen = this.#remove(tunnel);
    this.#draining.delete(tunnel);
    if (reason !== undefined) this.#lastError = reason;
    this.#host.tunnelEnded(this, reason, orphans, refused);
    if (wasOpen) this.#redialAfterLoss(tunnel);
    this.#closeIfDone();
  }

  tunnelWritable(_tunnel: Tunnel): void {
    this.#host.tunnelWritable(this);
  }

  #remove(tunnel: Tunnel): boolean {
    const index = this.#open.indexOf(tunnel);
    if (index < 0) return false;
    this.#open.splice(index, 1);
    return true;
  }

  // A tunnel stopped taking calls. One that achieved something (answered a call or a ping, or stayed up
  // maxReconnectDelay ms) resets the backoff and is replaced at once; one that did not counts as a failure, so a
  // server that accepts and drops every tunnel gets the growing delay (and ejection) from the first redial on.
  #redialAfterLoss(tunnel: Tunnel): void {
    if (this.#closing) return;
    if (!this.#options.reconnect) {
      if (this.#open.length === 0) this.#closing = true;
      this.#closeIfDone();
      return;
    }
    if (tunnel.proved(this.#options.maxReconnectDelay)) {
      this.#failures = 0;
      this.#emit?.({ type: 'reconnecting', target: this.target.display, attempt: 1, delay: 0 });
      this.start();
      return;
    }
    this.#fail(this.#lastError ?? new RpcError('UNAVAILABLE', `the tunnel to ${this.#label} was lost before it answered anything`));
  }

  #dial(): void {
    const abort = new AbortController();
    this.#dials.add(abort);
    dial(this.target, this.#options, abort.signal).then(
      (dialed) => {
        this.#dials.delete(abort);
        if (this.#closing) {
          dialed.socket.destroy();
          this.#closeIfDone();
          return;
        }
        this.#adopt(dialed);
      },
      (error: unknown) => {
        this.#dials.delete(abort);
        if (this.#closing) {
          this.#closeIfDone();
          return;
        }
        this.#firstFailure = true;
        this.#fail(RpcError.from(error, 'UNAVAILABLE'));
      },
    ).catch((error: unknown) => {
      // A bug in the code above must not become an unhandled rejection: count it as a failed dial and go on.
      this.#dials.delete(abort);
      this.#failed(RpcError.from(error, 'INTERNAL'));
    });
  }

  #failed(error: RpcError): void {
    try {
      this.#fail(error);
    } catch {
      // The pool's handler failed as well; the next timer or socket event tries again.
    }
  }

  // Ejects the endpoint: no calls while it has no open tunnel, and a redial after the jittered backoff. With
  // reconnect off there is no redial: it closes once its tunnels are gone.
  #fail(error: RpcError): void {
    this.#failures++;
    this.#lastError = error;
    if (!this.#options.reconnect) {
      this.#host.endpointFailed(this, error);
      this.#closing = true;
      this.#closeIfDone();
      return;
    }
    // Ejected only when no tunnel is left; with others still open it just redials the lost one after the delay.
    if (this.#open.length === 0) this.#ejections++;
    if (this.#retryTimer === undefined) {
      // A refused dial is cheap and says the host is up: probe often, so a restarted server is used again within
      // a fraction of a second instead of after a backoff as long as the outage.
      const refused = (error.data as { errno?: unknown } | undefined)?.errno === 'ECONNREFUSED';
      const maxDelay = refused ? Math.min(this.#options.maxReconnectDelay, this.#options.maxRefusedReconnectDelay) : this.#options.maxReconnectDelay;
      const delay = ejectionDelay(this.#failures, Math.min(this.#options.minReconnectDelay, maxDelay), maxDelay, this.#random);
      this.#retryAt = Date.now() + delay;
      this.#emit?.({ type: 'reconnecting', target: this.target.display, attempt: this.#failures + 1, delay });
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        this.#retryAt = undefined;
        try {
          this.start();
        } catch (retryError) {
          this.#failed(RpcError.from(retryError, 'INTERNAL'));
        }
      }, delay);
      this.#retryTimer.unref();
    }
    this.#host.endpointFailed(this, error);
  }

  #closeIfDone(): void {
    if (this.#closed || !this.#closing) return;
    if (this.#open.some((tunnel) => !tunnel.ended) || this.#draining.size > 0 || this.#dials.size > 0) return;
    this.#closed = true;
    this.#host.endpointClosed(this);
  }
}
