// Rotating JWT_SECRET on a running node: JWT_PREVIOUS_SECRET keeps the old secret's tokens working through the switch, and unsetting it refuses them.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { type EdgewiseNode, startNode } from "../../deploy/bun/node.ts";
import { restartableNode } from "../support/restartable-node.ts";
import { referenceSystem } from "../../deploy/reference.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { captureSink, createLogger } from "../../shared/telemetry/log/index.ts";
import { TEST_DATABASE_URL } from "../broker/helpers.ts";

const oldSecret = "old-jwt-secret-5d2f8a1c7e9b3046-rotation";
const newSecret = "new-jwt-secret-9c4e1b7a3f6d2058-rotation";
const node = restartableNode("auth_jwt_rotation");
const restart = (env: Record<string, string>) => node.restart(env);

const adminToken = (secret: string, sub: string) =>
  new SignJWT({ sub, scope: "admin", exp: Math.floor(Date.now() / 1000) + 300 })
    .setProtectedHeader({ alg: "HS256" })
    .sign(new TextEncoder().encode(secret));

// 404: authenticated as admin, and the sku was never set; 401: the token was refused.
const read = async (token: string) =>
  (await fetch(`${node.url}/v1/inventory/jwt-rotation`, { headers: { authorization: `Bearer ${token}` } }))
    .status;

test("the old secret's tokens work through the rotation, and stop once JWT_PREVIOUS_SECRET is unset", async () => {
  await restart({ JWT_SECRET: oldSecret });
  const issuedBefore = await adminToken(oldSecret, "issued-before");
  expect(await read(issuedBefore)).toBe(404);

  const lines = await restart({ JWT_SECRET: newSecret, JWT_PREVIOUS_SECRET: oldSecret });
  expect(await read(issuedBefore)).toBe(404);
  expect(await read(await adminToken(newSecret, "issued-after"))).toBe(404);
  expect(await read(await adminToken("some-other-secret-some-other-secret-x", "forged"))).toBe(401);
  const said = lines.filter((line) => line.includes("JWT_PREVIOUS_SECRET are still accepted"));
  expect(said).toHaveLength(1);
  expect(said[0]).not.toContain(oldSecret);

  await restart({ JWT_SECRET: newSecret });
  expect(await read(issuedBefore)).toBe(401);
  expect(await read(await adminToken(newSecret, "issued-later"))).toBe(404);
}, 90_000);

test("the generated key: deleting the data dir's jwt-secret withdraws the printed admin token, and a new one is printed", async () => {
  const ownDir = mkdtempSync(join(tmpdir(), "edgewise-jwt-generated-"));
  const start = () =>
    startNode({
      config: parseConfig({
        HOST: "127.0.0.1",
        PORT: "0",
        DATABASE_URL: TEST_DATABASE_URL,
        EDGEWISE_DATA_DIR: ownDir,
      }),
      ...referenceSystem(),
      schema: node.schema,
      brokerTimeScale: 0.01,
      logger: createLogger({ level: "warn", sink: captureSink().sink }),
    });
  const status = async (on: EdgewiseNode, token: string | undefined) =>
    (await fetch(`${on.url}/v1/inventory/jwt-rotation`, { headers: { authorization: `Bearer ${token}` } }))
      .status;
  try {
    await node.stop();
    let own = await start();
    const printed = own.adminToken;
    expect(await status(own, printed)).toBe(404);
    await own.stop();
    rmSync(join(ownDir, "jwt-secret"));
    own = await start();
    expect(await status(own, printed)).toBe(401);
    expect(own.adminToken).not.toBe(printed);
    expect(await status(own, own.adminToken)).toBe(404);
    await own.stop();
  } finally {
    rmSync(ownDir, { recursive: true, force: true });
  }
}, 90_000);

test("JWT_PREVIOUS_SECRET without JWT_SECRET is refused at start, naming the variables, never the value", () => {
  expect(() => parseConfig({ JWT_PREVIOUS_SECRET: oldSecret })).toThrow(
    /JWT_PREVIOUS_SECRET .*needs JWT_SECRET/,
  );
  expect(() => parseConfig({ JWT_SECRET: newSecret, JWT_PREVIOUS_SECRET: "short" })).toThrow(
    /JWT_PREVIOUS_SECRET must be at least 32 characters/,
  );
});
