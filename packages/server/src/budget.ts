/**
 * The server-wide budget of what peers make the server hold: running calls and open streams (how many), and the
 * decoded values and frame bytes of their params and of stream messages received and not yet taken by a handler.
 * Past the hard caps every request is refused; before that, once half of a cap is in use, a connection (and, when
 * addresses are real, a source address) may hold no more than a fair share of it, so that one peer cannot take the
 * whole server while others wait. The last eighth of each cap is kept for holders that hold nothing yet, so that a
 * newcomer is served while others hold long-lived slots (streams, slow calls). Pure bookkeeping: no sockets, no
 * timers.
 */
import { RpcError } from '@tunnelrpc/protocol';

/** Cost is what one running call or notification holds of the budget. */
export interface Cost {
  /** Decoded MessagePack values in its frame. */
  readonly items: number;
  /** Bytes of its frame payload: an upper bound on the strings and byte arrays it holds, counted at 1x. */
  readonly bytes: number;
}

/** BudgetCaps are the hard caps of the budget. */
export interface BudgetCaps {
  readonly maxCallsInFlight: number;
  readonly maxItemsInFlight: number;
  readonly maxBytesInFlight: number;
}

/** Account is what one owner (a connection, or a source address) holds. @internal */
export class Account {
  calls = 0;
  items = 0;
  bytes = 0;
  /** Shares taken and not yet given back (calls, and stream messages, which hold no call slot). */
  holds = 0;
}

// The share of each cap kept for holders that hold nothing: 1/8.
const NEWCOMER_RESERVE = 1 / 8;

type Dimension = 'calls' | 'items' | 'bytes';

/** Level is one tier of owners (connections, or addresses) with the count of those holding anything. */
class Level {
  active = 0;

  take(account: Account, cost: Cost, calls: number): void {
    if (account.holds === 0) this.active++;
    account.holds++;
    account.calls += calls;
    account.items += cost.items;
    account.bytes += cost.bytes;
  }

  give(account: Account, cost: Cost, calls: number): void {
    account.holds--;
    account.calls -= calls;
    account.items -= cost.items;
    account.bytes -= cost.bytes;
    if (account.holds === 0) this.active--;
  }
}

/**
 * FairBudget admits calls against the caps and the fair shares. A refusal is RESOURCE_EXHAUSTED: the call did not
 * run. @internal
 */
export class FairBudget {
  readonly #caps: BudgetCaps;
  readonly #total = new Account();
  readonly #connections = new Level();
  readonly #addresses = new Level();

  constructor(caps: BudgetCaps) {
    this.#caps = caps;
  }

  /**
   * acquire takes `cost` for a call (calls 1) or for a stream message held for its handler (calls 0) on
   * `connection` from `address` (undefined when addresses are not shared out), or returns why it may not.
   */
  acquire(connection: Account, address: Account | undefined, cost: Cost, calls = 1): RpcError | undefined {
    const refusal =
      (calls === 0 ? undefined : this.#check('calls', calls, connection, address)) ??
      this.#check('items', cost.items, connection, address) ??
      this.#check('bytes', cost.bytes, connection, address);
    if (refusal !== undefined) return refusal;
    this.#total.calls += calls;
    this.#total.items += cost.items;
    this.#total.bytes += cost.bytes;
    this.#connections.take(connection, cost, calls);
    if (address !== undefined) this.#addresses.take(address, cost, calls);
    return undefined;
  }

  /** release gives back what acquire took for the same connection, address, cost and calls. */
  release(connection: Account, address: Account | undefined, cost: Cost, calls = 1): void {
    this.#total.calls -= calls;
    this.#total.items -= cost.items;
    this.#total.bytes -= cost.bytes;
    this.#connections.give(connection, cost, calls);
    if (address !== undefined) this.#addresses.give(address, cost, calls);
  }

  #check(dimension: Dimension, amount: number, connection: Account, address: Account | undefined): RpcError | undefined {
    const cap = this.#capOf(dimension);
    const total = this.#total[dimension];
    if (total + amount > cap) return this.#refusal(dimension, cap, 'the server');
    // Uncontended: anyone may take from the first half of the cap.
    if (total + amount <= cap / 2) return undefined;
    // The top of the cap is for holders that hold nothing yet: a newcomer always finds a slot, however long the
    // others hold theirs.
    if (total + amount > cap * (1 - NEWCOMER_RESERVE) && (address ?? connection).holds > 0) {
      return this.#refusal(dimension, cap, address !== undefined ? 'its source address' : 'this connection');
    }
    if (address !== undefined && !this.#withinShare(dimension, amount, address, this.#addresses, cap)) {
      return this.#refusal(dimension, cap, 'its source address');
    }
    if (!this.#withinShare(dimension, amount, connection, this.#connections, cap)) {
      return this.#refusal(dimension, cap, 'this connection');
    }
    return undefined;
  }

  // Max-min fairness with room for one more owner: with n other active owners, each may hold cap / (n + 2). An owner
  // alone stops at half the cap, so a newcomer always finds room; an owner holding more than its share is refused
  // until it drops below, and what it frees goes to the others. An owner holding nothing may always take one call,
  // however large, while the hard cap allows it.
  #withinShare(dimension: Dimension, amount: number, account: Account, level: Level, cap: number): boolean {
    const held = account[dimension];
    if (account.holds === 0) return true;
    const others = level.active - 1;
    return held + amount <= cap / (others + 2);
  }

  #capOf(dimension: Dimension): number {
    if (dimension === 'calls') return this.#caps.maxCallsInFlight;
    if (dimension === 'items') return this.#caps.maxItemsInFlight;
    return this.#caps.maxBytesInFlight;
  }

  #refusal(dimension: Dimension, cap: number, holder: string): RpcError {
    const option = dimension === 'calls' ? 'maxCallsInFlight' : dimension === 'items' ? 'maxItemsInFlight' : 'maxBytesInFlight';
    const what = dimension === 'calls' ? 'calls' : dimension === 'items' ? 'decoded values' : 'bytes of params';
    const why =
      holder === 'the server'
        ? `the server is at ${option} ${cap} ${what} in flight`
        : `${holder} holds more than its fair share of ${option} ${cap} ${what} while others wait`;
    return new RpcError('RESOURCE_EXHAUSTED', `${why}; the call did not run; retry with backoff`, { mayHaveRun: false, limit: option });
  }
}
