// Ask envelopes: a caller's message id is held to the envelope's limits before anything is queued or written.
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { counter } from "../../test/conformance/fixtures.ts";
import { LocalActorHost } from "../hosts/local/host.ts";
import { openBunSqlite } from "../hosts/local/sqlite-bun.ts";
import { askEnvelope } from "./host.ts";

const address = { type: "counter", key: "k" };
const invalidIds = ["x".repeat(257), "", 42 as unknown as string];

describe("ask envelopes", () => {
  test("an id of up to 256 characters is the envelope's id", () => {
    const id = "x".repeat(256);
    expect(askEnvelope(address, "Increment", { by: 1 }, { id }).id).toBe(id);
  });

  test("an over-long, empty or non-string id is refused with envelope.invalid naming the id", () => {
    for (const id of invalidIds) {
      expect(() => askEnvelope(address, "Increment", { by: 1 }, { id })).toThrow(
        expect.objectContaining({
          code: "envelope.invalid",
          status: 400,
          message: expect.stringContaining("id"),
        }),
      );
    }
  });

  test("the local host refuses such an ask before the turn: no state, inbox or outbox is written", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgewise-ask-id-"));
    const host = new LocalActorHost({ actors: [counter], db: openBunSqlite(join(dir, "actors.db")) });
    try {
      for (const id of invalidIds) {
        await expect(host.ask(address, "Increment", { by: 1 }, { id })).rejects.toMatchObject({
          code: "envelope.invalid",
        });
      }
      expect(host.inspect(address)).toMatchObject({ inboxSize: 0, outboxSize: 0 });
      expect(host.stats().mailboxDepth).toBe(0);
      // The actor still works, and was never activated with any of those ids' effects.
      expect((await host.ask(address, "Get", {})).reply).toMatchObject({ count: 0 });
    } finally {
      await host.stop();
    }
  });
});
