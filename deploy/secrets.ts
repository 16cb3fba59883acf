// Secrets a node needs at start: the JWT key from JWT_SECRET, or one generated into the data dir once.
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { issueToken } from "../edge/middleware/auth/tokens.ts";
import type { Config } from "../shared/config/index.ts";

export interface JwtSecret {
  value: string;
  /** True when the key is the node's own (generated into the data dir), not one the operator gave. */
  local: boolean;
  /** An admin token for the newcomer's first requests; only for a local key, never for an operator's. */
  adminToken(): Promise<string | undefined>;
}

export async function jwtSecret(config: Config, dataDir: string): Promise<JwtSecret> {
  const file = join(dataDir, "jwt-secret");
  let value = config.JWT_SECRET;
  const local = value === undefined;
  if (value === undefined) {
    if (!existsSync(file)) {
      const bytes = crypto.getRandomValues(new Uint8Array(32));
      writeFileSync(file, Buffer.from(bytes).toString("base64url"), { mode: 0o600 });
      chmodSync(file, 0o600);
    }
    value = readFileSync(file, "utf8").trim();
  }
  const secret = value;
  return {
    value: secret,
    local,
    adminToken: async () =>
      local
        ? await issueToken({
            sub: "admin",
            scopes: ["admin"],
            ttlSeconds: 86_400,
            secret,
            ...(config.JWT_ISSUER ? { issuer: config.JWT_ISSUER } : {}),
            ...(config.JWT_AUDIENCE ? { audience: config.JWT_AUDIENCE } : {}),
          })
        : undefined,
  };
}
