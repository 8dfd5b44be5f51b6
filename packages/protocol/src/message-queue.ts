/**
 * MessageQueue: a stream's inbox, read as an AsyncIterable by one reader. Pure: no timers, no sockets. Its bound is
 * the credit its owner granted (CreditLedger), so push never refuses; the owner hears of every message taken
 * (to free its reservation and grant more) and of a reader that stopped early (to cancel the stream).
 */

/** MessageQueueHooks are the owner's callbacks; a throw from one is the owner's bug and propagates to it. */
export interface MessageQueueHooks {
  /** The reader took one message: free its reservation, maybe grant more. */
  taken(): void;
  /** The reader stopped before the end (`break`, `return()`, or a throw in a for-await body). */
  abandoned(): void;
}

/** MessageQueue<T> holds messages until its one reader takes them; end() or fail() finishes the iteration. */
export class MessageQueue<T> implements AsyncIterableIterator<T> {
  readonly #hooks: MessageQueueHooks;
  #items: T[] = [];
  #head = 0;
  #waiter: { resolve: (result: IteratorResult<T, undefined>) => void; reject: (error: unknown) => void } | undefined;
  #ended = false;
  #error: unknown;
  #failed = false;
  #done = false;

  constructor(hooks: MessageQueueHooks) {
    this.#hooks = hooks;
  }

  /** size counts messages pushed and not yet taken. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** closed tells whether the reader is done (ended, failed and read, or abandoned). */
  get closed(): boolean {
    return this.#done;
  }

  /** push adds a message, handing it straight to a waiting reader. Ignored once the queue ended or was abandoned. */
  push(item: T): void {
    if (this.#done || this.#ended || this.#failed) return;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter.resolve({ value: item, done: false });
      this.#hooks.taken();
      return;
    }
    this.#items.push(item);
  }

  /** end finishes the iteration after the messages already queued (the peer half-closed). */
  end(): void {
    if (this.#ended || this.#failed) return;
    this.#ended = true;
    this.#settleWaiter();
  }

  /** fail makes the next read reject with `error`, dropping what is queued (cancel, deadline, a lost tunnel). */
  fail(error: unknown): void {
    if (this.#done || this.#failed) return;
    this.#failed = true;
    this.#error = error;
    this.#items = [];
    this.#head = 0;
    this.#settleWaiter();
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (this.#head < this.#items.length) {
      const item = this.#items[this.#head]!;
      this.#items[this.#head++] = undefined as T;
      if (this.#head === this.#items.length) {
        this.#items = [];
        this.#head = 0;
      }
      this.#hooks.taken();
      return Promise.resolve({ value: item, done: false });
    }
    if (this.#failed && !this.#done) {
      this.#done = true;
      return Promise.reject(this.#error);
    }
    if (this.#ended || this.#done) {
      this.#done = true;
      return Promise.resolve({ value: undefined, done: true });
    }
    if (this.#waiter !== undefined) return Promise.reject(new TypeError('a stream is read by one reader at a time'));
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<T, undefined>> {
    if (!this.#done) {
      const early = !this.#ended && !this.#failed;
      this.#done = true;
      this.#items = [];
      this.#head = 0;
      this.#settleWaiter();
      if (early) this.#hooks.abandoned();
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #settleWaiter(): void {
    const waiter = this.#waiter;
    if (waiter === undefined) return;
    this.#waiter = undefined;
    if (this.#failed && !this.#done) {
      this.#done = true;
      waiter.reject(this.#error);
    } else {
      this.#done ||= this.#ended;
      waiter.resolve({ value: undefined, done: true });
    }
  }
}
