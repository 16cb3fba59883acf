// Admin actions on a Bun node with embedded defaults (PGlite, its broker): admin.* events as on Postgres, and the
// online backup, which hands out every secret of the node, recorded with who took it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EdgewiseNode } from "../../deploy/bun/node.ts";
import { startLocalNode } from "../support/local-node.ts";
import { type AuditedNode, auditedView, call, onlyEvent, token } from "./admin-events-cases.ts";
import { adminAuditTests } from "./admin-events-suite.ts";

let node: EdgewiseNode;
let audited: AuditedNode;
const dataDir = mkdtempSync(join(tmpdir(), "edgewise-admin-events-"));
const jwtSecret = crypto.randomUUID() + crypto.randomUUID();
const lines: string[] = [];

beforeAll(async () => {
  node = await startLocalNode(
    dataDir,
    {
      JWT_SECRET: jwtSecret,
      WEBHOOKS_ALLOW_PRIVATE: "1",
      EDGEWISE_DELIVERY_RETRIES: "0",
      RATE_LIMIT: "1000000/60s",
      LOG_LEVEL: "warn",
    },
    { log: (line) => lines.push(line) },
  );
  audited = auditedView(node, jwtSecret, lines);
}, 60_000);
afterAll(async () => {
  await node?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

adminAuditTests(() => audited);

test("an online backup is recorded as admin.backup_taken with who took it, before the archive is sent", async () => {
  const root = await token(audited, "backup-operator");
  const taken = await onlyEvent(
    audited,
    "admin.backup_taken",
    () => call(audited, "POST", "/v1/backup", root),
    200,
    () => [root, jwtSecret],
  );
  expect(taken.data.actor).toEqual({ sub: "backup-operator", via: "jwt" });
  expect(taken.data.target).toMatchObject({ subject: "backup" });
  expect(taken.data.change).toMatchObject({ bytes: expect.any(Number), files: expect.any(Number) });
}, 60_000);
