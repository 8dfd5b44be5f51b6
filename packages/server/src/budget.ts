/**
 * The server-wide budget of running calls: how many, how many decoded values their params hold, and how many
 * frame bytes. Past the hard caps every request is refused; before that, once half of a cap is in use, a
 * connection (and, when addresses are real, a source address) may hold no more than a fair share of it, so that
 * one peer cannot take the whole server while others wait (issue 7 section 4). Pure bookkeeping: no sockets, no
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
}

type Dimension = 'calls' | 'items' | 'bytes';

/** Level is one tier of owners (connections, or addresses) with the count of those holding anything. */
class Level {
  active = 0;

  take(account: Account, cost: Cost): void {
    if (account.calls === 0) this.active++;
    account.calls++;
    account.items += cost.items;
    account.bytes += cost.bytes;
  }

  give(account: Account, cost: Cost): void {
    account.calls--;
    account.items -= cost.items;
    account.bytes -= cost.bytes;
    if (account.calls === 0) this.active--;
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
   * acquire takes `cost` for a call on `connection` from `address` (undefined when addresses are not shared out),
   * or returns why it may not run.
   */
  acquire(connection: Account, address: Account | undefined, cost: Cost): RpcError | undefined {
    const refusal =
      this.#check('calls', 1, connection, address) ??
      this.#check('items', cost.items, connection, address) ??
      this.#check('bytes', cost.bytes, connection, address);
    if (refusal !== undefined) return refusal;
    this.#total.calls++;
    this.#total.items += cost.items;
    this.#total.bytes += cost.bytes;
    this.#connections.take(connection, cost);
    if (address !== undefined) this.#addresses.take(address, cost);
    return undefined;
  }

  /** release gives back what acquire took for the same connection, address and cost. */
  release(connection: Account, address: Account | undefined, cost: Cost): void {
    this.#total.calls--;
    this.#total.items -= cost.items;
    this.#total.bytes -= cost.bytes;
    this.#connections.give(connection, cost);
    if (address !== undefined) this.#addresses.give(address, cost);
  }

  #check(dimension: Dimension, amount: number, connection: Account, address: Account | undefined): RpcError | undefined {
    const cap = this.#capOf(dimension);
    const total = this.#total[dimension];
    if (total + amount > cap) return this.#refusal(dimension, cap, 'the server');
    // Uncontended: anyone may take from the first half of the cap.
    if (total + amount <= cap / 2) return undefined;
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
    if (account.calls === 0) return true;
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
