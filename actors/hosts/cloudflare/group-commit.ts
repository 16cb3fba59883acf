// The ActorStorage port for one object's actor, with turns group-committed: one SQLite transaction per batch.
import type { ActorStorage, InboxRecord, StoredState, TurnCommit } from "../../runtime/index.ts";
import type { DurableActorStore } from "./storage.ts";

interface QueuedTurn {
  view: DurableActorStorage;
  commit: TurnCommit;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** A batch holds at most this many turns, which bounds how long a reply waits for its commit. */
const maxBatch = 512;

/**
 * Why batch: workerd commits (and on local disk fsyncs) once per event that wrote, and every RPC call is its
 * own event, so writing in each turn caps one object at one disk flush per turn. Turns queued until the next
 * macrotask share a transaction. A turn's reply still waits for its commit, and the object's output gate then
 * holds it until the write is durable.
 */
export class CommitQueue {
  private queue: QueuedTurn[] = [];
  private flushScheduled = false;

  constructor(private readonly store: DurableActorStore) {}

  /** A fresh storage view for one activation of the actor at `address`. */
  storageFor(address: string): ActorStorage {
    this.store.claim(address);
    return new DurableActorStorage(this.store, this, address);
  }

  enqueue(view: DurableActorStorage, commit: TurnCommit): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ view, commit, resolve, reject });
      if (this.queue.length >= maxBatch) this.flush();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setTimeout(() => this.flush(), 0);
      }
    });
  }

  /** Writes every queued turn now, in one transaction. */
  flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    // A view whose earlier commit failed must not write turns computed on top of it.
    const writable = batch.filter((entry) => entry.view.poisoned === undefined);
    for (const entry of batch) if (entry.view.poisoned !== undefined) entry.reject(entry.view.poisoned);
    try {
      this.store.writeTurns(writable.map((entry) => ({ address: entry.view.address, commit: entry.commit })));
    } catch (error) {
      for (const entry of writable) {
        entry.view.poisoned ??= error;
        entry.reject(error);
      }
      return;
    }
    for (const entry of writable) entry.resolve();
  }
}

/** One activation's view. Once a commit fails, the view refuses further commits. */
class DurableActorStorage implements ActorStorage {
  poisoned: unknown;

  constructor(
    private readonly store: DurableActorStore,
    private readonly commits: CommitQueue,
    readonly address: string,
  ) {}

  async load(): Promise<StoredState | undefined> {
    return this.store.loadState();
  }

  async inbox(messageId: string): Promise<InboxRecord | undefined> {
    return this.store.inbox(messageId);
  }

  async kvGet(key: string): Promise<unknown> {
    return this.store.kvGet(key);
  }

  commit(commit: TurnCommit): Promise<void> {
    if (this.poisoned !== undefined) return Promise.reject(this.poisoned);
    return this.commits.enqueue(this, commit);
  }

  async removeTimer(id: string): Promise<void> {
    this.store.removeTimer(id);
  }
}
