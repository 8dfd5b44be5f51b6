/**
 * Stream credit (PROTOCOL.md 12.3 and 12.4), the same on both ends of a tunnel. Pure: counts in, verdicts and grants
 * out; the owner (the server's connection, the client's tunnel) writes the frames.
 *
 * Receiving: every stream message a peer may send was granted by us, and every grant reserves `maxMessageSize`
 * bytes per message from one per-connection budget (`maxStreamBuffer`). A reservation is freed when the reader
 * takes the message, not when it arrives, so the bytes of stream data received and not yet consumed on a connection
 * never exceed the budget, whatever the number of streams. A stream that finds no room waits in a FIFO queue and is
 * served first when room comes back; a stream that still holds credit does not top up while another waits with
 * none (fair, and no stream starves while its reader keeps reading).
 *
 * Sending: the credit the peer gave us per stream, additive, at most 2^31-1 (RSocket's REQUEST_N).
 */
import { MAX_CREDIT } from './message.js';
import { MAX_UINT32 } from './limits.js';
import { checkInteger, orDefault } from './option-checks.js';

/** DEFAULT_MAX_STREAM_BUFFER is the default receive budget of stream data per connection: 16 MiB. */
export const DEFAULT_MAX_STREAM_BUFFER = 16 * 1024 * 1024;
/** DEFAULT_MAX_STREAM_MESSAGE_SIZE is the default bound on one stream message payload: 128 KiB. */
export const DEFAULT_MAX_STREAM_MESSAGE_SIZE = 128 * 1024;
/** DEFAULT_MAX_STREAM_CREDIT is the default window: messages granted to one stream and not yet consumed, 32. */
export const DEFAULT_MAX_STREAM_CREDIT = 32;

/** Grant is a credit frame to send: `[9, id, n]`. */
export interface Grant {
  readonly id: number;
  readonly n: number;
}

interface Entry {
  /** Bytes reserved per message granted to the peer (the announced maxMessageSize); 0 when we receive nothing. */
  readonly size: number;
  /** Most messages this stream may hold granted-or-unconsumed at once. */
  readonly window: number;
  /** Credit the peer has left (granted by us, not yet used). */
  granted: number;
  /** Messages received and not yet taken by the reader. */
  held: number;
  /** Credit we may still spend sending to the peer. */
  credit: number;
  waiting: boolean;
}

const NO_GRANTS: readonly Grant[] = Object.freeze([]);

/** CreditLedger keeps both directions' credit for every stream of one connection and the receive budget. */
export class CreditLedger {
  /** Bytes the peer may make us hold at most, over all streams (maxStreamBuffer). */
  readonly budget: number;
  readonly #streams = new Map<number, Entry>();
  readonly #waiting = new Set<number>();
  #reserved = 0;

  constructor(budget: number) {
    this.budget = budget;
  }

  /** reserved is the bytes held for granted and unconsumed messages on all streams: never above `budget`. */
  get reserved(): number {
    return this.#reserved;
  }

  /** streams counts the streams in the ledger. */
  get streams(): number {
    return this.#streams.size;
  }

  /**
   * open adds a stream. `size` is the bound on each message we accept (0 when the peer sends us none) and
   * `window` the most messages we grant it at once. `credit` is what the peer granted us already (in the opening).
   */
  open(id: number, size: number, window: number, credit = 0): void {
    this.#streams.set(id, { size, window, granted: 0, held: 0, credit, waiting: false });
  }

  /** has tells whether a stream is in the ledger. */
  has(id: number): boolean {
    return this.#streams.has(id);
  }

  /**
   * topUp returns how many messages to grant stream `id` now (0: none), and reserves their bytes. It grants when
   * the stream holds at most half its window, as much as the budget allows; with no room the stream queues.
   */
  topUp(id: number): number {
    const entry = this.#streams.get(id);
    if (entry === undefined || entry.size === 0 || entry.waiting) return 0;
    const outstanding = entry.granted + entry.held;
    if (outstanding > entry.window / 2) return 0;
    // Fairness: while streams with nothing granted wait, one that still has credit gets no more.
    if (outstanding > 0 && this.#waiting.size > 0) return 0;
    const n = Math.min(entry.window - outstanding, Math.floor((this.budget - this.#reserved) / entry.size));
    if (n <= 0) {
      if (outstanding === 0) {
        entry.waiting = true;
        this.#waiting.add(id);
      }
      return 0;
    }
    entry.granted += n;
    this.#reserved += n * entry.size;
    return n;
  }

  /**
   * receive counts one message arriving on `id`. Returns false when the peer had no credit left: an overrun,
   * which the caller treats as a protocol violation.
   */
  receive(id: number): boolean {
    const entry = this.#streams.get(id);
    if (entry === undefined || entry.granted === 0) return false;
    entry.granted--;
    entry.held++;
    return true;
  }

  /**
   * consume frees the reservation of one message the reader took from `id`, and returns the grants to send now:
   * first to streams waiting for room, in order, then to `id` itself.
   */
  consume(id: number): readonly Grant[] {
    const entry = this.#streams.get(id);
    if (entry === undefined || entry.held === 0) return NO_GRANTS;
    entry.held--;
    this.#reserved -= entry.size;
    // Runs per message taken: nothing is allocated unless there is something to grant.
    const grants = this.#waiting.size === 0 ? NO_GRANTS : this.#serveWaiting();
    const n = this.topUp(id);
    if (n === 0) return grants;
    if (grants === NO_GRANTS) return [{ id, n }];
    (grants as Grant[]).push({ id, n });
    return grants;
  }

  /** close removes stream `id`, frees everything it reserved, and returns the grants now possible for waiters. */
  close(id: number): Grant[] {
    const entry = this.#streams.get(id);
    if (entry === undefined) return [];
    this.#streams.delete(id);
    this.#waiting.delete(id);
    this.#reserved -= (entry.granted + entry.held) * entry.size;
    return this.#serveWaiting();
  }

  /**
   * addCredit adds a grant from the peer to what we may send on `id`. Returns false when the total would pass
   * 2^31-1 (a violation); a grant for a stream not in the ledger is ignored (true).
   */
  addCredit(id: number, n: number): boolean {
    const entry = this.#streams.get(id);
    if (entry === undefined) return true;
    if (entry.credit + n > MAX_CREDIT) return false;
    entry.credit += n;
    return true;
  }

  /** credit is what we may still send on `id`. */
  credit(id: number): number {
    return this.#streams.get(id)?.credit ?? 0;
  }

  /** spend uses one credit to send on `id`; false when there is none (the sender must wait for a grant). */
  spend(id: number): boolean {
    const entry = this.#streams.get(id);
    if (entry === undefined || entry.credit === 0) return false;
    entry.credit--;
    return true;
  }

  #serveWaiting(): Grant[] {
    const grants: Grant[] = [];
    for (const id of this.#waiting) {
      const entry = this.#streams.get(id)!;
      entry.waiting = false;
      this.#waiting.delete(id);
      const n = this.topUp(id);
      if (n === 0) {
        // Still no room: it keeps its place at the head of the queue, and the ones behind it keep waiting too.
        this.#waiting.delete(id);
        const rest = [...this.#waiting];
        this.#waiting.clear();
        this.#waiting.add(id);
        for (const other of rest) this.#waiting.add(other);
        entry.waiting = true;
        break;
      }
      grants.push({ id, n });
    }
    return grants;
  }
}

/** StreamLimits are the stream options both peers have. */
export interface StreamLimits {
  maxStreamBuffer: number;
  maxStreamMessageSize: number;
  maxStreamCredit: number;
}

/**
 * resolveStreamLimits fills and checks the stream options, which depend on each other: one message must fit a
 * frame, and the buffer must hold one message.
 */
export function resolveStreamLimits(given: Partial<StreamLimits>, maxFrameSize: number): StreamLimits {
  const maxStreamMessageSize = checkInteger('maxStreamMessageSize', orDefault(given.maxStreamMessageSize, Math.min(DEFAULT_MAX_STREAM_MESSAGE_SIZE, maxFrameSize)), 1, maxFrameSize);
  return {
    maxStreamMessageSize,
    maxStreamBuffer: checkInteger('maxStreamBuffer', orDefault(given.maxStreamBuffer, Math.max(DEFAULT_MAX_STREAM_BUFFER, maxStreamMessageSize)), maxStreamMessageSize, MAX_UINT32),
    maxStreamCredit: checkInteger('maxStreamCredit', orDefault(given.maxStreamCredit, DEFAULT_MAX_STREAM_CREDIT), 1, MAX_CREDIT),
  };
}
