// The ActorStorage port for one object's actor, with turns group-committed: one SQLite transaction per batch.
import {
  type ActorStorage,
  GroupCommit,
  type InboxRecord,
  type StoredState,
  type TurnCommit,
} from "../../runtime/index.ts";
import type { DurableActorStore } from "./storage.ts";

/**
 * Why batch on workerd: it commits (and on local disk fsyncs) once per event that wrote, and every RPC call is
 * its own event, so writing in each turn caps one object at one disk flush per turn. A turn's reply still
 * waits for its commit, and the object's output gate then holds it until the write is durable.
 */
export class CommitQueue {
  private readonly commits: GroupCommit<DurableActorStorage>;

  constructor(private readonly store: DurableActorStore) {
    this.commits = new GroupCommit<DurableActorStorage>({
      defer: (flush) => setTimeout(flush, 0),
      write: (batch) =>
        store.writeTurns(batch.map((entry) => ({ address: entry.view.address, commit: entry.commit }))),
    });
  }

  /** A fresh storage view for one activation of the actor at `address`. */
  storageFor(address: string): ActorStorage {
    this.store.claim(address);
    return new DurableActorStorage(this.store, this.commits, address);
  }
}

/** One activation's view. Once a commit fails, the view refuses further commits. */
class DurableActorStorage implements ActorStorage {
  poisoned: unknown;

  constructor(
    private readonly store: DurableActorStore,
    private readonly commits: GroupCommit<DurableActorStorage>,
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
    return this.commits.enqueue(this, commit);
  }

  async removeTimer(id: string): Promise<void> {
    this.store.removeTimer(id);
  }
}
