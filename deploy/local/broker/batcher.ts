// Group commit: items submitted while a write is in progress are written together by the next one.

interface Waiting<T, R> {
  items: T[];
  resolve: (results: R[]) => void;
  reject: (error: unknown) => void;
}

/**
 * Collects items from concurrent callers and hands them to `write` in groups of at most `maxGroup` items and
 * `maxWeight` total weight (a submission is never split, so one larger submission makes a group of its own).
 * Each caller's promise settles when its own group has been written. With `lingerMs`, an item that finds the
 * writer idle waits that long for others to join its group (items arriving during a write always wait for it),
 * unless it is submitted `urgent`, which cuts the wait short.
 */
export class Batcher<T, R> {
  private queue: Waiting<T, R>[] = [];
  private writing = false;
  private lingering: ReturnType<typeof setTimeout> | undefined;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly write: (items: T[]) => Promise<R[]>,
    private readonly maxGroup = 1000,
    private readonly weigh: (item: T) => number = () => 0,
    private readonly maxWeight = Number.POSITIVE_INFINITY,
    private readonly lingerMs = 0,
  ) {}

  submit(items: T[], urgent = false): Promise<R[]> {
    return new Promise<R[]>((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      if (!this.writing) {
        this.writing = true;
        if (this.lingerMs > 0 && !urgent) {
          this.lingering = setTimeout(() => {
            this.lingering = undefined;
            void this.drain();
          }, this.lingerMs);
        } else {
          queueMicrotask(() => void this.drain());
        }
      } else if (urgent && this.lingering !== undefined) {
        clearTimeout(this.lingering);
        this.lingering = undefined;
        queueMicrotask(() => void this.drain());
      }
    });
  }

  /** Resolves once nothing is waiting or being written. */
  idle(): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const group: Waiting<T, R>[] = [];
      let size = 0;
      let weight = 0;
      while (this.queue.length > 0) {
        const next = this.queue[0] as Waiting<T, R>;
        const nextWeight = next.items.reduce((sum, item) => sum + this.weigh(item), 0);
        const full = size + next.items.length > this.maxGroup || weight + nextWeight > this.maxWeight;
        if (group.length > 0 && full) break;
        group.push(next);
        size += next.items.length;
        weight += nextWeight;
        this.queue.shift();
      }
      const items = group.flatMap((w) => w.items);
      try {
        const results = await this.write(items);
        let offset = 0;
        for (const waiting of group) {
          waiting.resolve(results.slice(offset, offset + waiting.items.length));
          offset += waiting.items.length;
        }
      } catch (error) {
        for (const waiting of group) waiting.reject(error);
      }
    }
    this.writing = false;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
