// The console's dead-letter forms: replay or delete one dead letter, or purge them all, through the broker's REST API.
import type { Context, Hono } from "hono";
import { EdgewiseError } from "../../shared/errors/index.ts";
import type { GatewayEnv } from "../env.ts";
import type { ConsoleAccess } from "./access.tsx";
import type { BrokerCall } from "./broker.ts";
import { unavailable } from "./page.tsx";
import type { ConsoleOptions } from "./types.ts";

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
  async function brokerForm(c: Context<GatewayEnv>, path: string, method: string, done: string) {
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
    return back(c, response.ok ? done : "failed");
  }

  // `/_console/dlq/purge` is matched as a parameter: a literal segment beside `:dlqId` would make Hono's
  // RegExpRouter refuse the route table, and every request of the node would go through the slower TrieRouter.
  app.post("/_console/dlq/:action", async (c) => {
    if (c.req.param("action") !== "purge")
      throw new EdgewiseError("not_found", `no route for POST ${c.req.path}`);
    const refused = await access.checkForm(c);
    if (refused) return refused;
    return brokerForm(c, "/v2/dlq", "DELETE", "purged");
  });
  app.post("/_console/dlq/:dlqId/retry", async (c) => {
    const refused = await access.checkForm(c);
    if (refused) return refused;
    return brokerForm(c, `/v2/dlq/retry/${encodeURIComponent(c.req.param("dlqId"))}`, "POST", "replayed");
  });
  app.post("/_console/dlq/:dlqId/delete", async (c) => {
    const refused = await access.checkForm(c);
    if (refused) return refused;
    return brokerForm(c, `/v2/dlq/${encodeURIComponent(c.req.param("dlqId"))}`, "DELETE", "deleted");
  });
}
