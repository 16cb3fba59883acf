// The webhook store port: subscriptions, the attempts log, and the inbound replay guard.
import type postgres from "postgres";

export interface WebhookSubscription {
  id: string;
  url: string;
  /** Outbound event names (`order.confirmed`, ...). */
  events: string[];
  /** `whsec_…`: kept readable, since every delivery is signed with it. */
  secret: string;
  /**
   * The secret replaced by the last rotation, which still signs beside `secret` until `previousSecretExpiresAt`,
   * so a receiver can switch over without refusing a delivery. Null when none, or when it has expired.
   */
  previousSecret: string | null;
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  deletedAt: Date | null;
}

export type NewSubscription = Pick<WebhookSubscription, "id" | "url" | "events" | "secret">;

/** `delivered`: 2xx. `failed`: another status, a network error or a timeout. `refused`: the SSRF guard said no. */
/** Where a page of a listing starts: after this subscription (oldest first), or before this attempt (newest first). */
export interface SubscriptionPage {
  limit: number;
  /** The id of the last subscription of the previous page. */
  after?: string;
  /** Only the subscriptions that take this event (`order.confirmed`). */
  event?: string;
}
export interface AttemptPage {
  limit: number;
  eventId?: string;
  /** Attempts logged before this one (its `seq`), for the next page. */
  beforeSeq?: number;
}

export type AttemptOutcome = "delivered" | "failed" | "refused";

export interface AttemptRecord {
  subscriptionId: string;
  eventId: string;
  statusCode: number | null;
  outcome: AttemptOutcome;
  error: string | null;
}

export interface DeliveryAttempt extends AttemptRecord {
  /** The attempt's place in the log, which only grows: what a page of attempts is cut at. */
  seq: number;
  /** 1 for the first attempt of this event at this subscription. */
  attempt: number;
  at: Date;
}

/**
 * Writes the record of a subscription created (the activity log's `admin.webhook_subscription_created`, on the same
 * database) on its own transaction, given the subscription as written: both commit or neither does, and if it throws
 * no subscription is made (`unavailable`). The store knows nothing of what the record says or where it goes. A
 * deletion or a secret rotation takes none: they never wait on their record.
 */
export type SubscriptionRecorder = (
  tx: postgres.TransactionSql,
  subscription: WebhookSubscription,
) => Promise<unknown>;

export interface WebhookStore {
  /**
   * With `record`, the subscription is created only with its record, in one transaction; and once `signal` (the
   * caller's deadline) has fired before its COMMIT, the caller has been answered with an error, so the subscription
   * and its record are rolled back (`timeout`) rather than committed after that answer (a lock wait can outlast it):
   * no events start going to a URL its admin was told was not subscribed. Without `record` (no activity log) the
   * same holds for the subscription alone: it is still made in a transaction, rolled back once `signal` has fired.
   */
  createSubscription(
    subscription: NewSubscription,
    record?: SubscriptionRecorder,
    signal?: AbortSignal,
  ): Promise<WebhookSubscription>;
  /** Soft-deletes; true when the subscription exists (deleting twice is not an error). */
  deleteSubscription(id: string): Promise<boolean>;
  /** Deleted ones too, with `deletedAt` set. */
  getSubscription(id: string): Promise<WebhookSubscription | undefined>;
  /**
   * Active subscriptions, oldest first; only those that take `event` when it is given. All of them at once: a
   * caller that must not hold them all (the fan-out) reads `pageSubscriptions`.
   */
  listSubscriptions(filter?: { event?: string }): Promise<WebhookSubscription[]>;
  /** Active subscriptions, oldest first, one page of them. */
  pageSubscriptions(page: SubscriptionPage): Promise<WebhookSubscription[]>;
  /**
   * Makes `secret` the active secret of an active subscription. The one it replaces keeps signing beside it until
   * `previousExpiresAt`; a secret rotated out earlier is dropped. Undefined when there is no such subscription.
   */
  rotateSecret(id: string, secret: string, previousExpiresAt: Date): Promise<WebhookSubscription | undefined>;
  /** Appends to the attempts log; returns the attempt's number. */
  recordAttempt(attempt: AttemptRecord): Promise<number>;
  listAttempts(subscriptionId: string, eventId?: string): Promise<DeliveryAttempt[]>;
  /** One page of a subscription's attempts, newest first. */
  pageAttempts(subscriptionId: string, page: AttemptPage): Promise<DeliveryAttempt[]>;
  /**
   * Forgets attempts made before `before`, oldest first in batches of `batchSize`; returns how many. The node calls
   * it with EDGEWISE_WEBHOOK_ATTEMPT_RETENTION, kept longer than the queue's retry horizon: `wasDelivered` reads
   * these rows, so a redelivery of an event whose attempts are gone would be posted again.
   */
  pruneAttempts(before: Date, batchSize?: number): Promise<number>;
  /** True once some attempt of this event at this subscription got a 2xx. */
  wasDelivered(subscriptionId: string, eventId: string): Promise<boolean>;
  /** Marks an inbound `webhook-id` of a source as seen; false when it already was (a replay). */
  recordInbound(source: string, webhookId: string): Promise<boolean>;
  hasSeenInbound(source: string, webhookId: string): Promise<boolean>;
  /**
   * Forgets inbound ids seen before `before`; returns how many. Safe past twice the timestamp tolerance: a
   * replay that old fails its timestamp check anyway.
   */
  pruneInbound(before: Date): Promise<number>;
}
