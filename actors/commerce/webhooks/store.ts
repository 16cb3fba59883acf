// The webhook store port: subscriptions, the attempts log, and the inbound replay guard.

export interface WebhookSubscription {
  id: string;
  url: string;
  /** Outbound event names (`order.confirmed`, ...). */
  events: string[];
  /** `whsec_…`: kept readable, since every delivery is signed with it. */
  secret: string;
  createdAt: Date;
  deletedAt: Date | null;
}

export type NewSubscription = Pick<WebhookSubscription, "id" | "url" | "events" | "secret">;

/** `delivered`: 2xx. `failed`: another status, a network error or a timeout. `refused`: the SSRF guard said no. */
export type AttemptOutcome = "delivered" | "failed" | "refused";

export interface AttemptRecord {
  subscriptionId: string;
  eventId: string;
  statusCode: number | null;
  outcome: AttemptOutcome;
  error: string | null;
}

export interface DeliveryAttempt extends AttemptRecord {
  /** 1 for the first attempt of this event at this subscription. */
  attempt: number;
  at: Date;
}

export interface WebhookStore {
  createSubscription(subscription: NewSubscription): Promise<WebhookSubscription>;
  /** Soft-deletes; true when the subscription exists (deleting twice is not an error). */
  deleteSubscription(id: string): Promise<boolean>;
  /** Deleted ones too, with `deletedAt` set. */
  getSubscription(id: string): Promise<WebhookSubscription | undefined>;
  /** Active subscriptions, oldest first; only those that take `event` when it is given. */
  listSubscriptions(filter?: { event?: string }): Promise<WebhookSubscription[]>;
  /** Appends to the attempts log; returns the attempt's number. */
  recordAttempt(attempt: AttemptRecord): Promise<number>;
  listAttempts(subscriptionId: string, eventId?: string): Promise<DeliveryAttempt[]>;
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
