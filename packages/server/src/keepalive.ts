/**
 * Keepalive for one server connection, both ways (the mirror of the client's liveness.ts): pinging a client that
 * has calls running and has gone silent, declaring it dead when the ping gets nothing back, and gRPC's enforcement
 * of the client's own pings (too many with nothing running cost us CPU for nothing: strikes, then a goaway). Pure
 * bookkeeping: the connection reads the clock once per chunk and writes what this decides.
 */
import { RpcError } from '@tunnelrpc/protocol';

/** KeepaliveLimits are the options keepalive follows. @internal */
export interface KeepaliveLimits {
  readonly keepaliveInterval: number;
  readonly keepaliveTimeout: number;
  readonly minPingInterval: number;
  readonly maxPingStrikes: number;
}

/** Keepalive decides when to ping the client, when it is dead, and when its pings are too many. @internal */
export class Keepalive {
  readonly #limits: KeepaliveLimits;
  #lastReceived: number;
  #pingSentAt = 0;
  #lastPingAt = 0;
  #pingStrikes = 0;

  constructor(limits: KeepaliveLimits, now: number) {
    this.#limits = limits;
    this.#lastReceived = now;
  }

  /** received notes bytes from the client at `now`: it is alive. */
  received(now: number): void {
    this.#lastReceived = now;
  }

  /** callArrived forgives the client's ping strikes: a client with work to send may ping as it likes. */
  callArrived(): void {
    this.#pingStrikes = 0;
  }

  /**
   * check runs from the sweep while calls or streams run: 'ping' when a ping should go out now (its data is `now`),
   * the error that ends the connection when the last ping got nothing back, undefined otherwise.
   */
  check(now: number): 'ping' | RpcError | undefined {
    const { keepaliveInterval, keepaliveTimeout } = this.#limits;
    if (keepaliveInterval <= 0) return undefined;
    if (this.#pingSentAt > 0 && this.#lastReceived < this.#pingSentAt) {
      if (now - this.#pingSentAt < keepaliveTimeout) return undefined;
      return new RpcError('UNAVAILABLE', `client did not answer a keepalive ping within keepaliveTimeout ${keepaliveTimeout} ms`);
    }
    if (now - this.#lastReceived < keepaliveInterval) return undefined;
    this.#pingSentAt = now;
    return 'ping';
  }

  /**
   * peerPinged judges a ping from the client at `now`: pings with no call running may come once per
   * minPingInterval; past maxPingStrikes sooner ones, the error to send as goaway.
   */
  peerPinged(now: number, callsRunning: boolean): RpcError | undefined {
    const { minPingInterval, maxPingStrikes } = this.#limits;
    if (minPingInterval > 0 && !callsRunning && now - this.#lastPingAt < minPingInterval) {
      if (++this.#pingStrikes > maxPingStrikes) {
        return new RpcError('RESOURCE_EXHAUSTED', `too many pings: more than ${maxPingStrikes} sooner than minPingInterval ${minPingInterval} ms with no call running; ping less often`);
      }
    }
    this.#lastPingAt = now;
    return undefined;
  }
}
