/**
 * A single-consumer async queue with a high-water mark, shared by the transports that turn
 * several producers (clients, pipes) into one async iterable.
 *
 * Producers `push` and, when {@linkcode AsyncQueue.full} is true, `await waitForRoom()` so a
 * slow consumer slows its producers instead of growing memory without bound.
 *
 * @module
 */

/** Iterator state: pending reader or none. */
interface Waiter<T> {
  resolve(result: IteratorResult<T>): void;
  reject(reason: unknown): void;
}

/** A bounded FIFO of items consumed by one async iterator. */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  #items: T[] = [];
  #head = 0;
  #waiter: Waiter<T> | undefined;
  #rooms: (() => void)[] = [];
  #done = false;
  #error: unknown = undefined;
  #failed = false;
  #onReturn: (() => void) | undefined;
  #onRelease: ((item: T) => void) | undefined;
  #delivered: { item: T } | undefined;
  readonly highWaterMark: number;

  /**
   * `onReturn` runs when the consumer stops early (`break`). `onRelease` runs for each item
   * once the consumer is done with it (asks for the next one, or stops), so producers can
   * lend buffers that are valid only until then.
   */
  constructor(
    highWaterMark = 1024,
    onReturn?: () => void,
    onRelease?: (item: T) => void,
  ) {
    this.highWaterMark = highWaterMark;
    this.#onReturn = onReturn;
    this.#onRelease = onRelease;
  }

  /** Number of items waiting to be consumed. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** True when producers should wait before pushing more. */
  get full(): boolean {
    return this.size >= this.highWaterMark;
  }

  /** True once closed (items may still be waiting). */
  get done(): boolean {
    return this.#done;
  }

  /** Adds an item; ignored after close. */
  push(item: T): void {
    if (this.#done) return;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      this.#deliver(item);
      waiter.resolve({ value: item, done: false });
      return;
    }
    this.#items.push(item);
  }

  /** Resolves when the queue is below its high-water mark or closed. */
  waitForRoom(): Promise<void> {
    if (!this.full || this.#done) return Promise.resolve();
    return new Promise((resolve) => this.#rooms.push(resolve));
  }

  /** Ends the queue: the consumer drains what is left, then ends (or throws `error`). */
  close(error?: unknown): void {
    if (this.#done) return;
    this.#done = true;
    if (error !== undefined) {
      this.#failed = true;
      this.#error = error;
    }
    this.#wakeProducers();
    const waiter = this.#waiter;
    if (waiter !== undefined && this.size === 0) {
      this.#waiter = undefined;
      if (this.#failed) waiter.reject(this.#error);
      else waiter.resolve({ value: undefined, done: true });
    }
  }

  /** Takes the next item, waiting for one. */
  next(): Promise<IteratorResult<T>> {
    this.#release();
    if (this.size > 0) {
      const value = this.#items[this.#head] as T;
      this.#deliver(value);
      this.#items[this.#head] = undefined as T;
      this.#head++;
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      if (this.#rooms.length > 0 && !this.full) this.#wakeProducers();
      return Promise.resolve({ value, done: false });
    }
    if (this.#done) {
      if (this.#failed) {
        this.#failed = false;
        return Promise.reject(this.#error);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    if (this.#waiter !== undefined) {
      return Promise.reject(
        new TypeError("AsyncQueue has one consumer; next() is already pending"),
      );
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /** Stops consuming: closes the queue and runs the `onReturn` hook. */
  return(): Promise<IteratorResult<T>> {
    this.#release();
    if (this.#onRelease !== undefined) {
      for (let i = this.#head; i < this.#items.length; i++) this.#onRelease(this.#items[i] as T);
    }
    this.#items = [];
    this.#head = 0;
    this.close();
    this.#onReturn?.();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #deliver(item: T): void {
    if (this.#onRelease !== undefined) this.#delivered = { item };
  }

  #release(): void {
    const delivered = this.#delivered;
    if (delivered === undefined) return;
    this.#delivered = undefined;
    this.#onRelease?.(delivered.item);
  }

  #wakeProducers(): void {
    const rooms = this.#rooms;
    this.#rooms = [];
    for (const wake of rooms) wake();
  }
}
