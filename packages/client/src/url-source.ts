/**
 * UrlSource: one URL given to connect() and the endpoints it yields. A URL with an IP address or a unix socket
 * yields one endpoint; a host name yields one per address it resolves to (A and AAAA), looked up again at
 * resolveInterval and, no sooner than minResolveInterval, after an endpoint fails (it may have left the records).
 * Addresses that leave the answer are closed, new ones are added; a failed lookup keeps what resolved before.
 */
import { isIP } from 'node:net';
import { RpcError } from '@tunnelrpc/protocol';
import { chooseProxy } from './proxy-env.js';
import { ejectionDelay, resolveDelay } from './ejection.js';
import type { Endpoint } from './endpoint.js';
import type { ResolvedAddress, ResolvedClientOptions } from './options.js';
import type { DialTarget } from './target.js';

/** UrlSourceHost is what a source tells its pool. @internal */
export interface UrlSourceHost {
  /** close() was called on the pool: answers that come later are ignored. */
  readonly closing: boolean;
  /** Makes an endpoint for `target` (the source's target with `address` set), stored under `key`; the source starts it. */
  addEndpoint(source: UrlSource, key: string, target: DialTarget, address: string | undefined): Endpoint;
  /** Endpoints left the answer and were closed: the pool's candidates changed. */
  endpointsRetired(): void;
  /** A lookup failed; `source.failed` is set when the source has no endpoint. */
  resolveFailed(source: UrlSource, error: RpcError): void;
  /** A lookup finished after close(): the pool may be done. */
  settledWhileClosing(): void;
}

/** UrlSource keeps the endpoints of one URL. @internal */
export class UrlSource {
  readonly target: DialTarget;
  /** The host name to resolve; undefined for an IP address or a unix socket. */
  readonly hostname: string | undefined;
  /** Its endpoints by address ('' for the one endpoint of a URL that is not resolved). */
  readonly endpoints = new Map<string, Endpoint>();
  /** A lookup is under way. */
  resolving = false;
  /** The last resolution failed while the source had no endpoint. */
  failed: RpcError | undefined;
  readonly #options: ResolvedClientOptions;
  readonly #host: UrlSourceHost;
  readonly #random: () => number;
  #resolvedAt = 0;
  #resolveFailures = 0;
  #resolveTimer: NodeJS.Timeout | undefined;
  #resolveDue = 0;

  constructor(target: DialTarget, options: ResolvedClientOptions, host: UrlSourceHost, random: () => number) {
    this.target = target;
    this.hostname = target.kind === 'unix' || isIP(target.host) !== 0 || throughProxy(target, options) ? undefined : target.host;
    this.#options = options;
    this.#host = host;
    this.#random = random;
  }

  /** start makes the endpoint of an address URL, or resolves the host name. */
  start(): void {
    if (this.hostname !== undefined) this.#resolve(this.hostname);
    else this.#host.addEndpoint(this, '', this.target, undefined).start();
  }

  /** stop cancels the next resolution; one under way is not waited for (it may never answer). */
  stop(): void {
    clearTimeout(this.#resolveTimer);
    this.#resolveTimer = undefined;
  }

  /**
   * scheduleResolve plans the next lookup: at resolveInterval after the last one, or after a failure (`failed`) no
   * sooner than minResolveInterval after it. An earlier plan stands; a later one is brought forward.
   */
  scheduleResolve(failed: boolean): void {
    const hostname = this.hostname;
    if (this.#host.closing || !this.#options.reconnect || hostname === undefined || this.resolving) return;
    const { resolveInterval, minResolveInterval } = this.#options;
    let delay = resolveDelay(this.#resolvedAt, Date.now(), failed, resolveInterval, minResolveInterval);
    if (delay === undefined) return;
    // A name that did not resolve at all is retried with the dial backoff, at least minResolveInterval apart.
    if (this.failed !== undefined) {
      delay = Math.max(delay, ejectionDelay(this.#resolveFailures, this.#options.minReconnectDelay, this.#options.maxReconnectDelay, this.#random));
    }
    const due = Date.now() + delay;
    if (this.#resolveTimer !== undefined) {
      if (this.#resolveDue <= due) return;
      clearTimeout(this.#resolveTimer);
    }
    this.#resolveDue = due;
    this.#resolveTimer = setTimeout(() => {
      this.#resolveTimer = undefined;
      this.#resolve(hostname);
    }, delay);
    this.#resolveTimer.unref();
  }

  #resolve(hostname: string): void {
    this.resolving = true;
    let lookup: Promise<readonly ResolvedAddress[]>;
    try {
      lookup = Promise.resolve(this.#options.lookup(hostname));
    } catch (error) {
      lookup = Promise.reject(error);
    }
    lookup
      .then(
        (addresses) => this.#resolved(addresses),
        (error: unknown) => this.#resolveFailed(error),
      )
      .catch((error: unknown) => {
        // A bug above must not become an unhandled rejection: count it as a failed resolution.
        try {
          this.#resolveFailed(error);
        } catch {
          // Nothing more can be done here; the periodic refresh or the next failure tries again.
        }
      });
  }

  #resolved(answer: readonly ResolvedAddress[]): void {
    this.resolving = false;
    this.#resolvedAt = Date.now();
    if (this.#host.closing) {
      this.#host.settledWhileClosing();
      return;
    }
    const addresses = checkAnswer(answer);
    if (addresses === undefined || addresses.length === 0) {
      this.#resolveFailed(new Error(addresses === undefined ? 'the lookup option returned something other than an array of { address } objects with IP addresses' : 'no addresses'));
      return;
    }
    this.failed = undefined;
    this.#resolveFailures = 0;
    const seen = new Set(addresses);
    let retired = false;
    for (const [address, endpoint] of this.endpoints) {
      if (seen.has(address)) continue;
      endpoint.close();
      retired = true;
    }
    if (retired) this.#host.endpointsRetired();
    for (const address of addresses) {
      if (this.endpoints.has(address)) continue;
      const target = this.target.kind === 'unix' ? this.target : { ...this.target, address };
      this.#host.addEndpoint(this, address, target, address).start();
    }
    this.scheduleResolve(false);
  }

  #resolveFailed(error: unknown): void {
    this.resolving = false;
    this.#resolvedAt = Date.now();
    if (this.#host.closing) {
      this.#host.settledWhileClosing();
      return;
    }
    this.#resolveFailures++;
    const errno = (error as NodeJS.ErrnoException | undefined)?.code;
    const why = errno ?? (error instanceof Error ? error.message : String(error));
    const rpc = new RpcError('UNAVAILABLE', `cannot connect to ${this.target.display}: ${why} (the host name does not resolve)`, errno === undefined ? undefined : { errno }, { cause: error });
    // Addresses resolved before are kept: a DNS hiccup must not take down a fleet that answers.
    if (this.endpoints.size === 0) this.failed = rpc;
    this.#host.resolveFailed(this, rpc);
    this.scheduleResolve(true);
  }
}

// The addresses of a lookup answer, deduplicated, or undefined when it is not an array of { address } with IPs.
function checkAnswer(answer: unknown): string[] | undefined {
  if (!Array.isArray(answer)) return undefined;
  const out: string[] = [];
  for (const entry of answer as unknown[]) {
    const address: unknown = typeof entry === 'object' && entry !== null ? (entry as { address?: unknown }).address : undefined;
    if (typeof address !== 'string' || isIP(address) === 0) return undefined;
    if (!out.includes(address)) out.push(address);
  }
  return out;
}

// A target reached through a forward proxy is resolved by the proxy (it may be a name only the proxy's network
// knows): the pool keeps it as one endpoint and does not look it up itself.
function throughProxy(target: DialTarget, options: ResolvedClientOptions): boolean {
  if (target.kind === 'unix') return false;
  try {
    return chooseProxy({ tls: target.kind === 'tls', host: target.host, port: target.port }, options.proxy, process.env) !== undefined;
  } catch {
    // A bad proxy setting fails the dial itself, with its message.
    return false;
  }
}
