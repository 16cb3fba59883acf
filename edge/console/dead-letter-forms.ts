// The console's dead-letter forms: replay or delete one dead letter, or purge them all, through the broker's REST API.
import type { Context, Hono, MiddlewareHandler } from "hono";
import * as v from "valibot";
import { EdgewiseError } from "../../shared/errors/index.ts";
import type { AdminAction, AdminTarget } from "../audit/admin-events.ts";
import type { GatewayEnv } from "../env.ts";
import { validate } from "../middleware/validation/index.ts";
import type { ConsoleAccess } from "./access.tsx";
import type { BrokerCall } from "./broker.ts";
import { pageChecked, unavailable } from "./page.tsx";
import type { ConsoleOptions } from "./types.ts";

const dlqIdRule =
  "a dead letter's id as the broker lists it: 1-128 letters, digits, '_' or '-', from a letter or digit";

/**
 * The words the broker's REST API has of its own under `/v2/dlq/` (`POST /v2/dlq/retry/multi`, `DELETE
 * /v2/dlq/multi`: the calls that take a list of ids in their body), which no dead letter is named.
 */
const brokerWords = new Set(["retry", "multi"]);

/**
 * A dead letter's id, checked before the broker is called. The embedded broker's are `dlq_` and 24 letters and
 * digits (deploy/local/broker/ingest.ts); QStash documents no format, its examples are Redis stream ids
 * (`1725323658779-0`). So the rule is the alphabet both write in, bounded, not one broker's exact shape: the console
 * in front of QStash must never refuse an id QStash listed on its own page. A `/`, `%`, space or markup, an
 * oversized id or one of the API's own words never reaches the broker.
 */
const DeadLetterParams = v.object({
  dlqId: v.pipe(
    v.string(),
    v.regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/, `must be ${dlqIdRule}`),
    v.check((dlqId) => !brokerWords.has(dlqId), `must be ${dlqIdRule}, not one of the broker's own words`),
  ),
});

export function deadLetterRoutes(
  app: Hono<GatewayEnv>,
  options: ConsoleOptions,
  access: ConsoleAccess,
  brokerCall: BrokerCall,
): void {
  const back = (c: Context<GatewayEnv>, notice: string) =>
    c.redirect(`/_console?notice=${notice}#queues`, 303);
  const requireBroker = () => {
    if (!options.broker) throw new EdgewiseError("not_found", "no broker configured");
  };
  /**
   * A form's call to the broker, then back to the dead letters with `done` (or `failed` when the broker refused).
   * When the broker is unavailable, a browser gets a console page saying so, any other client the problem+json.
   */
  async function brokerForm(
    c: Context<GatewayEnv>,
    path: string,
    method: string,
    done: string,
    audit: { action: AdminAction; target: AdminTarget },
  ) {
    requireBroker();
    let response: Response;
    try {
      response = await brokerCall(path, { method }, c.req.raw.signal);
    } catch (error) {
      if (!(error instanceof EdgewiseError)) throw error;
      return unavailable(
        c,
        "Broker unreachable",
        error,
        "Reload the console to see the dead letters as they are, and try again once the broker is back (the Breakers section shows its state).",
      );
    }
    await response.body?.cancel();
    if (response.ok) {
      // Who did it: the admin of the console session (by its cookie) or of the Bearer call, never its token.
      const session = access.sessionOf(c);
      await options.adminEvents?.record(c, audit.action, audit.target, undefined, {
        sub: session.principal.sub,
        via: session.via === "cookie" ? "console-cookie" : "console-bearer",
      });
    }
    return back(c, response.ok ? done : "failed");
  }

  // The form's CSRF check comes first: a forged form learns nothing about the id (400) it would be refused for.
  const formChecked: MiddlewareHandler<GatewayEnv> = async (c, next) => {
    const refused = await access.checkForm(c);
    if (refused) return refused;
    await next();
  };
  // `/_console/dlq/purge` is matched as a parameter: a literal segment beside `:dlqId` would make Hono's
  // RegExpRouter refuse the route table, and every request of the node would go through the slower TrieRouter.
  app.post("/_console/dlq/:action", async (c) => {
    if (c.req.param("action") !== "purge")
      throw new EdgewiseError("not_found", `no route for POST ${c.req.path}`);
    const refused = await access.checkForm(c);
    if (refused) return refused;
    return brokerForm(c, "/v2/dlq", "DELETE", "purged", {
      action: "dead_letters_purged",
      target: { subject: "dlq" },
    });
  });
  const checkedId = pageChecked(validate("param", DeadLetterParams), "Invalid dead letter");
  app.post("/_console/dlq/:dlqId/retry", formChecked, checkedId, async (c) => {
    const { dlqId } = c.req.valid("param");
    return brokerForm(c, `/v2/dlq/retry/${encodeURIComponent(dlqId)}`, "POST", "replayed", {
      action: "dead_letter_replayed",
      target: { subject: `dlq/${dlqId}`, dlqId },
    });
  });
  app.post("/_console/dlq/:dlqId/delete", formChecked, checkedId, async (c) => {
    const { dlqId } = c.req.valid("param");
    return brokerForm(c, `/v2/dlq/${encodeURIComponent(dlqId)}`, "DELETE", "deleted", {
      action: "dead_letter_deleted",
      target: { subject: `dlq/${dlqId}`, dlqId },
    });
  });
}
