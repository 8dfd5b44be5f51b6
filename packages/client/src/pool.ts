/**
 * Pool: the endpoints one client spreads its calls over. It makes the endpoints of the URLs given to connect()
 * (url-source.ts: one per address a host name resolves to), routes each call to an open tunnel (picker.ts), ejects
 * endpoints whose answers stand out (outlier.ts), and reports what its endpoints' tunnels hand back to the client,
 * which decides retries. One URL with an address is a pool of one endpoint (undici agent.js:18-22).
 */
import { RpcError } from '@tunnelrpc/protocol';
import type { Call } from './call.js';
import { AttemptWatches } from './attempt-watch.js';
import { Picker } from './picker.js';
import { mayEject, outliersOf } from './outlier.js';
import { Endpoint, type EndpointHost, type EndpointSnapshot } from './endpoint.js';
import type { ResolvedClientOptions } from './options.js';
import type { DialTarget } from './target.js';
import type { Tunnel } from './tunnel.js';
import { UrlSource, type UrlSourceHost } from './url-source.js';

/** PoolHost is what the pool tells its client. @internal */
export interface PoolHost {
  /** A tunnel opened or drained its socket: calls waiting may be sent. */
  tunnelReady(): void;
  /** As TunnelHost.tunnelDraining: `refused` did not run and may go to another tunnel. */
  tunnelDraining(refused: Call[]): void;
  /** As TunnelHost.tunnelEnded. */
  tunnelEnded(reason: RpcError | undefined, orphans: Call[], refused: Call[], url: string): void;
  /** A dial or a DNS resolution failed. */
  dialFailed(error: RpcError): void;
  /** Every endpoint is closed (close(), or reconnect off and every tunnel gone). */
  poolClosed(): void;
  /** An idempotent call waited attemptTimeout on its tunnel and was cancelled there: send it again elsewhere. */
  attemptTimedOut(call: Call): void;
}

// Dial errors that another try will not fix: calls waiting for a tunnel fail with them once every endpoint says so.
const PERMANENT_REFUSALS: ReadonlySet<string> = new Set(['UNAUTHENTICATED', 'PERMISSION_DENIED', 'UNIMPLEMENTED', 'INVALID_ARGUMENT', 'FAILED_PRECONDITION']);

/** Pool routes calls over the tunnels of every endpoint. @internal */
export class Pool implements EndpointHost {
  readonly #options: ResolvedClientOptions;
  readonly #host: PoolHost;
  readonly #random: () => number;
  readonly #sources: UrlSource[];
  readonly #sourceOf = new Map<Endpoint, UrlSource>();
  // Every live endpoint, in order of creation; closed ones removed from DNS leave it.
  #endpoints: Endpoint[] = [];
  // The candidate tunnels, gathered again after each event that changes them (markStale), not per call.
  readonly #picker: Picker<Tunnel, Endpoint>;
  // Calls waiting for answers on every tunnel, and ids in use (those plus abandoned ones): kept by the tunnels'
  // events so that admission and pendingCalls do not walk every tunnel.
  #callCount = 0;
  #idCount = 0;
  #closing = false;
  #closed = false;
  #lastError: RpcError | undefined;
  #ready: { resolve: () => void; reject: (error: RpcError) => void } | undefined;
  #everReady = false;
  // Compares the endpoints' answers every outlierDetection.interval (outlier.ts).
  #outlierTimer: NodeJS.Timeout | undefined;
  readonly #attempts: AttemptWatches;

  constructor(targets: readonly DialTarget[], options: ResolvedClientOptions, host: PoolHost, random: () => number = Math.random) {
    this.#options = options;
    this.#host = host;
    this.#random = random;
    const sourceHost = this.#sourceHost();
    this.#sources = targets.map((target) => new UrlSource(target, options, sourceHost, random));
    this.#picker = new Picker<Tunnel, Endpoint>(() => this.#endpoints, options, random);
    this.#attempts = new AttemptWatches(options.attemptTimeout, options.maxRetries, (call) => this.#host.attemptTimedOut(call));
  }

  /** start creates the endpoints of address URLs and resolves host names; every endpoint starts dialling. */
  start(): void {
    const detection = this.#options.outlierDetection;
    if (detection.enabled) {
      this.#outlierTimer = setInterval(() => {
        try {
          this.#compareOutcomes();
        } catch {
          // A bug in the comparison must not escape a timer; the next interval tries again.
        }
      }, detection.interval);
      this.#outlierTimer.unref();
    }
    for (const source of this.#sources) source.start();
  }

  /**
   * ready resolves once a tunnel is open, and rejects once every URL has failed its first try (its dial, or the
   * resolution of its host name): with that error for one endpoint, else with one naming each.
   */
  ready(): Promise<void> {
    if (this.#everReady) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#ready = { resolve, reject };
      this.#checkFirstTries();
    });
  }

  /** hasAccepting tells whether some tunnel takes new calls now. */
  get hasAccepting(): boolean {
    return this.#picker.openCount > 0;
  }

  /** canOpen tells whether a tunnel may still open: reconnect is on, or a dial or a resolution is under way. */
  get canOpen(): boolean {
    if (this.#closing) return false;
    if (this.#options.reconnect) return true;
    return this.#endpoints.some((endpoint) => endpoint.dialing) || this.#sources.some((source) => source.resolving);
  }

  /** callCount counts calls waiting for their answers on every tunnel, draining ones included. */
  get callCount(): number {
    return this.#callCount;
  }

  /** load counts ids in use on every tunnel: calls waiting for answers plus abandoned ones. */
  get load(): number {
    return this.#idCount;
  }

  get lastError(): RpcError | undefined {
    return this.#lastError;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** snapshot lists what each endpoint is doing, frozen. */
  snapshot(): readonly EndpointSnapshot[] {
    return Object.freeze(this.#endpoints.map((endpoint) => endpoint.snapshot()));
  }

  /**
   * trySend writes a call (or notification) to the tunnel the balancer picks among those taking calls and not
   * holding more than maxWriteBuffer unsent bytes. Returns false when none can take it now (the call waits), else
   * what the tunnel returned: undefined when sent, or the error that keeps this call from being sent.
   */
  trySend(call: Call, timeout?: number): RpcError | undefined | false {
    const tunnel = this.#picker.pick();
    if (tunnel === undefined) return false;
    const owner = this.#picker.owner!;
    if (call.notification) {
      const refused = tunnel.notify(call);
      if (refused === undefined) owner.countSent();
      return refused;
    }
    const refused = tunnel.send(call, timeout);
    if (refused === undefined) {
      owner.countSent();
      this.#callCount++;
      this.#idCount++;
      this.#attempts.sent(call, tunnel, owner);
    }
    return refused;
  }

  // Every interval: the endpoints whose answers stand out (outliersOf) are ejected, worst first, within
  // maxEjectionPercent.
  #compareOutcomes(): void {
    const endpoints = this.#endpoints.filter((endpoint) => !endpoint.closed);
    const counts = endpoints.map((endpoint) => endpoint.takeInterval());
    for (const index of outliersOf(counts, this.#options.outlierDetection)) this.#ejectIfAllowed(endpoints[index]!);
  }

  #ejectIfAllowed(endpoint: Endpoint): void {
    if (endpoint.outlier || this.#closing) return;
    let ejected = 0;
    let total = 0;
    for (const each of this.#endpoints) {
      if (each.closed) continue;
      total++;
      if (each.outlier) ejected++;
    }
    if (!mayEject(ejected, total, this.#options.outlierDetection.maxEjectionPercent)) return;
    endpoint.ejectOutlier();
    this.#picker.markStale();
  }

  /**
   * permanentRefusal returns the dial error another try will not fix (401, 403, 404, a bad headers function) when
   * every endpoint has no tunnel and last failed with one; undefined otherwise.
   */
  permanentRefusal(): RpcError | undefined {
    if (this.#endpoints.length === 0 || this.hasAccepting) return undefined;
    let refusal: RpcError | undefined;
    for (const endpoint of this.#endpoints) {
      const error = endpoint.lastError;
      if (error === undefined || !PERMANENT_REFUSALS.has(error.code)) return undefined;
      refusal ??= error;
    }
    return refusal;
  }

  /** close stops dialling and resolving and closes every tunnel gracefully; poolClosed follows when all are gone. */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    clearInterval(this.#outlierTimer);
    this.#outlierTimer = undefined;
    this.#attempts.close();
    for (const source of this.#sources) source.stop();
    this.#ready?.reject(new RpcError('UNAVAILABLE', 'close() was called on the client before its first tunnel opened'));
    this.#ready = undefined;
    for (const endpoint of [...this.#endpoints]) endpoint.close();
    // Their tunnels stopped accepting, and no endpoint is an outlier any more.
    this.#picker.markStale();
    this.#closeIfDone();
  }

  // EndpointHost
  endpointOpened(_endpoint: Endpoint): void {
    this.#picker.markStale();
    this.#everReady = true;
    this.#ready?.resolve();
    this.#ready = undefined;
  }

  endpointReady(_endpoint: Endpoint): void {
    this.#host.tunnelReady();
  }

  tunnelDraining(_endpoint: Endpoint, refused: Call[]): void {
    this.#picker.markStale();
    // Refused calls left the tunnel; their ids stay reserved there.
    this.#callCount -= refused.length;
    this.#host.tunnelDraining(refused);
  }

  tunnelEnded(endpoint: Endpoint, reason: RpcError | undefined, orphans: Call[], refused: Call[]): void {
    this.#picker.markStale();
    const released = orphans.length + refused.length;
    this.#callCount -= released;
    this.#idCount -= released;
    this.#host.tunnelEnded(reason, orphans, refused, endpoint.target.display);
  }

  callsReleased(calls: number, ids: number): void {
    this.#callCount -= calls;
    this.#idCount -= ids;
  }

  tunnelWritable(_endpoint: Endpoint): void {
    this.#host.tunnelReady();
  }

  endpointFailed(endpoint: Endpoint, error: RpcError): void {
    this.#lastError = error;
    const source = this.#sourceOf.get(endpoint);
    // A failing address may have left the host name's records: look again, no sooner than minResolveInterval.
    source?.scheduleResolve(true);
    this.#checkFirstTries();
    this.#host.dialFailed(error);
  }

  outlierSuspected(endpoint: Endpoint): void {
    this.#ejectIfAllowed(endpoint);
  }

  callEnded(call: Call): void {
    this.#attempts.ended(call);
  }

  outlierReturned(_endpoint: Endpoint): void {
    this.#picker.markStale();
    this.#host.tunnelReady();
  }

  // Another tunnel, to this endpoint too: behind a balancer or a cluster, one frozen worker sits beside live ones.
  othersAnsweredSince(tunnel: Tunnel, since: number): boolean {
    for (const each of this.#endpoints) if (each.answeredSince(since, tunnel)) return true;
    return false;
  }

  endpointClosed(endpoint: Endpoint): void {
    this.#picker.markStale();
    const source = this.#sourceOf.get(endpoint);
    // An address that left the DNS answer goes away; after close(), or with reconnect off, it stays listed as closed.
    if (!this.#closing && this.#options.reconnect && source !== undefined) {
      for (const [key, each] of source.endpoints) if (each === endpoint) source.endpoints.delete(key);
      this.#endpoints = this.#endpoints.filter((each) => each !== endpoint);
      this.#sourceOf.delete(endpoint);
      this.#watchIfMany();
    }
    this.#closeIfDone();
  }

  #sourceHost(): UrlSourceHost {
    const pool = this;
    return {
      get closing(): boolean {
        return pool.#closing;
      },
      addEndpoint: (source, key, target, address) => this.#addEndpoint(source, key, target, address),
      endpointsRetired: () => this.#picker.markStale(),
      resolveFailed: (source, error) => {
        this.#lastError = error;
        if (source.endpoints.size > 0) return;
        this.#checkFirstTries();
        this.#host.dialFailed(error);
        if (!this.#options.reconnect) this.#closeIfDone();
      },
      settledWhileClosing: () => this.#closeIfDone(),
    };
  }

  #addEndpoint(source: UrlSource, key: string, target: DialTarget, address: string | undefined): Endpoint {
    const endpoint = new Endpoint(target, address, this.#options, this, this.#random);
    source.endpoints.set(key, endpoint);
    this.#sourceOf.set(endpoint, source);
    this.#endpoints.push(endpoint);
    this.#picker.markStale();
    this.#watchIfMany();
    return endpoint;
  }

  // Answers are measured only while there are endpoints to compare (Endpoint.watched).
  #watchIfMany(): void {
    const many = this.#endpoints.length > 1;
    for (const endpoint of this.#endpoints) endpoint.watched = many;
  }

  // Rejects ready() once every URL has had its first try and none opened a tunnel.
  #checkFirstTries(): void {
    if (this.#ready === undefined || this.#everReady) return;
    const errors: RpcError[] = [];
    for (const source of this.#sources) {
      if (source.endpoints.size === 0) {
        if (source.failed === undefined) return;
        errors.push(source.failed);
        continue;
      }
      for (const endpoint of source.endpoints.values()) {
        if (!endpoint.settledFirst) return;
        errors.push(endpoint.lastError ?? new RpcError('UNAVAILABLE', `no tunnel to ${endpoint.target.display} opened`));
      }
    }
    const ready = this.#ready;
    this.#ready = undefined;
    if (errors.length === 1) {
      ready.reject(errors[0]!);
      return;
    }
    const code = errors.every((error) => error.code === errors[0]!.code) ? errors[0]!.code : 'UNAVAILABLE';
    ready.reject(new RpcError(code, `none of ${errors.length} endpoints could be reached: ${errors.map((error) => error.message).join('; ')}`, { errors: errors.map((error) => ({ code: error.code, message: error.message })) }));
  }

  // Closed after close(), or with reconnect off once every endpoint is gone and no name is being resolved.
  #closeIfDone(): void {
    if (this.#closed) return;
    if (!this.#closing && this.#options.reconnect) return;
    if (!this.#endpoints.every((endpoint) => endpoint.closed)) return;
    // After close() a lookup still under way is not waited for (it may never answer); its answer is ignored.
    if (!this.#closing && this.#sources.some((source) => source.resolving)) return;
    this.#closed = true;
    this.#host.poolClosed();
  }
}
