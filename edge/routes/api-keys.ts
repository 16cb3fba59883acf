// The API key endpoints: an admin issues a key for a subject (shown once, stored hashed) and revokes it.
import { Hono } from "hono";
import * as v from "valibot";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { validationError } from "../../shared/errors/valibot.ts";
import { noControlCharacters } from "../../shared/text/index.ts";
import type { GatewayEnv } from "../env.ts";
import type { CachedApiKeyVerifier } from "../middleware/auth/api-key-cache.ts";
import type { ApiKeyStore } from "../middleware/auth/api-key-store.ts";
import { isApiKeyId, issueApiKey } from "../middleware/auth/api-keys.ts";
import { requireScope, scopes } from "../middleware/auth/principal.ts";

export interface ApiKeyRoutesOptions {
  store: ApiKeyStore;
  /** This node's verifier cache: a revoke then takes effect here at once, and on other nodes within its ttl. */
  cache?: Pick<CachedApiKeyVerifier, "forget"> | undefined;
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

  app.post("/v1/api-keys", async (c) => {
    requireScope(c.var.principal, "admin");
    const body = await c.req.json().catch(() => {
      throw new EdgewiseError("request.invalid", "the body must be JSON");
    });
    const parsed = v.safeParse(CreateApiKeyBody, body);
    if (!parsed.success) throw validationError("request.invalid", "request body", parsed.issues);
    const { id, key } = await issueApiKey(options.store, parsed.output);
    return c.json({ id, key }, 201);
  });

  app.delete("/v1/api-keys/:id", async (c) => {
    requireScope(c.var.principal, "admin");
    const id = c.req.param("id");
    // A malformed id cannot exist: no query for it.
    if (!isApiKeyId(id) || !(await options.store.revoke(id))) {
      throw new EdgewiseError("not_found", "no such API key");
    }
    options.cache?.forget(id);
    return c.body(null, 204);
  });

  return app;
}
