// The local host's relay when its own outbox write fails (a full disk): it backs off instead of resending in a loop.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { counter } from "../../../test/conformance/fixtures.ts";
import { RecordingTransport } from "../../../test/support/memory-transport.ts";
import { LocalActorHost } from "./host.ts";
import { openBunSqlite } from "./sqlite-bun.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

test("a pass whose outbox write fails is retried after a backoff, and the message goes once the write works", async () => {
  const dir = mkdtempSync(join(tmpdir(), "edgewise-relay-write-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "actors.db");
  const transport = new RecordingTransport();
  const errors: string[] = [];
  const host = new LocalActorHost({
    actors: [counter],
    db: openBunSqlite(file),
    transport,
    onBackgroundError: (message) => errors.push(message),
  }).start();
  cleanups.push(() => host.stop());
  await host.ask({ type: "counter", key: "warm" }, "Get", {});
  // The outbox's delete fails as SQLite fails it on a full disk (SQLITE_FULL): the send went, its record stays.
  const other = new Database(file);
  other.exec(
    "CREATE TRIGGER full BEFORE DELETE ON outbox BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
  );
  await host.ask({ type: "counter", key: "from" }, "SendTo", { key: "sink", count: 1 });
  await Bun.sleep(1_000);
  const passes = transport.attempts;
  console.error(`relay write failure: ${passes} sends, ${errors.length} warnings in 1 s`);
  // Before the fix the relay ran the next pass at once (the entry still due): 730 sends of the same message and
  // as many warnings in this second, measured. A backoff from 250 ms leaves 3.
  expect(passes).toBeLessThanOrEqual(5);
  expect(errors.length).toBeLessThanOrEqual(5);
  expect(passes).toBeGreaterThanOrEqual(1);
  other.exec("DROP TRIGGER full");
  other.close();
  await Bun.sleep(1_500);
  const reader = new Database(file, { readonly: true });
  expect(reader.query("SELECT COUNT(*) AS n FROM outbox").get()).toEqual({ n: 0 });
  reader.close();
  expect(new Set(transport.sent.map((envelope) => envelope.id)).size).toBe(1);
}, 20_000);
