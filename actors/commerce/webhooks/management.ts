// Outbound subscriptions after their creation: views without the secret, listings, the attempts log, rotation.
import * as v from "valibot";
import type { Clock } from "../../../shared/clock/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { validationError } from "../../../shared/errors/valibot.ts";
import { decodeCursor, encodeCursor } from "../projections/cursor.ts";
import { type Page, PageLimit } from "../projections/page-limit.ts";
import { isSubscriptionId, SubscriptionId } from "./messages.ts";
import { generateSecret } from "./secret.ts";
import type { AttemptOutcome, DeliveryAttempt, WebhookStore, WebhookSubscription } from "./store.ts";

/** A subscription as the API shows it after its creation: never its secret. */
export interface SubscriptionView {
  id: string;
  url: string;
  events: string[];
  createdAt: string;
  /** Until when the secret replaced by the last rotation still signs beside the current one; null when none does. */
  previousSecretExpiresAt: string | null;
}

export interface AttemptView {
  eventId: string;
  /** 1 for the first attempt of this event at this subscription. */
  attempt: number;
  outcome: AttemptOutcome;
  /** The receiver's status, or null when it gave none (a network error, a timeout, a refused target). */
  statusCode: number | null;
  error: string | null;
  at: string;
}

/** How long a rotated-out secret keeps signing by default: a day, as other Standard Webhooks senders keep it. */
export const DEFAULT_ROTATION_OVERLAP_SECONDS = 86_400;
const MAX_ROTATION_OVERLAP_SECONDS = 7 * 86_400;

/** `POST /v1/webhooks/subscriptions/{id}/rotate-secret`: an empty body takes the default overlap. */
export const RotateSecretBody = v.strictObject({
  overlapSeconds: v.optional(
    v.pipe(
      v.number("must be a number"),
      v.integer("must be a whole number of seconds"),
      v.minValue(0, "must be 0 or more"),
      v.maxValue(MAX_ROTATION_OVERLAP_SECONDS, `must be at most ${MAX_ROTATION_OVERLAP_SECONDS} (7 days)`),
    ),
    DEFAULT_ROTATION_OVERLAP_SECONDS,
  ),
});

export const ListSubscriptionsQuery = v.strictObject({
  limit: PageLimit,
  cursor: v.optional(v.string()),
});

export const ListAttemptsQuery = v.strictObject({
  eventId: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9._~-]{1,256}$/, "must be an event id"))),
  limit: PageLimit,
  cursor: v.optional(v.string()),
});

const SubscriptionsCursor = v.strictObject({ id: SubscriptionId });
const AttemptsCursor = v.strictObject({ seq: v.pipe(v.number(), v.integer(), v.minValue(1)) });

/** The secrets a delivery is signed with at `now`: the current one, and the previous one while it overlaps. */
export function signingSecrets(subscription: WebhookSubscription, now: number): string[] {
  const previous = subscription.previousSecret;
  const until = subscription.previousSecretExpiresAt;
  return previous && until && until.getTime() > now ? [subscription.secret, previous] : [subscription.secret];
}

export function subscriptionView(subscription: WebhookSubscription, now: number): SubscriptionView {
  const until = subscription.previousSecretExpiresAt;
  return {
    id: subscription.id,
    url: subscription.url,
    events: subscription.events,
    createdAt: subscription.createdAt.toISOString(),
    previousSecretExpiresAt:
      subscription.previousSecret && until && until.getTime() > now ? until.toISOString() : null,
  };
}

type ManagementStore = Pick<
  WebhookStore,
  "getSubscription" | "pageSubscriptions" | "rotateSecret" | "pageAttempts"
>;

/** An active subscription, or `not_found`; a deleted (or 410-disabled) one is not found either. */
export async function showSubscription(
  deps: { store: ManagementStore; clock: Clock },
  id: string,
): Promise<SubscriptionView> {
  const subscription = isSubscriptionId(id) ? await deps.store.getSubscription(id) : undefined;
  if (!subscription || subscription.deletedAt) throw notFound();
  return subscriptionView(subscription, deps.clock.now());
}

/** Active subscriptions, oldest first. */
export async function listSubscriptionViews(
  deps: { store: ManagementStore; clock: Clock },
  query: unknown,
): Promise<Page<SubscriptionView>> {
  const parsed = v.safeParse(ListSubscriptionsQuery, query);
  if (!parsed.success) throw validationError("request.invalid", "query", parsed.issues);
  const { limit, cursor } = parsed.output;
  const after = cursor === undefined ? undefined : decodeCursor(cursor, SubscriptionsCursor).id;
  const rows = await deps.store.pageSubscriptions({ limit: limit + 1, ...(after ? { after } : {}) });
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map((subscription) => subscriptionView(subscription, deps.clock.now())),
    nextCursor: rows.length > limit && last ? encodeCursor({ id: last.id }) : null,
  };
}

/**
 * A subscription's delivery attempts, newest first, deleted subscriptions included: the log is how an integrator
 * finds out why deliveries stopped (a 410 that disabled it, a target refused).
 */
export async function listDeliveryAttempts(
  deps: { store: ManagementStore },
  id: string,
  query: unknown,
): Promise<Page<AttemptView>> {
  const parsed = v.safeParse(ListAttemptsQuery, query);
  if (!parsed.success) throw validationError("request.invalid", "query", parsed.issues);
  const { limit, cursor, eventId } = parsed.output;
  if (!isSubscriptionId(id) || !(await deps.store.getSubscription(id))) throw notFound();
  const before = cursor === undefined ? undefined : decodeCursor(cursor, AttemptsCursor).seq;
  const rows = await deps.store.pageAttempts(id, {
    limit: limit + 1,
    ...(eventId !== undefined ? { eventId } : {}),
    ...(before !== undefined ? { beforeSeq: before } : {}),
  });
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(attemptView),
    nextCursor: rows.length > limit && last ? encodeCursor({ seq: last.seq }) : null,
  };
}

/**
 * A new secret for an active subscription, shown only in this answer. Deliveries from now on carry a signature
 * with each secret (`v1,<new> v1,<old>`) until the overlap ends, so a receiver can switch at its own pace; a
 * secret rotated out earlier stops signing at once.
 */
export async function rotateSubscriptionSecret(
  deps: { store: ManagementStore; clock: Clock },
  id: string,
  body: unknown,
): Promise<{ id: string; secret: string; previousSecretExpiresAt: string | null }> {
  const parsed = v.safeParse(RotateSecretBody, body ?? {});
  if (!parsed.success) throw validationError("request.invalid", "body", parsed.issues);
  const now = deps.clock.now();
  const expiresAt = new Date(now + parsed.output.overlapSeconds * 1000);
  const rotated = isSubscriptionId(id)
    ? await deps.store.rotateSecret(id, generateSecret(), expiresAt)
    : undefined;
  if (!rotated) throw notFound();
  return {
    id: rotated.id,
    secret: rotated.secret,
    previousSecretExpiresAt: subscriptionView(rotated, now).previousSecretExpiresAt,
  };
}

function attemptView(attempt: DeliveryAttempt): AttemptView {
  return {
    eventId: attempt.eventId,
    attempt: attempt.attempt,
    outcome: attempt.outcome,
    statusCode: attempt.statusCode,
    error: attempt.error,
    at: attempt.at.toISOString(),
  };
}

function notFound(): EdgewiseError {
  return new EdgewiseError("not_found", "no such webhook subscription");
}
