// Secrets a node makes for itself: kept in the data dir (0600), stable across starts, never the public dev ones.
import { afterAll, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEV_CURRENT_SIGNING_KEY, DEV_NEXT_SIGNING_KEY, DEV_TOKEN } from "./local/broker/config.ts";
import { parseConfig } from "../shared/config/index.ts";
import { brokerCredentials, jwtSecret, privateDataDir, publicSigningKeysWarning } from "./secrets.ts";
import { adminTokenLine } from "./try-it.ts";

const dir = mkdtempSync(join(tmpdir(), "edgewise-secrets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("the embedded broker's credentials are the node's own: random, kept in the data dir, the same on restart", () => {
  const first = brokerCredentials(dir);
  expect([first.token, first.currentSigningKey, first.nextSigningKey]).not.toContain(DEV_TOKEN);
  expect(first.currentSigningKey).not.toBe(DEV_CURRENT_SIGNING_KEY);
  expect(first.nextSigningKey).not.toBe(DEV_NEXT_SIGNING_KEY);
  expect(first.currentSigningKey).toMatch(/^sig_[\w-]{43}$/);
  expect(new Set(Object.values(first)).size).toBe(3);
  expect(brokerCredentials(dir)).toEqual(first);
  for (const file of ["broker-token", "broker-current-signing-key", "broker-next-signing-key"])
    expect(statSync(join(dir, file)).mode & 0o777).toBe(0o600);
  const elsewhere = mkdtempSync(join(tmpdir(), "edgewise-secrets-"));
  expect(brokerCredentials(elsewhere).currentSigningKey).not.toBe(first.currentSigningKey);
  rmSync(elsewhere, { recursive: true, force: true });
});

test("a node that trusts qstash dev's public keys is warned, unless it listens on loopback only", () => {
  const dev = { currentSigningKey: DEV_CURRENT_SIGNING_KEY, nextSigningKey: DEV_NEXT_SIGNING_KEY };
  expect(publicSigningKeysWarning("0.0.0.0", dev)).toContain("anyone who can reach it can sign a delivery");
  expect(
    publicSigningKeysWarning("10.0.0.5", { ...brokerCredentials(dir), nextSigningKey: DEV_NEXT_SIGNING_KEY }),
  ).toContain("QSTASH_CURRENT_SIGNING_KEY");
  expect(publicSigningKeysWarning("127.0.0.1", dev)).toBeUndefined();
  expect(publicSigningKeysWarning("::1", dev)).toBeUndefined();
  expect(publicSigningKeysWarning("0.0.0.0", brokerCredentials(dir))).toBeUndefined();
  // A split deployment's gateway has no delivery endpoint (its queue delivers to the actor host): the keys open
  // nothing there, so README's split deployment, run as written on npm run broker's keys, warns on the actor host only.
  expect(publicSigningKeysWarning("0.0.0.0", dev, { servesDeliveries: false })).toBeUndefined();
  expect(publicSigningKeysWarning("0.0.0.0", dev, { servesDeliveries: true })).toContain(
    "can sign a delivery",
  );
  // Behind mutual TLS a client certificate is needed, but a gateway's passes as well as the broker's: still warned.
  expect(publicSigningKeysWarning("0.0.0.0", dev, { requiresClientCert: true })).toContain(
    "any client with a certificate from TLS_CA_FILE's CAs (a gateway's as well as the broker's) can sign a delivery",
  );
});

test("the JWT key: the node's own (0600, with an admin token) on defaults; none beside a JWKS; JWT_SECRET as given", async () => {
  const own = await jwtSecret(parseConfig({}), dir);
  expect(own.value).toMatch(/^[\w-]{43}$/);
  expect(statSync(join(dir, "jwt-secret")).mode & 0o777).toBe(0o600);
  expect(await own.adminToken()).toMatch(/^ey/);
  expect((await jwtSecret(parseConfig({}), dir)).value).toBe(own.value);
  // A day, or at most JWT_MAX_LIFETIME, so the token npm start prints is never one the node refuses.
  const lifetime = async (token: string | undefined) => {
    const claims = JSON.parse(Buffer.from(String(token).split(".")[1] ?? "", "base64url").toString());
    return claims.exp - claims.iat;
  };
  expect(await lifetime(await own.adminToken())).toBe(86_400);
  const capped = await jwtSecret(parseConfig({ JWT_MAX_LIFETIME: "1h" }), dir);
  expect(await lifetime(await capped.adminToken())).toBe(3_600);
  // And npm start says so when it prints it.
  expect(adminTokenLine(String(await own.adminToken()))).toStartWith(
    "[edgewise] admin token (24 h, local development): ey",
  );
  const shorter = await jwtSecret(parseConfig({ JWT_MAX_LIFETIME: "90s" }), dir);
  expect(adminTokenLine(String(await shorter.adminToken()))).toContain("(90 s, local development)");

  const idpOnly = mkdtempSync(join(tmpdir(), "edgewise-secrets-"));
  const withJwks = await jwtSecret(
    parseConfig({ JWT_JWKS_URL: "https://idp.example/.well-known/jwks.json" }),
    idpOnly,
  );
  expect(withJwks.value).toBeUndefined();
  expect(await withJwks.adminToken()).toBeUndefined();
  expect(existsSync(join(idpOnly, "jwt-secret"))).toBe(false);
  rmSync(idpOnly, { recursive: true, force: true });

  const given = "a-secret-the-operator-chose-0123456789abcdef";
  const both = await jwtSecret(
    parseConfig({ JWT_SECRET: given, JWT_JWKS_URL: "https://idp.example/jwks" }),
    dir,
  );
  expect(both.value).toBe(given);
  expect(await both.adminToken()).toBeUndefined();
});

test("the data dir is made private (0700, parents too); an existing one open to others is kept, with a warning", () => {
  const made = join(dir, "made", "data");
  expect(privateDataDir(made)).toBeUndefined();
  expect(statSync(made).mode & 0o777).toBe(0o700);
  expect(statSync(join(dir, "made")).mode & 0o777).toBe(0o700);
  const open = join(dir, "open");
  mkdirSync(open);
  chmodSync(open, 0o755);
  expect(privateDataDir(open)).toContain("open to other users (mode 755)");
  expect(statSync(open).mode & 0o777).toBe(0o755);
});

test("the files secrets are kept in on a developer's machine are ignored by git, so `git add .` cannot commit them", () => {
  // wrangler dev's .dev.vars (SECURITY.md: "not committed"), dotenv files, and the data dir with its keys and certs.
  const paths = [
    ".dev.vars",
    ".dev.vars.staging",
    ".env",
    ".env.local",
    ".edgewise/jwt-secret",
    ".edgewise/certs/gateway.key",
  ];
  const check = Bun.spawnSync(["git", "check-ignore", "--no-index", ...paths], {
    cwd: join(import.meta.dir, ".."),
  });
  expect(check.stdout.toString().trim().split("\n")).toEqual(paths);
});
