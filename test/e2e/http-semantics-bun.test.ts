// HTTP semantics a strict client relies on (test/e2e/http-semantics.ts), against a Bun node over real sockets.
import { afterAll, beforeAll, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EdgewiseNode } from "../../deploy/bun/node.ts";
import { startLocalNode } from "../support/local-node.ts";
import { headAnswersAreDated, trailingSlashRedirects, unreadableBodiesRefused } from "./http-semantics.ts";

const dataDir = mkdtempSync(join(tmpdir(), "edgewise-http-semantics-"));
let node: EdgewiseNode;
let auth: Record<string, string>;

beforeAll(async () => {
  node = await startLocalNode(dataDir);
  auth = { authorization: `Bearer ${node.adminToken}` };
}, 60_000);

afterAll(async () => {
  await node?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test("a read of a path with a trailing slash is redirected (308) to the path; a write's 404 names it", () =>
  trailingSlashRedirects(node.url, auth));

// Bun writes no Date on a HEAD answer; deploy/bun/serve.ts adds it.
test("a HEAD answer carries Date, as its GET does", () => headAnswersAreDated(node.url, auth));

test("a body it cannot read as sent is refused, and writes nothing", () =>
  unreadableBodiesRefused(node.url, auth));
