// The floor under HMAC secrets: the obviously weak are refused by name, and every usual way to make one passes.
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { parseConfig } from "./index.ts";
import { estimatedBits, isWeakSecret } from "./secret-strength.ts";

const hmacSecrets = [
  "JWT_SECRET",
  "JWT_PREVIOUS_SECRET",
  "CONSOLE_SESSION_SECRET",
  "CONSOLE_SESSION_PREVIOUS_SECRET",
  "ACTOR_HOST_SECRET",
  "ACTOR_HOST_PREVIOUS_SECRET",
] as const;
/** What each needs beside it to parse (a previous secret needs its current one). */
const strong = "b6f0c93e-1d7a-4e52-8f3b-5a9c2e7d1046";
const beside: Record<(typeof hmacSecrets)[number], Record<string, string>> = {
  JWT_SECRET: {},
  JWT_PREVIOUS_SECRET: { JWT_SECRET: strong },
  CONSOLE_SESSION_SECRET: {},
  CONSOLE_SESSION_PREVIOUS_SECRET: { CONSOLE_SESSION_SECRET: strong },
  ACTOR_HOST_SECRET: {},
  ACTOR_HOST_PREVIOUS_SECRET: { ACTOR_HOST_SECRET: strong },
};

const weak = [
  "a".repeat(32),
  "ab".repeat(16),
  "abcdefgh".repeat(4),
  "changeme-changeme-changeme-changeme",
  "old-secret-old-secret-old-secret-old-secret",
  `${"a".repeat(31)}b`,
  `${"x".repeat(24)}abcdefgh`,
  "0123456701234567012345670123456701234567",
];

describe("weak secrets", () => {
  test.each(weak)("%s is weak", (secret) => {
    expect(isWeakSecret(secret)).toBe(true);
  });

  test("each HMAC secret refuses one at start by name (config.invalid), never quoting it", () => {
    for (const name of hmacSecrets) {
      let caught: unknown;
      try {
        parseConfig({ ...beside[name], [name]: "Qk".repeat(20) });
      } catch (error) {
        caught = error;
      }
      expect(caught).toMatchObject({ code: "config.invalid" });
      expect((caught as Error).message).toContain(`${name} is too weak to sign with`);
      expect((caught as Error).message).not.toContain("QkQk");
      // A strong one of the same length passes.
      expect(() => parseConfig({ ...beside[name], [name]: strong })).not.toThrow();
    }
  });

  test("each QStash signing key refuses a weak one by name; Upstash's form, qstash dev's keys and a UUID pass", () => {
    // A delivery's Upstash-Signature is an HS256 JWT under the key: one of them lets a weak key be found offline.
    for (const name of ["QSTASH_CURRENT_SIGNING_KEY", "QSTASH_NEXT_SIGNING_KEY"]) {
      for (const key of ["a", "sig_current", "sig_next_test", "sig_aaaaaaaaaaaaaaaaaaaaaaaaaaaa"]) {
        let caught: unknown;
        try {
          parseConfig({ [name]: key });
        } catch (error) {
          caught = error;
        }
        expect([name, key, caught]).toMatchObject([name, key, { code: "config.invalid" }]);
        expect((caught as Error).message).toContain(`${name} is too weak to sign with`);
        if (key.length > 1) expect((caught as Error).message).not.toContain(key);
      }
      for (const key of [
        "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r",
        "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs",
        `sig_${crypto.randomUUID().replaceAll("-", "")}`,
        `sig_${randomBytes(21).toString("base64url")}`,
      ])
        expect(parseConfig({ [name]: key })[name as "QSTASH_NEXT_SIGNING_KEY"]).toBe(key);
    }
  });

  test("a huge value is judged in one pass", () => {
    const start = performance.now();
    expect(isWeakSecret(`${"a".repeat(1_000_000)}b`)).toBe(true);
    expect(performance.now() - start).toBeLessThan(2_000);
  });
});

describe("the documented ways to make a secret pass", () => {
  test("openssl rand -hex 32 and -hex 16, -base64 32, a UUID, two UUIDs: 2,000 of each", () => {
    const makers = [
      () => randomBytes(32).toString("hex"),
      () => randomBytes(16).toString("hex"),
      () => randomBytes(32).toString("base64"),
      () => randomBytes(24).toString("base64url"),
      () => crypto.randomUUID(),
      () => crypto.randomUUID() + crypto.randomUUID(),
    ];
    for (const make of makers) {
      let lowest = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 2_000; i++) {
        const secret = make();
        expect(isWeakSecret(secret)).toBe(false);
        lowest = Math.min(lowest, estimatedBits(secret));
      }
      expect(lowest).toBeGreaterThan(64);
    }
  });

  test("phrases long enough and not one piece repeated pass, as the tests' and examples' own do", () => {
    for (const secret of [
      "a-worker-secret-of-at-least-32-chars-0123",
      "logs-test-secret-logs-test-secret-0123456789",
      "console-security-secret-console-security",
      "old-actor-host-secret-old-actor-host-secret",
    ])
      expect(isWeakSecret(secret)).toBe(false);
  });
});
