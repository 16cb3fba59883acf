// Group commit: turns queued until the next macrotask (or a full batch) are written in one transaction.
import type { TurnCommit } from "./storage.ts";

/** One activation's storage view: once a commit of it fails, it refuses the turns computed on top of it. */
export interface CommitView {
  poisoned: unknown;
}

interface Queued<View extends CommitView> {
  view: View;
  commit: TurnCommit;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Runs `fn` in the next macrotask: setImmediate where the runtime has it (Bun, Deno, Node), else setTimeout 0. */
export const nextMacrotask: (fn: () => void) => void = (() => {
  // Typed by hand: the runtime also compiles for Workers, whose types have no setImmediate.
  const { setImmediate } = globalThis as { setImmediate?: (fn: () => void) => unknown };
  return setImmediate
    ? (fn: () => void) => void setImmediate(fn)
    : (fn: () => void) => void setTimeout(fn, 0);
})();

export interface GroupCommitOptions<View extends CommitView> {
  /** Writes every turn of a batch in one synchronous transaction, or throws and writes none. */
  write: (batch: ReadonlyArray<{ view: View; commit: TurnCommit }>) => void;
  /** Runs the flush after the turns already queued in this tick (setImmediate, or setTimeout 0). */
  defer: (flush: () => void) => void;
  /** A batch holds at most this many turns, which bounds how long a reply waits for its commit. */
  maxBatch?: number;
  /**
   * A batch is written once its turns' state texts reach this many characters (`defaultMaxBatchStateChars`): each
   * queued turn holds its own, up to 2 MB, and a Workers isolate has 128 MB, which 512 turns of an actor whose state
   * is near the row limit would take eight times over.
   */
  maxBatchStateChars?: number;
}

/** 16 Mi characters of state text queued at most: some 8 turns of a state near the 2 MB row limit. */
export const defaultMaxBatchStateChars = 16 * 1024 * 1024;

/**
 * Why: one fsync (or, on workerd, one output-gate flush) per batch instead of per turn. A turn's reply still
 * waits for its own batch. If a batch fails, its turns are written again one at a time, in order, so a turn the
 * store refuses (a row too large, say) fails alone; a turn that fails poisons its view, so the turns its actor
 * computed on top of it fail too, and can never land in a later batch.
 */
export class GroupCommit<View extends CommitView> {
  private queue: Array<Queued<View>> = [];
  private scheduled = false;
  private readonly maxBatch: number;
  private readonly maxStateChars: number;
  /** The state text the queued turns hold. */
  private queuedStateChars = 0;

  constructor(private readonly options: GroupCommitOptions<View>) {
    this.maxBatch = options.maxBatch ?? 512;
    this.maxStateChars = options.maxBatchStateChars ?? defaultMaxBatchStateChars;
  }

  enqueue(view: View, commit: TurnCommit): Promise<void> {
    if (view.poisoned !== undefined) return Promise.reject(view.poisoned);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ view, commit, resolve, reject });
      this.queuedStateChars += commit.stateJson?.length ?? 0;
      if (this.queue.length >= this.maxBatch || this.queuedStateChars >= this.maxStateChars) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        this.options.defer(() => this.flush());
      }
    });
  }

  /** Writes every queued turn now, in one transaction, then releases their replies. */
  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    this.queuedStateChars = 0;
    if (batch.length === 0) return;
    const writable = batch.filter((entry) => entry.view.poisoned === undefined);
    for (const entry of batch) if (entry.view.poisoned !== undefined) entry.reject(entry.view.poisoned);
    try {
      this.options.write(writable);
    } catch (error) {
      if (writable.length === 1) this.fail(writable[0] as Queued<View>, error);
      else this.writeEach(writable);
      return;
    }
    for (const entry of writable) entry.resolve();
  }

  /** After a batch failed (and wrote nothing): each turn in its own transaction. Costs a write each, so only then. */
  private writeEach(batch: Array<Queued<View>>): void {
    for (const entry of batch) {
      if (entry.view.poisoned !== undefined) {
        entry.reject(entry.view.poisoned);
        continue;
      }
      try {
        this.options.write([entry]);
      } catch (error) {
        this.fail(entry, error);
        continue;
      }
      entry.resolve();
    }
  }

  private fail(entry: Queued<View>, error: unknown): void {
    entry.view.poisoned ??= error;
    entry.reject(error);
  }
}
