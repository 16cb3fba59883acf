// Secrets a node makes for itself: kept in the data dir (0600), stable across starts, never the public dev ones.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEV_CURRENT_SIGNING_KEY, DEV_NEXT_SIGNING_KEY, DEV_TOKEN } from "./local/broker/config.ts";
import { brokerCredentials, publicSigningKeysWarning } from "./secrets.ts";

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
});
