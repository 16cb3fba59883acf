// The local store's outbox as the relay reads it: a page bounded in entries and in bytes, in order per actor.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEnvelope } from "../../../shared/envelope/index.ts";
import { openBunSqlite } from "./sqlite-bun.ts";
import { LocalStore } from "./store.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function store(): LocalStore {
  const dir = mkdtempSync(join(tmpdir(), "edgewise-store-"));
  dirs.push(dir);
  return new LocalStore(openBunSqlite(join(dir, "actors.db")));
}

/** Commits one turn of `actor` that sends `count` messages of about `bytes` each. */
async function sends(outbox: LocalStore, actor: string, count: number, bytes: number): Promise<void> {
  const envelopes = Array.from({ length: count }, (_, n) =>
    createEnvelope({ type: "M", source: actor, target: "sink/s", data: { n, pad: "x".repeat(bytes) } }),
  );
  await outbox.storageFor(actor).commit({
    state: {},
    version: 1,
    outbox: envelopes,
    timersAdded: [],
    timersRemoved: [],
    kv: [],
  });
}

describe("local store outbox", () => {
  test("a page of large messages stops at the byte budget, and always holds the first due entry", async () => {
    const outbox = store();
    await sends(outbox, "producer/a", 20, 900_000);
    // Before, the page was bounded only by count: all 20 (18 MB) read, parsed and sent in one pass; 256 messages of
    // 1 MiB took a node to 3 GB, and their send outlasted the queue's timeout, so the pass failed again and again.
    const page = await outbox.pending(Date.now(), 256, 4 * 1024 * 1024, Number.MAX_SAFE_INTEGER);
    expect(page.map((entry) => (entry.envelope.data as { n: number }).n)).toEqual([0, 1, 2, 3, 4]);
    const one = await outbox.pending(Date.now(), 256, 1_000, Number.MAX_SAFE_INTEGER);
    expect(one).toHaveLength(1);
    await outbox.delivered(page.map((entry) => entry.seq));
    const next = await outbox.pending(Date.now(), 256, 4 * 1024 * 1024, Number.MAX_SAFE_INTEGER);
    expect(next[0]?.envelope.data).toMatchObject({ n: 5 });
    outbox.close();
  });

  test("small messages fill the page by count, and a backing-off actor's entries are skipped", async () => {
    const outbox = store();
    await sends(outbox, "producer/a", 3, 10);
    await sends(outbox, "producer/b", 300, 10);
    const first = await outbox.pending(Date.now(), 256, 4 * 1024 * 1024, Number.MAX_SAFE_INTEGER);
    expect(first).toHaveLength(256);
    await outbox.failed(
      first.slice(0, 3).map((entry) => ({ seq: entry.seq, attempts: 1, retryAt: Date.now() + 60_000 })),
    );
    const page = await outbox.pending(Date.now(), 256, 4 * 1024 * 1024, Number.MAX_SAFE_INTEGER);
    expect(new Set(page.map((entry) => entry.actor))).toEqual(new Set(["producer/b"]));
    expect(page).toHaveLength(256);
    expect(page.map((entry) => entry.seq)).toEqual([...page.map((entry) => entry.seq)].sort((x, y) => x - y));
    outbox.close();
  });
});
