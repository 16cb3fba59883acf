// The BreakerCoordinator Durable Object: one per dependency (idFromName(dependency)), holding its shared breaker state
// (and the broker's, the queue's last answer to the isolates' publishes: queue-limit.ts).
import { DurableObject } from "cloudflare:workers";
import { systemClock } from "../../../shared/clock/index.ts";
import {
  type BreakerReport,
  type CoordinatorSnapshot,
  SharedBreaker,
  type SharedRecord,
  type SharedView,
} from "./breaker-shared.ts";
import type { BreakerCoordinatorPort } from "./coordinated-dependencies.ts";
import type { QueueLimitRpc } from "./queue-limit.ts";

/** The RPC surface, as a stub sees it. */
export interface BreakerCoordinatorRpc extends QueueLimitRpc {
  sync(report: BreakerReport): Promise<SharedView>;
  inspect(): Promise<CoordinatorSnapshot>;
}

const recordKey = "breaker";
const queueLimitKey = "queueLimit";
/** A reset further ahead than this is taken as malformed (QStash's daily limit resets within a day). */
const longestQueueLimitMs = 2 * 86_400_000;

/**
 * Each isolate's breakers report here (coordinated-dependencies.ts): transitions and counts, batched, never
 * one RPC per call. The state survives a restart of the object (a deploy, an eviction): a dependency that is
 * down stays open for every isolate. Permits and counts are in memory only; they matter for seconds.
 */
export class BreakerCoordinator extends DurableObject<unknown> implements BreakerCoordinatorRpc {
  private readonly shared: SharedBreaker;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env);
    // SQLite-backed: the synchronous kv API, so the object is whole before its first RPC.
    this.shared = new SharedBreaker(systemClock, ctx.storage.kv.get<SharedRecord>(recordKey));
  }

  async sync(report: BreakerReport): Promise<SharedView> {
    const { view, changed } = this.shared.report(report);
    // Written before the answer leaves (the output gate), so no isolate acts on a state a restart would lose.
    if (changed) this.ctx.storage.kv.put(recordKey, this.shared.record);
    return view;
  }

  /** Last answer wins, as on a node's one transport; stored, so a deploy does not forget an hours-long limit. */
  async reportQueueLimit(limitedForMs: number | undefined): Promise<void> {
    if (limitedForMs === undefined || limitedForMs === null) {
      this.ctx.storage.kv.delete(queueLimitKey);
      return;
    }
    if (typeof limitedForMs !== "number" || !(limitedForMs >= 0 && limitedForMs <= longestQueueLimitMs))
      return;
    this.ctx.storage.kv.put(queueLimitKey, systemClock.now() + limitedForMs);
  }

  async queueLimit(): Promise<number | undefined> {
    const until = this.ctx.storage.kv.get<number>(queueLimitKey);
    const ahead = until === undefined ? 0 : until - systemClock.now();
    return ahead > 0 ? ahead : undefined;
  }

  async inspect(): Promise<CoordinatorSnapshot> {
    return { ...this.shared.snapshot(), ...(this.ctx.id.name ? { name: this.ctx.id.name } : {}) };
  }
}

/** The slice of the BREAKERS binding the port uses. */
export interface CoordinatorNamespace {
  idFromName(name: string): DurableObjectId;
  get(id: DurableObjectId): unknown;
}

/** The coordinator port over the binding: one object per dependency name. */
export function coordinatorPort(namespace: CoordinatorNamespace): BreakerCoordinatorPort {
  const stub = (dependency: string) =>
    namespace.get(namespace.idFromName(dependency)) as BreakerCoordinatorRpc;
  return {
    sync: (dependency, report) => stub(dependency).sync(report),
    inspect: (dependency) => stub(dependency).inspect(),
  };
}
