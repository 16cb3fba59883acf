// The API key endpoints: an admin issues a key for a subject (shown once, stored hashed) and revokes it.
import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import * as v from "valibot";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { noControlCharacters } from "../../shared/text/index.ts";
import type { AdminEvents } from "../audit/admin-events.ts";
import type { GatewayEnv } from "../env.ts";
import type { CachedApiKeyVerifier } from "../middleware/auth/api-key-cache.ts";
import type { ApiKeyStore } from "../middleware/auth/api-key-store.ts";
import { isApiKeyId, issueApiKey } from "../middleware/auth/api-keys.ts";
import { requireScope, scoped, scopes } from "../middleware/auth/principal.ts";
import { validate } from "../middleware/validation/index.ts";
import { json, jsonBodyErrors, problem, requires } from "../openapi.ts";
import { IdParam } from "./commerce/schemas.ts";
import { ApiKeyCreated } from "./responses.ts";

export interface ApiKeyRoutesOptions {
  store: ApiKeyStore;
  /** This node's verifier cache: a revoke then takes effect here at once, and on other nodes within its ttl. */
  cache?: Pick<CachedApiKeyVerifier, "forget"> | undefined;
  /**
   * Records `admin.api_key_created` and `admin.api_key_revoked` (never the key). A creation grants access: in the
   * store's own transaction when it has `writeIn` (the store is on the activity log's database), so no key exists
   * without its record; else once done. A revocation takes it away: always once done, so a key stops working even
   * when its record cannot be written (warn line, counted `failed`).
   */
  adminEvents?: AdminEvents | undefined;
}

export const CreateApiKeyBody = v.strictObject({
  sub: v.pipe(
    v.string(),
    v.minLength(1, "must not be empty"),
    v.maxLength(256, "must be at most 256 characters"),
    noControlCharacters,
  ),
  scopes: v.pipe(
    v.array(v.picklist(scopes, "must be a known scope")),
    v.minLength(1, "must name at least one scope"),
    v.transform((granted) => [...new Set(granted)]),
  ),
  name: v.optional(
    v.pipe(v.string(), v.maxLength(200, "must be at most 200 characters"), noControlCharacters),
  ),
});

export function apiKeyRoutes(options: ApiKeyRoutesOptions): Hono<GatewayEnv> {
  const app = new Hono<GatewayEnv>();

  app.post(
    "/v1/api-keys",
    describeRoute({
      summary: "Issue an API key for a subject (admin); the key is shown only in this answer",
      description:
        "The key and its record in the activity log (admin.api_key_created: who, for whom, which scopes) are " +
        "written in one transaction: if the record cannot be written, the answer is 503, no key exists and none is shown.",
      tags: ["api-keys"],
      ...requires("admin", { 201: json("The key, shown only here", ApiKeyCreated), ...jsonBodyErrors }),
    }),
    scoped("admin"),
    validate("json", CreateApiKeyBody),
    async (c) => {
      requireScope(c.var.principal, "admin");
      const grant = c.req.valid("json");
      const target = (id: string) => ({ subject: `api-keys/${id}`, apiKeyId: id, sub: grant.sub });
      const change = { scopes: grant.scopes, ...(grant.name !== undefined ? { name: grant.name } : {}) };
      const audit = options.adminEvents;
      const writeIn = audit?.writeIn;
      if (audit && writeIn) {
        // With the request's signal: a key still waiting to commit when the caller is answered 504 is rolled back.
        const { id, key } = await audit.recordInTransaction(c, "api_key_created", undefined, (eventOf) =>
          issueApiKey(
            options.store,
            grant,
            (tx, created) => writeIn(tx, eventOf(change, target(created.id))),
            c.var.signal,
          ),
        );
        return c.json({ id, key }, 201);
      }
      const { id, key } = await issueApiKey(options.store, grant, undefined, c.var.signal);
      await audit?.record(c, "api_key_created", target(id), change);
      return c.json({ id, key }, 201);
    },
  );

  app.delete(
    "/v1/api-keys/:id",
    describeRoute({
      summary: "Revoke an API key (admin): it stops working on every node within 5 s",
      description:
        "The key is revoked first, then the revocation is recorded in the activity log (admin.api_key_revoked): " +
        "a revocation never waits on its record, so if the record cannot be written the key is revoked all the " +
        "same and the answer is 204 (the failure is logged at warn and counted in edgewise_admin_events_total).",
      tags: ["api-keys"],
      ...requires("admin", {
        204: { description: "Revoked; also when it already was (revoking is idempotent)" },
        404: problem("No API key was ever issued with this id"),
      }),
    }),
    scoped("admin"),
    // The same rule as every other path id (400 naming `id`), checked once the caller may know what exists.
    validate("param", IdParam),
    async (c) => {
      requireScope(c.var.principal, "admin");
      const { id } = c.req.valid("param");
      // A URL-safe id of another shape cannot be a key's: no query for it.
      if (!isApiKeyId(id) || !(await options.store.revoke(id))) {
        throw new EdgewiseError("not_found", "no such API key");
      }
      options.cache?.forget(id);
      // After the revocation, never with it: a leaked key must stop working even if its record cannot be written.
      await options.adminEvents?.record(c, "api_key_revoked", { subject: `api-keys/${id}`, apiKeyId: id });
      return c.body(null, 204);
    },
  );

  return app;
}
