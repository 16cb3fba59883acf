// Admin actions (keys, subscriptions, balances, stock, dead letters, backups) as `admin.<action>` CloudEvents.
import type { Context } from "hono";
import type postgres from "postgres";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { errorFields, type Logger } from "../../shared/telemetry/log/index.ts";
import type { GatewayEnv } from "../env.ts";
import type { Principal } from "../middleware/auth/principal.ts";

export const adminActions = [
  "api_key_created",
  "api_key_revoked",
  "webhook_subscription_created",
  "webhook_subscription_deleted",
  "webhook_secret_rotated",
  "account_set",
  "inventory_set",
  "dead_letter_replayed",
  "dead_letter_deleted",
  "dead_letters_purged",
  "backup_taken",
  "console_signed_in",
] as const;
export type AdminAction = (typeof adminActions)[number];

/** Who did it: the subject, and how it authenticated (an API key by its id, never its secret). */
export interface AdminActor {
  sub: string;
  /** `none` only where a route let an anonymous caller act, which none of the audited ones does. */
  via: "jwt" | "api-key" | "console-cookie" | "console-bearer" | "none";
  apiKeyId?: string;
}

/** What was acted on: `subject` is what GET /v1/activity?subject= finds it by; the rest names it in full. */
export type AdminTarget = { subject: string } & Record<string, string>;

export interface AdminEvent {
  action: AdminAction;
  actor: AdminActor;
  requestId: string;
  clientIp: string | undefined;
  target: AdminTarget;
  /** What changed (e.g. a balance before and after): never a secret, a token or a key. */
  change?: Record<string, unknown>;
}

/** The actor of an API call, from its principal. */
export function actorOf(principal: Principal): AdminActor {
  return {
    sub: principal.sub,
    via: principal.via,
    ...(principal.apiKeyId !== undefined ? { apiKeyId: principal.apiKeyId } : {}),
  };
}

/** An admin event as the activity log keeps it: the CloudEvent `admin.<action>`. */
export function adminEventEnvelope(event: AdminEvent) {
  const { subject, ...target } = event.target;
  return createEnvelope({
    type: `admin.${event.action}`,
    source: "edgewise://gateway",
    subject: subject.slice(0, 1024),
    data: {
      actor: event.actor,
      requestId: event.requestId,
      ...(event.clientIp !== undefined ? { clientIp: event.clientIp } : {}),
      target: { subject, ...target },
      ...(event.change !== undefined ? { change: event.change } : {}),
    },
  });
}

/**
 * Writes one admin event on `tx`, a transaction of a store whose tables are on the activity log's own database, by
 * the log's insert on that transaction: the event is kept if and only if the store's change is.
 */
export type AdminEventWriterIn = (tx: postgres.TransactionSql, event: AdminEvent) => Promise<unknown>;

/** Records the admin actions of requests: awaited by the route, so its answer comes after the record. */
export interface AdminEvents {
  /**
   * Records `action` by the request's caller (`actor` when the caller is not its principal, e.g. a console
   * session), after the action. Never throws: the action already happened, so a failure is logged at warn and
   * counted instead.
   */
  record(
    c: Context<GatewayEnv>,
    action: AdminAction,
    target: AdminTarget,
    change?: Record<string, unknown>,
    actor?: AdminActor,
  ): Promise<void>;
  /**
   * Records `action` in the action's own transaction, where its store can write the record there (`account_set`:
   * the ledger and the activity log share the database; an API key or a webhook subscription created, through
   * `writeIn`). For grants only: a revocation is recorded after it with `record`, never held back by its record.
   * `act` does the action, and writes the event `eventOf` makes from what changed in the same transaction, or throws
   * and keeps neither. `eventOf`'s `target` is for a target known only once the store wrote it (a new key's or
   * subscription's id); else the one given here. Its error is rethrown (the caller's problem+json); when `act` had
   * made the event, that is logged at warn and counted as `failed` too.
   */
  recordInTransaction<T>(
    c: Context<GatewayEnv>,
    action: AdminAction,
    target: AdminTarget | undefined,
    act: (eventOf: (change?: Record<string, unknown>, target?: AdminTarget) => AdminEvent) => Promise<T>,
    actor?: AdminActor,
  ): Promise<T>;
  /**
   * Present where the activity log is a Postgres table (the commerce system's): writes an event on a transaction of
   * a store on that same database, for the recorder a route hands the store with `recordInTransaction`. Only for a
   * store on the log's own database (every host builds the API key and webhook stores on the log's pool); absent,
   * the route records after the action with `record`.
   */
  writeIn?: AdminEventWriterIn;
}

export interface AdminEventsOptions {
  /** Writes one event (to the activity log). */
  write: (event: AdminEvent) => Promise<unknown>;
  /** Writes one event on a store's transaction of the activity log's database: `AdminEvents.writeIn`. */
  writeIn?: AdminEventWriterIn;
  /** Hears each outcome: `edgewise_admin_events_total{action,outcome}`. */
  onOutcome?: (action: AdminAction, outcome: "recorded" | "failed") => void;
  /** Each failure to record at warn, with the action, target and actor (never the change). */
  logger?: Logger;
}

export function adminEvents(options: AdminEventsOptions): AdminEvents {
  const eventOf = (
    c: Context<GatewayEnv>,
    action: AdminAction,
    target: AdminTarget,
    change: Record<string, unknown> | undefined,
    actor: AdminActor | undefined,
  ): AdminEvent => {
    const principal = c.var.principal;
    return {
      action,
      actor: actor ?? (principal ? actorOf(principal) : { sub: "anonymous", via: "none" }),
      requestId: c.var.requestId,
      clientIp: c.var.clientIp,
      target,
      ...(change !== undefined ? { change } : {}),
    };
  };
  const failed = (c: Context<GatewayEnv>, event: AdminEvent, error: unknown, rolledBack: boolean) => {
    options.onOutcome?.(event.action, "failed");
    (options.logger ?? c.var.log)?.warn("admin event not recorded", {
      action: event.action,
      target: event.target,
      actor: event.actor,
      request_id: c.var.requestId,
      // Whether the action was undone with it (recorded in its transaction), or stands without a record.
      action_rolled_back: rolledBack,
      error: errorFields(error),
    });
  };
  return {
    ...(options.writeIn ? { writeIn: options.writeIn } : {}),
    async record(c, action, target, change, actor) {
      const event = eventOf(c, action, target, change, actor);
      try {
        await options.write(event);
        options.onOutcome?.(action, "recorded");
      } catch (error) {
        failed(c, event, error, false);
      }
    },

    async recordInTransaction(c, action, target, act, actor) {
      let made: AdminEvent | undefined;
      try {
        const done = await act((change, known) => {
          const about = known ?? target;
          if (!about) throw new Error(`admin.${action}: no target to record`);
          made = eventOf(c, action, about, change, actor);
          return made;
        });
        if (made) options.onOutcome?.(action, "recorded");
        return done;
      } catch (error) {
        // Before the event was made, the action failed on its own: nothing to count.
        if (made) failed(c, made, error, true);
        throw error;
      }
    },
  };
}
