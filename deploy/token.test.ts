// `npm run token`: a JWT the gateway with the same settings accepts, from the environment or wrangler's .dev.vars.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { decodeJwt } from "jose";
import { jwtClaimChecks, jwtVerifier } from "../edge/middleware/auth/jwt.ts";
import { parseConfig } from "../shared/config/index.ts";
import { readDevVars } from "./token.ts";

const script = resolve(import.meta.dir, "token.ts");
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI in a directory of its own (npm runs it in the repo's root, where .dev.vars is). */
async function token(args: string[], options: { devVars?: string; env?: Record<string, string> } = {}) {
  const cwd = mkdtempSync(join(tmpdir(), "edgewise-token-"));
  dirs.push(cwd);
  if (options.devVars !== undefined) writeFileSync(join(cwd, ".dev.vars"), options.devVars);
  const env: Record<string, string> = { PATH: process.env.PATH ?? "", ...options.env };
  const child = Bun.spawn([process.execPath, script, ...args], { cwd, env, stdout: "pipe", stderr: "pipe" });
  const [code, out, err] = await Promise.all([
    child.exited,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  return { code, out: out.trim(), err };
}

/** What a gateway with these settings makes of the token: its principal, or why it refused it. */
async function verify(settings: Record<string, string>, jwt: string) {
  const config = parseConfig(settings);
  const verifier = jwtVerifier({ secret: config.JWT_SECRET, ...jwtClaimChecks(config) });
  if (!verifier) throw new Error("expected a verifier");
  return verifier(jwt);
}

/** The scopes a verified token grants, sorted; it fails the test when the token was refused. */
function scopesOf(outcome: Awaited<ReturnType<typeof verify>>): string[] {
  if (!("principal" in outcome)) throw new Error(`refused: ${outcome.reason}`);
  return [...outcome.principal.scopes].sort();
}

const secret = "a-worker-secret-of-at-least-32-chars-0123";

test("with JWT_SECRET in .dev.vars: an admin token for an hour, which the Worker's settings accept", async () => {
  const devVars = `# wrangler dev's variables\nQSTASH_URL=http://127.0.0.1:8080\nJWT_SECRET="${secret}"\n`;
  const run = await token([], { devVars });
  expect({ code: run.code, err: run.err }).toEqual({ code: 0, err: "" });
  const outcome = await verify({ JWT_SECRET: secret }, run.out);
  expect(outcome).toMatchObject({ principal: { sub: "admin", via: "jwt" } });
  expect(scopesOf(outcome)).toEqual(["admin"]);
  const claims = decodeJwt(run.out);
  expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(3_600);
  // Another key refuses it.
  expect(await verify({ JWT_SECRET: `${secret}-other` }, run.out)).toHaveProperty("reason");
});

test("--sub, --scope, and the JWT_ISSUER, JWT_AUDIENCE and JWT_MAX_LIFETIME the gateway checks", async () => {
  const settings = {
    JWT_SECRET: secret,
    JWT_ISSUER: "https://issuer.example",
    JWT_AUDIENCE: "edgewise",
    JWT_MAX_LIFETIME: "10m",
  };
  // The environment wins over .dev.vars, as for any variable.
  const run = await token(
    ["--sub", "alice", "--scope", "orders:read", "--scope", "orders:write", "--ttl", "2h"],
    {
      devVars: "JWT_SECRET=not-this-one-though-it-is-long-enough-0123\n",
      env: settings,
    },
  );
  expect(run.code).toBe(0);
  const outcome = await verify(settings, run.out);
  expect(outcome).toMatchObject({ principal: { sub: "alice" } });
  expect(scopesOf(outcome)).toEqual(["orders:read", "orders:write"]);
  const claims = decodeJwt(run.out);
  expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(600);
});

test("no JWT_SECRET, or a bad one: exit 78, naming it and never printing its value", async () => {
  const missing = await token([]);
  expect(missing.code).toBe(78);
  expect(missing.out).toBe("");
  expect(missing.err).toContain("JWT_SECRET is not set");
  const short = await token([], { env: { JWT_SECRET: "too-short-a-key" } });
  expect(short.code).toBe(78);
  expect(short.err).toContain("JWT_SECRET must be at least 32 characters");
  expect(short.err).not.toContain("too-short-a-key");
  expect((await token(["--ttl", "soon"], { env: { JWT_SECRET: secret } })).code).toBe(64);
});

test(".dev.vars lines: quotes, comments, export and blanks", () => {
  expect(readDevVars("A=1\n# B=2\n\nexport C=\"x y\"\nD='z'\nE = spaced \n")).toEqual({
    A: "1",
    C: "x y",
    D: "z",
    E: "spaced",
  });
});
