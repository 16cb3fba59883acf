// The WebhookStore on Postgres (postgres.js), on the caller's pool; tables created once per version of their DDL.
import type postgres from "postgres";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { recordGrant } from "../../../shared/postgres/recorded-grant.ts";
import {
  ensureSchema,
  type SchemaComponent,
  type SchemaMarkers,
} from "../../../shared/postgres/schema-marker.ts";
import { addColumnIfMissing } from "../add-column.ts";
import type {
  AttemptPage,
  AttemptRecord,
  DeliveryAttempt,
  NewSubscription,
  SubscriptionPage,
  SubscriptionRecorder,
  WebhookStore,
  WebhookSubscription,
} from "./store.ts";

interface SubscriptionRow {
  id: string;
  url: string;
  events: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  created_at: Date;
  deleted_at: Date | null;
}

interface AttemptRow {
  id: string;
  subscription_id: string;
  event_id: string;
  attempt: number;
  status_code: number | null;
  outcome: DeliveryAttempt["outcome"];
  error: string | null;
  at: Date;
}

/** Attempts deleted per statement by `pruneAttempts`. */
const ATTEMPT_PRUNE_BATCH = 5_000;

// Events are stored space-separated, like API key scopes: no array types needed from the driver.
export const webhooksSchema: SchemaComponent = {
  name: "webhooks",
  version: 2,
  lock: 8245602,
  ddl: `
    CREATE TABLE IF NOT EXISTS webhook_subscriptions (
      id text PRIMARY KEY,
      url text NOT NULL,
      events text NOT NULL,
      secret text NOT NULL CHECK (secret LIKE 'whsec\\_%'),
      created_at timestamptz NOT NULL DEFAULT now(),
      deleted_at timestamptz
    );
    -- Secret rotation (added after the first release: ALTER keeps tables made before it).
    ${addColumnIfMissing("webhook_subscriptions", "previous_secret", "text CHECK (previous_secret LIKE 'whsec\\_%')")}
    ${addColumnIfMissing("webhook_subscriptions", "previous_secret_expires_at", "timestamptz")}
    -- Pages of the active subscriptions (the fan-out's, the listing's) in their order, without a sort of them all.
    CREATE INDEX IF NOT EXISTS webhook_subscriptions_active ON webhook_subscriptions (created_at, id)
      WHERE deleted_at IS NULL;
    CREATE TABLE IF NOT EXISTS webhook_deliveries (
      id bigserial PRIMARY KEY,
      subscription_id text NOT NULL,
      event_id text NOT NULL,
      attempt int NOT NULL,
      status_code int,
      outcome text NOT NULL CHECK (outcome IN ('delivered', 'failed', 'refused')),
      error text,
      at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX IF NOT EXISTS webhook_deliveries_event ON webhook_deliveries (subscription_id, event_id);
    CREATE INDEX IF NOT EXISTS webhook_deliveries_newest ON webhook_deliveries (subscription_id, id DESC);
    -- pruneAttempts' batches by age (version 2): without it each batch would read every attempt kept.
    CREATE INDEX IF NOT EXISTS webhook_deliveries_at ON webhook_deliveries (at);
    CREATE TABLE IF NOT EXISTS webhook_inbound_seen (
      source text NOT NULL,
      webhook_id text NOT NULL,
      received_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (source, webhook_id)
    );
  `,
};

export class PostgresWebhookStore<Types extends Record<string, unknown> = Record<string, never>>
  implements WebhookStore
{
  /** Takes the caller's pool and never opens one (the embedded PGlite serves one connection only). */
  constructor(private readonly sql: postgres.Sql<Types>) {}

  /** Creates the tables if missing; safe on every start and from several nodes at once. */
  migrate(markers?: SchemaMarkers): Promise<void> {
    return ensureSchema(this.sql, webhooksSchema, markers);
  }

  async createSubscription(
    subscription: NewSubscription,
    record?: SubscriptionRecorder,
    signal?: AbortSignal,
  ): Promise<WebhookSubscription> {
    const insert = async (sql: postgres.TransactionSql<Types>) => {
      const [row] = await sql<SubscriptionRow[]>`
        INSERT INTO webhook_subscriptions (id, url, events, secret)
        VALUES (${subscription.id}, ${subscription.url}, ${subscription.events.join(" ")}, ${subscription.secret})
        RETURNING *`;
      return fromRow(row as SubscriptionRow);
    };
    try {
      // The subscription and its record (with an activity log) in one transaction: one whose record failed never
      // existed; nor one whose caller stopped waiting before COMMIT, with a log or without.
      return (await this.sql.begin(async (tx) =>
        recordGrant(tx, await insert(tx), record, signal, "the subscription"),
      )) as WebhookSubscription;
    } catch (error) {
      if ((error as { code?: unknown }).code === "23505") {
        throw new EdgewiseError("conflict", "a webhook subscription with this id exists", { cause: error });
      }
      throw error;
    }
  }

  async deleteSubscription(id: string): Promise<boolean> {
    const rows = await this.sql`
      UPDATE webhook_subscriptions SET deleted_at = coalesce(deleted_at, now()) WHERE id = ${id} RETURNING id`;
    return rows.length > 0;
  }

  async getSubscription(id: string): Promise<WebhookSubscription | undefined> {
    const [row] = await this.sql<SubscriptionRow[]>`SELECT * FROM webhook_subscriptions WHERE id = ${id}`;
    return row ? fromRow(row) : undefined;
  }

  async listSubscriptions(filter: { event?: string } = {}): Promise<WebhookSubscription[]> {
    const rows =
      filter.event === undefined
        ? await this.sql<SubscriptionRow[]>`
            SELECT * FROM webhook_subscriptions WHERE deleted_at IS NULL ORDER BY created_at, id`
        : await this.sql<SubscriptionRow[]>`
            SELECT * FROM webhook_subscriptions
            WHERE deleted_at IS NULL AND ${filter.event} = ANY (string_to_array(events, ' '))
            ORDER BY created_at, id`;
    return rows.map(fromRow);
  }

  async pageSubscriptions(page: SubscriptionPage): Promise<WebhookSubscription[]> {
    // The event as a parameter either way (NULL: any), so paging adds two statements to prepare, not four.
    const event = page.event ?? null;
    const rows = page.after
      ? await this.sql<SubscriptionRow[]>`
          SELECT * FROM webhook_subscriptions
          WHERE deleted_at IS NULL
            AND (${event}::text IS NULL OR ${event}::text = ANY (string_to_array(events, ' ')))
            AND (created_at, id) > (SELECT created_at, id FROM webhook_subscriptions WHERE id = ${page.after})
          ORDER BY created_at, id LIMIT ${page.limit}`
      : await this.sql<SubscriptionRow[]>`
          SELECT * FROM webhook_subscriptions
          WHERE deleted_at IS NULL
            AND (${event}::text IS NULL OR ${event}::text = ANY (string_to_array(events, ' ')))
          ORDER BY created_at, id LIMIT ${page.limit}`;
    return rows.map(fromRow);
  }

  async rotateSecret(
    id: string,
    secret: string,
    previousExpiresAt: Date,
  ): Promise<WebhookSubscription | undefined> {
    const [row] = await this.sql<SubscriptionRow[]>`
      UPDATE webhook_subscriptions
      SET previous_secret = secret, previous_secret_expires_at = ${previousExpiresAt}, secret = ${secret}
      WHERE id = ${id} AND deleted_at IS NULL
      RETURNING *`;
    return row ? fromRow(row) : undefined;
  }

  async recordAttempt(attempt: AttemptRecord): Promise<number> {
    const [row] = await this.sql<{ attempt: number }[]>`
      INSERT INTO webhook_deliveries (subscription_id, event_id, attempt, status_code, outcome, error)
      SELECT ${attempt.subscriptionId}, ${attempt.eventId}, coalesce(max(attempt), 0) + 1,
             ${attempt.statusCode}, ${attempt.outcome}, ${attempt.error}
      FROM webhook_deliveries WHERE subscription_id = ${attempt.subscriptionId} AND event_id = ${attempt.eventId}
      RETURNING attempt`;
    return row?.attempt ?? 0;
  }

  async listAttempts(subscriptionId: string, eventId?: string): Promise<DeliveryAttempt[]> {
    const rows =
      eventId === undefined
        ? await this.sql<AttemptRow[]>`
            SELECT * FROM webhook_deliveries WHERE subscription_id = ${subscriptionId} ORDER BY id`
        : await this.sql<AttemptRow[]>`
            SELECT * FROM webhook_deliveries
            WHERE subscription_id = ${subscriptionId} AND event_id = ${eventId} ORDER BY id`;
    return rows.map(fromAttemptRow);
  }

  async pageAttempts(subscriptionId: string, page: AttemptPage): Promise<DeliveryAttempt[]> {
    const event = page.eventId === undefined ? this.sql`` : this.sql`AND event_id = ${page.eventId}`;
    const before = page.beforeSeq === undefined ? this.sql`` : this.sql`AND id < ${page.beforeSeq}`;
    const rows = await this.sql<AttemptRow[]>`
      SELECT * FROM webhook_deliveries
      WHERE subscription_id = ${subscriptionId} ${event} ${before}
      ORDER BY id DESC LIMIT ${page.limit}`;
    return rows.map(fromAttemptRow);
  }

  async wasDelivered(subscriptionId: string, eventId: string): Promise<boolean> {
    const rows = await this.sql`
      SELECT 1 FROM webhook_deliveries
      WHERE subscription_id = ${subscriptionId} AND event_id = ${eventId} AND outcome = 'delivered' LIMIT 1`;
    return rows.length > 0;
  }

  async recordInbound(source: string, webhookId: string): Promise<boolean> {
    const rows = await this.sql`
      INSERT INTO webhook_inbound_seen (source, webhook_id) VALUES (${source}, ${webhookId})
      ON CONFLICT DO NOTHING RETURNING webhook_id`;
    return rows.length > 0;
  }

  async hasSeenInbound(source: string, webhookId: string): Promise<boolean> {
    const rows = await this.sql`
      SELECT 1 FROM webhook_inbound_seen WHERE source = ${source} AND webhook_id = ${webhookId}`;
    return rows.length > 0;
  }

  async pruneAttempts(before: Date, batchSize = ATTEMPT_PRUNE_BATCH): Promise<number> {
    // Oldest first, a batch per statement (index webhook_deliveries_at): the first prune of a log kept for months
    // may delete millions, and on PGlite one statement holds the only connection.
    let pruned = 0;
    for (;;) {
      const rows = await this.sql`
        DELETE FROM webhook_deliveries WHERE id IN (
          SELECT id FROM webhook_deliveries WHERE at < ${before} ORDER BY at LIMIT ${batchSize})
        RETURNING 1`;
      pruned += rows.length;
      if (rows.length < batchSize) return pruned;
    }
  }

  async pruneInbound(before: Date): Promise<number> {
    const rows = await this.sql`
      DELETE FROM webhook_inbound_seen WHERE received_at < ${before} RETURNING webhook_id`;
    return rows.length;
  }
}

function fromRow(row: SubscriptionRow): WebhookSubscription {
  return {
    id: row.id,
    url: row.url,
    events: row.events.split(" ").filter(Boolean),
    secret: row.secret,
    previousSecret: row.previous_secret,
    previousSecretExpiresAt: row.previous_secret_expires_at,
    createdAt: row.created_at,
    deletedAt: row.deleted_at,
  };
}

function fromAttemptRow(row: AttemptRow): DeliveryAttempt {
  return {
    seq: Number(row.id),
    subscriptionId: row.subscription_id,
    eventId: row.event_id,
    attempt: row.attempt,
    statusCode: row.status_code,
    outcome: row.outcome,
    error: row.error,
    at: row.at,
  };
}
