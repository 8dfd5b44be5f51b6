/**
 * Picker: which open tunnel takes the next call, in O(1) per call. The candidates (the accepting tunnels of
 * endpoints in service, and apart from them those of outlier endpoints) change only when a tunnel or an endpoint
 * changes state, so they are gathered then (lazily, at the first pick after markStale) instead of walked on every
 * call, as grpc-js builds a new Picker when a subchannel's state changes. Per call: power of two choices over the
 * tunnels in service (balancer.ts). Unsent bytes change with every write, so maxWriteBuffer is read at pick time: a
 * drawn tunnel over it sends that pick down a scan of the candidates, the rare path. Outliers take a call only when
 * no tunnel in service can: a pool never refuses everything for its answers.
 */
import { drawTwo, weighedLoad } from './balancer.js';

/** PickerTunnel is what the picker reads of a tunnel. @internal */
export interface PickerTunnel {
  /** New calls may be sent on it. */
  readonly accepting: boolean;
  /** Bytes queued in its socket and not yet sent. */
  readonly unsentBytes: number;
  /** Ids in use on it: calls waiting for answers plus abandoned ones. */
  readonly load: number;
}

/** PickerEndpoint is what the picker reads of an endpoint. @internal */
export interface PickerEndpoint<T extends PickerTunnel> {
  /** Its open tunnels (some may have stopped accepting while the endpoint closes). */
  readonly open: readonly T[];
  /** Ejected for its answers: its tunnels are the last resort. */
  readonly outlier: boolean;
  /** Its latency estimate at `now` (performance.now()), for the latency-aware pick. */
  latencyCost(now: number): number;
}

/** PickerOptions are the pool options the pick follows. @internal */
export interface PickerOptions {
  /** A tunnel with more unsent bytes than this takes no new call until its socket drains. */
  readonly maxWriteBuffer: number;
  /** Weigh each side's load by its endpoint's peak-EWMA latency. */
  readonly latencyAware: boolean;
}

/** Picker holds the pool's candidate tunnels and picks one per call. @internal */
export class Picker<T extends PickerTunnel, E extends PickerEndpoint<T>> {
  readonly #endpoints: () => readonly E[];
  readonly #options: PickerOptions;
  readonly #random: () => number;
  #stale = true;
  // Tunnels of endpoints in service that accepted calls when the set was gathered, with their owners.
  readonly #tunnels: T[] = [];
  readonly #owners: E[] = [];
  // The same for outlier endpoints.
  readonly #spares: T[] = [];
  readonly #spareOwners: E[] = [];
  // The rare path's scratch lists: the tunnels in service under maxWriteBuffer at that pick. Reused, never kept.
  readonly #writable: T[] = [];
  readonly #writableOwners: E[] = [];
  #openCount = 0;
  #owner: E | undefined;

  /** `endpoints` is read at each rebuild; `random` returns a number in [0, 1), as Math.random does. */
  constructor(endpoints: () => readonly E[], options: PickerOptions, random: () => number) {
    this.#endpoints = endpoints;
    this.#options = options;
    this.#random = random;
  }

  /**
   * markStale says the candidate set may have changed (a tunnel opened, drained, ended or stopped accepting; an
   * endpoint was added, closed, ejected for its answers or returned): the next pick gathers it again.
   */
  markStale(): void {
    this.#stale = true;
  }

  /** openCount counts the open tunnels of every endpoint, outliers and closing ones included. */
  get openCount(): number {
    if (this.#stale) this.#rebuild();
    return this.#openCount;
  }

  /** owner is the endpoint of the tunnel the last pick returned. */
  get owner(): E | undefined {
    return this.#owner;
  }

  /**
   * pick returns the tunnel for the next call, or undefined when none can take it now (each is closing, or holds
   * more than maxWriteBuffer unsent bytes); its endpoint is then `owner`.
   */
  pick(): T | undefined {
    if (this.#stale) this.#rebuild();
    const tunnels = this.#tunnels;
    const count = tunnels.length;
    if (count >= 2) {
      const pair = drawTwo(count, this.#random);
      const first = pair[0];
      const second = pair[1];
      if (!this.#takes(tunnels[first]!) || !this.#takes(tunnels[second]!)) return this.#scan();
      return this.#chosen(tunnels, this.#owners, first, second);
    }
    if (count === 1 && this.#takes(tunnels[0]!)) {
      this.#owner = this.#owners[0];
      return tunnels[0];
    }
    return this.#spare();
  }

  // A tunnel takes a call when it accepts and its socket is not backed up. One that stopped accepting without an
  // event the pool saw is dropped at the next rebuild.
  #takes(tunnel: T): boolean {
    if (!tunnel.accepting) {
      this.#stale = true;
      return false;
    }
    return tunnel.unsentBytes <= this.#options.maxWriteBuffer;
  }

  // The pick of today's writable tunnels, exactly as over the whole list: a drawn pair both writable is a uniform
  // pair of the writable ones, and so is this.
  #scan(): T | undefined {
    const writable = this.#writable;
    const owners = this.#writableOwners;
    const tunnels = this.#tunnels;
    for (let i = 0; i < tunnels.length; i++) {
      if (!this.#takes(tunnels[i]!)) continue;
      writable.push(tunnels[i]!);
      owners.push(this.#owners[i]!);
    }
    let tunnel: T | undefined;
    if (writable.length >= 2) {
      const pair = drawTwo(writable.length, this.#random);
      tunnel = this.#chosen(writable, owners, pair[0], pair[1]);
    } else if (writable.length === 1) {
      tunnel = writable[0];
      this.#owner = owners[0];
    }
    writable.length = 0;
    owners.length = 0;
    return tunnel ?? this.#spare();
  }

  // The first outlier tunnel that can take the call, in the order of the endpoints.
  #spare(): T | undefined {
    const spares = this.#spares;
    for (let i = 0; i < spares.length; i++) {
      if (!this.#takes(spares[i]!)) continue;
      this.#owner = this.#spareOwners[i];
      return spares[i];
    }
    this.#owner = undefined;
    return undefined;
  }

  // Power of two choices: fewer ids in use wins, each weighed by its endpoint's peak-EWMA latency when latencyAware
  // is on. Ties go to the first drawn.
  #chosen(tunnels: readonly T[], owners: readonly E[], first: number, second: number): T {
    let index = first;
    if (!this.#options.latencyAware) {
      if (tunnels[second]!.load < tunnels[first]!.load) index = second;
    } else {
      const now = performance.now();
      const a = weighedLoad(tunnels[first]!.load, owners[first]!.latencyCost(now));
      const b = weighedLoad(tunnels[second]!.load, owners[second]!.latencyCost(now));
      if (b < a) index = second;
    }
    this.#owner = owners[index];
    return tunnels[index]!;
  }

  #rebuild(): void {
    this.#stale = false;
    this.#tunnels.length = 0;
    this.#owners.length = 0;
    this.#spares.length = 0;
    this.#spareOwners.length = 0;
    let open = 0;
    for (const endpoint of this.#endpoints()) {
      open += endpoint.open.length;
      const tunnels = endpoint.outlier ? this.#spares : this.#tunnels;
      const owners = endpoint.outlier ? this.#spareOwners : this.#owners;
      for (const tunnel of endpoint.open) {
        if (!tunnel.accepting) continue;
        tunnels.push(tunnel);
        owners.push(endpoint);
      }
    }
    this.#openCount = open;
  }
}
