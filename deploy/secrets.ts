// Secrets a node needs at start, from the environment or generated into the data dir once: the JWT key, the
// embedded broker's token and signing keys.
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { issueToken } from "../edge/middleware/auth/tokens.ts";
import type { Config } from "../shared/config/index.ts";
import { isLoopbackHost } from "../shared/net/ip.ts";
import { isDevSigningKey } from "./local/broker/config.ts";

export interface JwtSecret {
  /** Undefined on a node that takes its tokens from a JWKS only. */
  value: string | undefined;
  /** True when the key is the node's own (generated into the data dir), not one the operator gave. */
  local: boolean;
  /** An admin token for the newcomer's first requests; only for a local key, never for an operator's. */
  adminToken(): Promise<string | undefined>;
}

/**
 * Makes the data dir, private to this user (0700): it holds the node's secrets, its databases and their WAL. A dir
 * that already exists is left as it is, with a warning if others may enter it (its mode may be the operator's
 * choice, e.g. for backups); the files in it are private whatever its mode (data-dir-files.ts).
 */
export function privateDataDir(dataDir: string): string | undefined {
  if (!existsSync(dataDir)) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const mode = statSync(dataDir).mode & 0o777;
  if (process.platform === "win32" || (mode & 0o077) === 0) return undefined;
  return (
    `data dir ${dataDir} is open to other users (mode ${mode.toString(8)}): it holds this node's secrets and ` +
    "databases; chmod 700 it unless others must read it"
  );
}

/** A random secret kept in `<dataDir>/<name>` (mode 0600): made on first use, the same one on every later start. */
function dataDirSecret(dataDir: string, name: string, prefix = ""): string {
  const file = join(dataDir, name);
  if (!existsSync(file)) {
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    writeFileSync(file, prefix + Buffer.from(bytes).toString("base64url"), { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return readFileSync(file, "utf8").trim();
}

/**
 * The embedded broker's token and signing keys: the node's own, kept in the data dir. Never `qstash dev`'s public
 * ones, which the standalone broker defaults to: the delivery route trusts these keys, and it answers anyone who
 * can reach the gateway, so with public keys anyone could sign a delivery (a payment, a restock) and have it applied.
 */
export function brokerCredentials(dataDir: string): {
  token: string;
  currentSigningKey: string;
  nextSigningKey: string;
} {
  return {
    token: dataDirSecret(dataDir, "broker-token"),
    currentSigningKey: dataDirSecret(dataDir, "broker-current-signing-key", "sig_"),
    nextSigningKey: dataDirSecret(dataDir, "broker-next-signing-key", "sig_"),
  };
}

/** Where a node's delivery route is, for `publicSigningKeysWarning`. */
export interface DeliveryListener {
  /** False on a split deployment's gateway: it has no delivery route. Default true. */
  servesDeliveries?: boolean;
  /** The listener admits only clients with a certificate from TLS_CA_FILE's CAs (an actor host's mutual TLS). */
  requiresClientCert?: boolean;
}

/**
 * A warning for a node whose delivery route trusts `qstash dev`'s public signing keys (as `npm run broker` signs
 * with by default) while it listens beyond loopback: anyone who can reach it could sign a delivery. A gateway of a
 * split deployment (`servesDeliveries: false`) has no delivery route (its queue delivers to the actor host), so
 * the keys open nothing there and it is not warned. Behind mutual TLS the route is reached only with a client
 * certificate, but a gateway's as well as the broker's (Bun cannot tell the handler which, bun#14097): still warned,
 * saying so.
 */
export function publicSigningKeysWarning(
  host: string,
  keys: { currentSigningKey: string; nextSigningKey: string },
  { servesDeliveries = true, requiresClientCert = false }: DeliveryListener = {},
): string | undefined {
  const loopbackOnly = isLoopbackHost(host);
  if (!servesDeliveries || loopbackOnly) return undefined;
  if (![keys.currentSigningKey, keys.nextSigningKey].some(isDevSigningKey)) return undefined;
  const who = requiresClientCert
    ? `, so any client with a certificate from TLS_CA_FILE's CAs (a gateway's as well as the broker's) can sign a delivery`
    : ", so anyone who can reach it can sign a delivery";
  return (
    `deliveries: this node trusts qstash dev's public signing keys and listens on ${host}${who}; ` +
    "set QSTASH_CURRENT_SIGNING_KEY and QSTASH_NEXT_SIGNING_KEY to keys of your own"
  );
}

/**
 * The HS256 key: JWT_SECRET, else the node's own, generated into the data dir, with a ready admin token for the
 * newcomer. A node given a JWKS (JWT_JWKS_URL) and no JWT_SECRET has none: its tokens come from that identity
 * provider only, and a key of its own would mint admin tokens beside it.
 */
export async function jwtSecret(config: Config, dataDir: string): Promise<JwtSecret> {
  const local = config.JWT_SECRET === undefined && config.JWT_JWKS_URL === undefined;
  const secret = config.JWT_SECRET ?? (local ? dataDirSecret(dataDir, "jwt-secret") : undefined);
  return {
    value: secret,
    local,
    adminToken: async () =>
      local && secret
        ? await issueToken({
            sub: "admin",
            scopes: ["admin"],
            // A day, or less when JWT_MAX_LIFETIME says so (a longer token would be refused).
            ttlSeconds: Math.min(
              86_400,
              Math.floor((config.JWT_MAX_LIFETIME ?? Number.POSITIVE_INFINITY) / 1000),
            ),
            secret,
            ...(config.JWT_ISSUER ? { issuer: config.JWT_ISSUER } : {}),
            ...(config.JWT_AUDIENCE ? { audience: config.JWT_AUDIENCE } : {}),
          })
        : undefined,
  };
}
