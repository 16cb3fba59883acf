// The webhook endpoints: subscriptions for outbound events (webhooks:admin), and signed inbound webhooks.
import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import {
  CreateSubscriptionBody,
  createSubscription,
  deleteSubscription,
  type InboundRefusal,
  inboundPruner,
  type InboundSecrets,
  ListAttemptsQuery,
  ListSubscriptionsQuery,
  listDeliveryAttempts,
  listSubscriptionViews,
  RotateSecretBody,
  receiveInbound,
  rotateSubscriptionSecret,
  showSubscription,
  type TargetPolicy,
  type WebhookStore,
} from "../../../actors/commerce/webhooks/index.ts";
import type { Transport } from "../../../actors/runtime/index.ts";
import { type Clock, systemClock } from "../../../shared/clock/index.ts";
import type { AdminEvents, AdminTarget } from "../../audit/admin-events.ts";
import type { GatewayEnv } from "../../env.ts";
import { requireScope, scoped } from "../../middleware/auth/principal.ts";
import { validate } from "../../middleware/validation/index.ts";
import { refuseContentCoding } from "../../middleware/validation/json-body.ts";
import {
  header,
  json,
  jsonBodyErrors,
  limitedPublicErrors,
  problem,
  publicRoute,
  requires,
  unauthorized,
} from "../../openapi.ts";
import {
  AttemptPage,
  InboundAccepted,
  SecretRotated,
  SubscriptionCreated,
  SubscriptionPage,
  SubscriptionView,
} from "../responses.ts";
import { IdParam, SourceParam } from "./schemas.ts";

export interface WebhookRoutesOptions {
  store: WebhookStore;
  policy: TargetPolicy;
  /** INBOUND_WEBHOOK_SECRETS, parsed; empty refuses every inbound webhook. */
  inboundSecrets: InboundSecrets;
  /** Where the inbound Restock command goes: the queue, so the sku actor applies it once. */
  transport: Transport;
  /** Records refused and replayed inbound webhooks (the activity log's security events). */
  onRefusal?: (refusal: InboundRefusal, outcome: "refused" | "replayed") => Promise<void> | void;
  clock?: Clock;
  /**
   * Records subscriptions created and deleted and secrets rotated as `admin.*` (never a secret). A creation grants
   * (events start going to a URL): in the store's own transaction when it has `writeIn` (the store is on the activity
   * log's database), so no subscription exists without its record; else once done. A deletion or a rotation takes
   * away: always once done, so it holds even when its record cannot be written (warn line, counted `failed`).
   */
  adminEvents?: AdminEvents | undefined;
}

/** A subscription's target as its admin events name it. */
const subscriptionTarget = (id: string): AdminTarget => ({ subject: `webhooks/${id}`, subscriptionId: id });

/** A subscription URL as an admin event names it: origin and path, without credentials, query or fragment. */
function shownUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "(unparsable)";
  }
}

export function webhookRoutes(options: WebhookRoutesOptions): Hono<GatewayEnv> {
  const clock = options.clock ?? systemClock;
  const app = new Hono<GatewayEnv>();
  const audit = options.adminEvents;
  const writeIn = audit?.writeIn;
  // A failed prune is retried at the next minute's webhook; the ids it would forget are harmless meanwhile.
  const pruneSeenIds = inboundPruner(options.store);

  app.post(
    "/v1/webhooks/subscriptions",
    describeRoute({
      summary: "Subscribe a URL to order events (Standard Webhooks)",
      description:
        "The subscription and its record in the activity log (admin.webhook_subscription_created) are written in one " +
        "transaction: if the record cannot be written, the answer is 503, no subscription exists and no secret is shown.",
      tags: ["webhooks"],
      ...requires("webhooks:admin", {
        201: json("The subscription; its secret is shown only here", SubscriptionCreated),
        ...jsonBodyErrors,
      }),
    }),
    scoped("webhooks:admin"),
    validate("json", CreateSubscriptionBody),
    async (c) => {
      requireScope(c.var.principal, "webhooks:admin");
      const described = (made: { url: string; events: string[] }) => ({
        url: shownUrl(made.url),
        events: made.events,
      });
      const deps = { store: options.store, policy: options.policy };
      // A grant (events start going to the URL): where the store can, made only with its record; and with the
      // request's signal, so a subscription still waiting to commit when the caller is answered 504 is rolled back.
      const created =
        audit && writeIn
          ? await audit.recordInTransaction(c, "webhook_subscription_created", undefined, (eventOf) =>
              createSubscription(
                deps,
                c.req.valid("json"),
                (tx, made) => writeIn(tx, eventOf(described(made), subscriptionTarget(made.id))),
                c.var.signal,
              ),
            )
          : await createSubscription(deps, c.req.valid("json"), undefined, c.var.signal);
      if (!writeIn) {
        await audit?.record(
          c,
          "webhook_subscription_created",
          subscriptionTarget(created.id),
          described(created),
        );
      }
      return c.json(created, 201);
    },
  );

  app.get(
    "/v1/webhooks/subscriptions",
    describeRoute({
      summary: "List the active webhook subscriptions, oldest first (never their secrets)",
      tags: ["webhooks"],
      ...requires("webhooks:admin", { 200: json("A page of subscriptions, oldest first", SubscriptionPage) }),
    }),
    scoped("webhooks:admin"),
    validate("query", ListSubscriptionsQuery),
    async (c) => {
      requireScope(c.var.principal, "webhooks:admin");
      return c.json(await listSubscriptionViews({ store: options.store, clock }, c.req.valid("query")));
    },
  );

  app.get(
    "/v1/webhooks/subscriptions/:id",
    describeRoute({
      summary: "One active webhook subscription (never its secret)",
      tags: ["webhooks"],
      ...requires("webhooks:admin", {
        200: json("The subscription", SubscriptionView),
        404: problem("No such subscription, or it was deleted or disabled by a 410"),
      }),
    }),
    scoped("webhooks:admin"),
    validate("param", IdParam),
    async (c) => {
      requireScope(c.var.principal, "webhooks:admin");
      return c.json(await showSubscription({ store: options.store, clock }, c.req.valid("param").id));
    },
  );

  app.get(
    "/v1/webhooks/subscriptions/:id/attempts",
    describeRoute({
      summary: "A subscription's delivery attempts, newest first (deleted and disabled subscriptions too)",
      tags: ["webhooks"],
      ...requires("webhooks:admin", {
        200: json("A page of delivery attempts, newest first", AttemptPage),
        404: problem("No such subscription"),
      }),
    }),
    scoped("webhooks:admin"),
    validate("param", IdParam),
    validate("query", ListAttemptsQuery),
    async (c) => {
      requireScope(c.var.principal, "webhooks:admin");
      return c.json(
        await listDeliveryAttempts({ store: options.store }, c.req.valid("param").id, c.req.valid("query")),
      );
    },
  );

  app.post(
    "/v1/webhooks/subscriptions/:id/rotate-secret",
    describeRoute({
      summary:
        "Rotate a subscription's secret: the new one is shown only here; the old one keeps signing beside it " +
        "for overlapSeconds (default 86400)",
      description:
        "The secret is rotated first, then the rotation is recorded in the activity log " +
        "(admin.webhook_secret_rotated): a rotation never waits on its record, so if the record cannot be written " +
        "the new secret stands all the same and the answer is 200 (the failure is logged at warn and counted in " +
        "edgewise_admin_events_total). With overlapSeconds 0 the old secret stops signing at once.",
      tags: ["webhooks"],
      ...requires("webhooks:admin", {
        200: json("The new secret, shown only here", SecretRotated),
        ...jsonBodyErrors,
        404: problem("No such subscription"),
      }),
    }),
    scoped("webhooks:admin"),
    validate("param", IdParam),
    validate("json", RotateSecretBody),
    async (c) => {
      requireScope(c.var.principal, "webhooks:admin");
      const rotated = await rotateSubscriptionSecret(
        { store: options.store, clock },
        c.req.valid("param").id,
        c.req.valid("json"),
      );
      // After the rotation, never with it: a leaked secret must stop signing even if its record cannot be written.
      await audit?.record(c, "webhook_secret_rotated", subscriptionTarget(rotated.id), {
        previousSecretExpiresAt: rotated.previousSecretExpiresAt,
      });
      return c.json(rotated);
    },
  );

  app.delete(
    "/v1/webhooks/subscriptions/:id",
    describeRoute({
      summary: "Delete a webhook subscription; deliveries already queued for it are dropped",
      description:
        "The subscription is deleted first, then the deletion is recorded in the activity log " +
        "(admin.webhook_subscription_deleted): a deletion never waits on its record, so if the record cannot be " +
        "written the subscription is gone all the same and the answer is 204 (the failure is logged at warn and " +
        "counted in edgewise_admin_events_total).",
      tags: ["webhooks"],
      ...requires("webhooks:admin", {
        204: { description: "Deleted; also when it already was (deleting is idempotent)" },
        404: problem("No subscription was ever created with this id"),
      }),
    }),
    scoped("webhooks:admin"),
    validate("param", IdParam),
    async (c) => {
      requireScope(c.var.principal, "webhooks:admin");
      const { id } = c.req.valid("param");
      await deleteSubscription(options.store, id);
      // After the deletion, never with it: events stop going to the URL even if its record cannot be written.
      await audit?.record(c, "webhook_subscription_deleted", subscriptionTarget(id));
      return c.body(null, 204);
    },
  );

  app.post(
    "/webhooks/inbound/:source",
    describeRoute({
      summary:
        "An inbound webhook (e.g. inventory.restocked), authenticated by its Standard Webhooks signature",
      tags: ["webhooks"],
      // No caller credentials: the signature, made with the source's own secret, is the authentication.
      ...publicRoute,
      parameters: ["webhook-id", "webhook-timestamp", "webhook-signature"].map((name) => ({
        in: "header" as const,
        name,
        required: true,
        schema: { type: "string" as const },
      })),
      requestBody: {
        content: {
          "application/json": {
            schema: {
              type: "object",
              required: ["type"],
              properties: {
                type: { type: "string", examples: ["inventory.restocked"] },
                sku: { type: "string" },
                quantity: { type: "integer", minimum: 1 },
              },
            },
          },
        },
      },
      responses: {
        ...limitedPublicErrors,
        202: json("Accepted, or already processed (its webhook-id was seen)", InboundAccepted),
        400: problem("The body is not JSON; or the request carries both Authorization and X-API-Key"),
        401: unauthorized(
          "Unsigned, forged, stale, or from an unknown source; or a caller's credential was sent and refused",
        ),
        415: {
          ...problem(
            "The body has a Content-Encoding (before its signature is checked: it is over bytes no runtime decodes)",
          ),
          headers: { "Accept-Encoding": header("What is taken: `identity`", { type: "string" }) },
        },
        422: problem(
          "A signed JSON body that is not an event this source may send: message.unknown_type (its `type`) or " +
            "message.invalid (its fields)",
        ),
      },
    }),
    validate("param", SourceParam),
    async (c) => {
      // Before the signature: a compressed body reads as other bytes, and its sender got a 401 that sent it looking
      // at its secret. The 415 says only what /openapi.json says, the same for any source or signature.
      refuseContentCoding(c);
      const outcome = await receiveInbound(
        {
          secrets: options.inboundSecrets,
          store: options.store,
          transport: options.transport,
          now: clock.now(),
        },
        { source: c.req.valid("param").source, headers: c.req.raw.headers, body: await c.req.text() },
      );
      if (outcome.status === "accepted") {
        pruneSeenIds(clock.now());
        return c.json({ status: "accepted" }, 202);
      }
      await options.onRefusal?.(outcome.refusal, outcome.status);
      if (outcome.status === "replayed") return c.json({ status: "duplicate" }, 202);
      throw outcome.error;
    },
  );

  return app;
}
