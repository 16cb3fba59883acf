// A Worker's console cookies across a rotation of their secret: sealed under the previous one, they last until `exp`.
import { describe, expect, test } from "bun:test";
import type { ActorHost } from "../../actors/runtime/index.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { createApp } from "../app.ts";
import { issueToken } from "../middleware/auth/tokens.ts";
import { consoleSessionSecrets, type SignedSessionOptions, signedConsoleSessions } from "./signed-session.ts";

const jwtSecret = "signed-session-jwt-secret-7f3a9c2e51b8d604";
const oldSecret = "console-old-secret-2b9e4f1a7c3d8e6051";
const newSecret = "console-new-secret-8d1c5a3f9e2b7046c4";

function consoleApp(secrets: Pick<SignedSessionOptions, "secret" | "previousSecret">) {
  return createApp({
    actors: {} as unknown as ActorHost,
    auth: { secret: jwtSecret },
    console: {
      topology: { actors: [], consumers: [], subscriptions: [] },
      breakers: () => [],
      sessionStore: signedConsoleSessions({ secret: jwtSecret }, secrets),
    },
  });
}

/** Signs in with `?token=`: the cookie pair a browser sends back. */
async function signIn(app: ReturnType<typeof consoleApp>): Promise<string> {
  const admin = await issueToken({ sub: "op", scopes: ["admin"], ttlSeconds: 600, secret: jwtSecret });
  const login = await app.request(`/_console?token=${admin}`);
  expect(login.status).toBe(303);
  return (login.headers.get("set-cookie") ?? "").split(";")[0] as string;
}

const open = async (app: ReturnType<typeof consoleApp>, cookie: string) =>
  (await app.request("/_console", { headers: { cookie } })).status;

describe("rotating the console's session secret", () => {
  test("a cookie sealed under the previous secret opens the console beside new ones; unset, it is refused", async () => {
    const before = await signIn(consoleApp({ secret: oldSecret }));
    const rotating = consoleApp({ secret: newSecret, previousSecret: oldSecret });
    expect(await open(rotating, before)).toBe(200);
    const after = await signIn(rotating);
    expect(await open(rotating, after)).toBe(200);
    // New cookies are sealed under the new secret only: a console without the previous one takes them.
    const done = consoleApp({ secret: newSecret });
    expect(await open(done, after)).toBe(200);
    expect(await open(done, before)).toBe(401);
    // A third secret's cookie is refused during the rotation too.
    expect(await open(rotating, await signIn(consoleApp({ secret: `${newSecret}-third` })))).toBe(401);
  });

  test("the secrets a Worker seals with: CONSOLE_SESSION_*, else JWT_* (whose previous secret then rotates them too)", () => {
    const of = (env: Record<string, string>) => consoleSessionSecrets(parseConfig(env));
    expect(of({ CONSOLE_SESSION_SECRET: newSecret, CONSOLE_SESSION_PREVIOUS_SECRET: oldSecret })).toEqual({
      secret: newSecret,
      previousSecret: oldSecret,
    });
    // A dedicated secret is not rotated by JWT_PREVIOUS_SECRET: that one's tokens are not its cookies.
    expect(
      of({ CONSOLE_SESSION_SECRET: newSecret, JWT_SECRET: jwtSecret, JWT_PREVIOUS_SECRET: oldSecret }),
    ).toEqual({ secret: newSecret, previousSecret: undefined });
    expect(of({ JWT_SECRET: newSecret, JWT_PREVIOUS_SECRET: oldSecret })).toEqual({
      secret: newSecret,
      previousSecret: oldSecret,
    });
    expect(of({})).toBeUndefined();
  });

  test("CONSOLE_SESSION_PREVIOUS_SECRET without CONSOLE_SESSION_SECRET, or short, is refused, never printed", () => {
    expect(() => parseConfig({ JWT_SECRET: jwtSecret, CONSOLE_SESSION_PREVIOUS_SECRET: oldSecret })).toThrow(
      /CONSOLE_SESSION_PREVIOUS_SECRET .*needs CONSOLE_SESSION_SECRET/,
    );
    expect(() =>
      parseConfig({ CONSOLE_SESSION_SECRET: newSecret, CONSOLE_SESSION_PREVIOUS_SECRET: "short" }),
    ).toThrow(/CONSOLE_SESSION_PREVIOUS_SECRET must be at least 32 characters/);
    try {
      parseConfig({ CONSOLE_SESSION_PREVIOUS_SECRET: oldSecret });
    } catch (error) {
      expect((error as Error).message).not.toContain(oldSecret);
    }
  });
});
