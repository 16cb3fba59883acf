// The actor inspector: its form's target (`/_console/actors`) and an actor's page (`/_console/actors/:type/:key`).
import type { Hono } from "hono";
import * as v from "valibot";
import {
  actorKeyRule,
  actorTypeRule,
  isValidActorKey,
  isValidActorType,
} from "../../actors/runtime/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import type { GatewayEnv } from "../env.ts";
import { validate } from "../middleware/validation/index.ts";
import { notFound, page, pageChecked, refused, unavailable } from "./page.tsx";
import type { ActorInspection, ConsoleOptions } from "./types.ts";
import { ActorView, InspectorForm } from "./views/actors.tsx";
import { Layout } from "./views/layout.tsx";

/**
 * The inspector's address, as every host checks an actor's: a malformed or oversized type or key is refused here,
 * before any host is asked (an unknown type was echoed back whole in "No actor type … is registered here").
 */
const ActorParams = v.object({
  type: v.pipe(
    v.string(),
    v.maxLength(64, `must be ${actorTypeRule}`),
    v.check((type) => isValidActorType(type), `must be ${actorTypeRule}`),
  ),
  key: v.pipe(
    v.string(),
    v.maxLength(256, `must be ${actorKeyRule}`),
    v.check((key) => isValidActorKey(key), `must be ${actorKeyRule}`),
  ),
});

/**
 * The inspector form's fields (`GET /_console/actors?type=&key=`), by the same rules: a bad one is refused here, not
 * redirected to an address that is then refused. A field left empty leaves the form to be filled in.
 */
const InspectorQuery = v.strictObject({
  type: v.optional(ActorParams.entries.type),
  key: v.optional(ActorParams.entries.key),
});

export function actorRoutes(app: Hono<GatewayEnv>, options: ConsoleOptions): void {
  const allTypes = [...options.topology.actors.map((a) => a.type)];

  const checkedForm = pageChecked(validate("query", InspectorQuery), "Invalid actor address");
  app.get("/_console/actors", checkedForm, (c) => {
    const { type, key } = c.req.valid("query");
    if (!type || !key) return c.redirect("/_console#inspector", 303);
    return c.redirect(`/_console/actors/${encodeURIComponent(type)}/${encodeURIComponent(key)}`, 303);
  });

  const checkedAddress = pageChecked(validate("param", ActorParams), "Invalid actor address");
  app.get("/_console/actors/:type/:key", checkedAddress, async (c) => {
    const { type, key } = c.req.valid("param");
    if (!options.inspect) {
      return notFound(c, "Not here", "Actors run on a remote host; inspect them there.");
    }
    let inspection: Awaited<ReturnType<NonNullable<ConsoleOptions["inspect"]>>>;
    try {
      inspection = await options.inspect({ type, key });
    } catch (error) {
      if (error instanceof EdgewiseError && error.code === "actor.unknown_type") {
        const known = allTypes.length > 0 ? `: the types here are ${allTypes.join(", ")}` : "";
        return refused(
          c,
          "No such actor type",
          new EdgewiseError("actor.unknown_type", `No actor type "${type}" is registered here${known}`),
        );
      }
      // Another refusal of the host (`actor.invalid_key`, should a host check more than the route): the request.
      if (error instanceof EdgewiseError && error.status < 500) {
        return refused(c, error.code === "actor.invalid_key" ? "Invalid actor key" : "Not inspected", error);
      }
      // Anything else is the host or its store failing (a closed or unreadable database, a host that is down):
      // a dependency down, not a missing actor, nor a bug of the console.
      return unavailable(
        c,
        "Actor store unreachable",
        new EdgewiseError(
          "unavailable",
          `the actor ${type}/${key} cannot be read: its host or its store is not answering`,
          {
            cause: error,
            ...(error instanceof EdgewiseError && typeof error.meta?.retryAfterSeconds === "number"
              ? { meta: { retryAfterSeconds: error.meta.retryAfterSeconds } }
              : {}),
          },
        ),
        "Reload to try again; the Breakers section shows the state of the node's dependencies.",
      );
    }
    if (neverSeen(inspection)) {
      return notFound(
        c,
        "No such actor",
        `There is no actor ${type}/${key}: it has never handled a message, and nothing is stored for it.`,
      );
    }
    return page(
      c,
      <Layout title={`${type}/${key}`}>
        <InspectorForm types={allTypes} type={type} actorKey={key} />
        <ActorView type={type} actorKey={key} inspection={inspection} />
      </Layout>,
    );
  });
}

/**
 * Whether nothing is stored for an actor: it has never committed a turn (every turn commits its state and version),
 * and holds no message or timer. Actors are virtual, so such an address is not an actor yet: its first message
 * creates it.
 */
function neverSeen(inspection: ActorInspection): boolean {
  return (
    inspection.version === undefined &&
    inspection.inboxSize === 0 &&
    inspection.outboxSize === 0 &&
    inspection.timers.length === 0
  );
}
