// Inbound webhooks: per-source secrets, signature and timestamp checks, replays, payloads, the Restock command.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { ManualClock } from "../../../shared/clock/index.ts";
import { parseEnvelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import {
  inboundPruner,
  parseInboundSecrets,
  receiveInbound,
  restockCommand,
  verifyInbound,
} from "./inbound.ts";
import { generateSecret } from "./secret.ts";
import { signedHeaders } from "./sign.ts";
import { recordingTransport, testStore } from "./test-support.ts";

let db: Awaited<ReturnType<typeof testStore>>;
beforeAll(async () => {
  db = await testStore("inbound");
});
afterAll(() => db.close());

const secret = generateSecret();
const rotated = generateSecret();
const secrets = parseInboundSecrets(`supplier=${secret}, supplier=${rotated},warehouse=${generateSecret()}`);
const restocked = (sku: string, quantity: number) =>
  JSON.stringify({ type: "inventory.restocked", sku, quantity });

async function signed(body: string, options: { id?: string; now?: number; key?: string } = {}) {
  const id = options.id ?? `msg_${crypto.randomUUID()}`;
  return signedHeaders({ secret: options.key ?? secret, id, body, now: options.now ?? Date.now() });
}

function deps() {
  const transport = recordingTransport();
  return { transport, deps: { secrets, store: db.store, transport, now: Date.now() } };
}

describe("parseInboundSecrets", () => {
  test("reads source=whsec_… pairs; a repeated source holds both secrets", () => {
    expect(secrets.get("supplier")).toEqual([secret, rotated]);
    expect(secrets.get("warehouse")).toHaveLength(1);
    expect(parseInboundSecrets(undefined).size).toBe(0);
    expect(parseInboundSecrets(" ").size).toBe(0);
  });

  test("anything malformed is config.invalid, without echoing the secret", () => {
    for (const text of [
      "supplier",
      `=${secret}`,
      "supplier=hunter2",
      `bad source=${secret}`,
      `a=${secret}=x`,
    ]) {
      try {
        parseInboundSecrets(text);
        throw new Error(`accepted ${text}`);
      } catch (error) {
        expect(error).toMatchObject({ code: "config.invalid" });
        expect((error as Error).message).not.toContain("hunter2");
      }
    }
  });
});

describe("receiveInbound", () => {
  test("a good request queues one Restock for inventory/{sku}; a replay is acknowledged and not processed", async () => {
    const { transport, deps: d } = deps();
    const body = restocked("sku-1", 5);
    const headers = await signed(body, { id: "msg_good" });
    const outcome = await receiveInbound(d, { source: "supplier", headers: new Headers(headers), body });
    expect(outcome).toMatchObject({
      status: "accepted",
      webhookId: "msg_good",
      payload: { sku: "sku-1", quantity: 5 },
    });
    expect(transport.sent).toHaveLength(1);
    expect(transport.sent[0]).toMatchObject({
      type: "Restock",
      target: "inventory/sku-1",
      data: { sku: "sku-1", quantity: 5, source: "supplier" },
    });

    const replay = await receiveInbound(d, { source: "supplier", headers, body });
    expect(replay).toEqual({
      status: "replayed",
      refusal: {
        source: "supplier",
        reason: "replay",
        webhookId: "msg_good",
        timestamp: Number(headers["webhook-timestamp"]),
      },
    });
    expect(transport.sent).toHaveLength(1);
  });

  test("the official package's signature is accepted, and so is the rotated secret", async () => {
    const { deps: d } = deps();
    const body = restocked("sku-2", 1);
    const now = new Date();
    const official = {
      "webhook-id": "msg_official",
      "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
      "webhook-signature": new Webhook(secret).sign("msg_official", now, body),
    };
    expect((await receiveInbound(d, { source: "supplier", headers: official, body })).status).toBe(
      "accepted",
    );
    const headers = await signed(body, { key: rotated });
    expect((await receiveInbound(d, { source: "supplier", headers, body })).status).toBe("accepted");
  });

  test("refusals: unknown source, bad signature, stale, future, missing headers, all 401 with a reason", async () => {
    const { transport, deps: d } = deps();
    const body = restocked("sku-3", 2);
    const cases = [
      { source: "nobody", headers: await signed(body), reason: "unknown_source" },
      { source: "warehouse", headers: await signed(body), reason: "bad_signature" },
      { source: "supplier", headers: await signed(body, { key: generateSecret() }), reason: "bad_signature" },
      {
        source: "supplier",
        headers: await signed(body, { now: d.now - 301_000 }),
        reason: "stale",
        says: "301 s old",
      },
      {
        source: "supplier",
        headers: await signed(body, { now: d.now + 400_000 }),
        reason: "future",
        says: "in the future",
      },
      { source: "supplier", headers: { "webhook-id": "x" }, reason: "missing_headers" },
    ];
    for (const { source, headers, reason, says } of cases) {
      const outcome = await receiveInbound(d, { source, headers, body });
      expect(outcome).toMatchObject({ status: "refused", refusal: { source, reason } });
      if (outcome.status !== "refused") continue;
      expect(outcome.error).toBeInstanceOf(EdgewiseError);
      expect(outcome.error).toMatchObject({ code: "unauthorized", status: 401 });
      if (says) expect(outcome.error.message).toContain(says);
    }
    // A body changed after signing fails too.
    const headers = await signed(body);
    const tampered = await receiveInbound(d, { source: "supplier", headers, body: restocked("sku-3", 2000) });
    expect(tampered).toMatchObject({ status: "refused", refusal: { reason: "bad_signature" } });
    expect(transport.sent).toEqual([]);
  });

  test("payloads: unknown types and bad fields are 422, a body that is not JSON is 400", async () => {
    const { transport, deps: d } = deps();
    const cases: Array<[string, string, number]> = [
      [JSON.stringify({ type: "inventory.exploded", sku: "a" }), "message.unknown_type", 422],
      [JSON.stringify({ sku: "a", quantity: 1 }), "message.unknown_type", 422],
      [JSON.stringify({ type: "toString" }), "message.unknown_type", 422],
      [JSON.stringify({ type: "inventory.restocked", sku: "a", quantity: 0 }), "message.invalid", 422],
      [JSON.stringify({ type: "inventory.restocked", sku: "a b", quantity: 1 }), "message.invalid", 422],
      [JSON.stringify({ type: "inventory.restocked", sku: "a", quantity: 1.5 }), "message.invalid", 422],
      ["not json", "request.invalid", 400],
    ];
    for (const [body, code, status] of cases) {
      const outcome = await receiveInbound(d, { source: "supplier", headers: await signed(body), body });
      expect(outcome).toMatchObject({
        status: "refused",
        refusal: { reason: "invalid_payload" },
        error: { code, status },
      });
    }
    expect(transport.sent).toEqual([]);
  });

  test("a failed send marks nothing seen: the sender's retry goes through", async () => {
    const { transport, deps: d } = deps();
    const body = restocked("sku-4", 3);
    const headers = await signed(body, { id: "msg_retry" });
    transport.failNext = new Error("broker down");
    await expect(receiveInbound(d, { source: "supplier", headers, body })).rejects.toThrow("broker down");
    expect(await db.store.hasSeenInbound("supplier", "msg_retry")).toBe(false);
    expect((await receiveInbound(d, { source: "supplier", headers, body })).status).toBe("accepted");
    expect(await db.store.hasSeenInbound("supplier", "msg_retry")).toBe(true);
  });
});

describe("inboundPruner", () => {
  test("forgets ids older than twice the tolerance, at most once a minute, and never a fresh one", async () => {
    await db.store.recordInbound("pruner", "msg_old");
    const seen = () => db.store.hasSeenInbound("pruner", "msg_old");
    const passes: Date[] = [];
    const prune = inboundPruner({
      pruneInbound: (before) => {
        passes.push(before);
        return db.store.pruneInbound(before);
      },
    });
    const now = Date.now();
    prune(now); // forgets what is older than 10 minutes: not this id
    prune(now + 59_000); // within the minute of the last pass: skipped
    await Bun.sleep(100);
    expect(passes.map((before) => before.getTime())).toEqual([now - 600_000]);
    expect(await seen()).toBe(true);
    prune(now + 11 * 60_000); // 11 minutes on, the id is past any replay window
    // The pass is not awaited: given 10 s, not 50 polls, as a loaded Postgres may take more than a second.
    for (const deadline = Date.now() + 10_000; (await seen()) && Date.now() < deadline; ) await Bun.sleep(20);
    expect(await seen()).toBe(false);
    expect(passes).toHaveLength(2);
  });
});

describe("inboundPruner after a step of the wall clock", () => {
  test("a clock stepped back an hour does not stop the pruning for the hour: the next call prunes", async () => {
    const clock = new ManualClock(Date.now());
    const passes: number[] = [];
    const prune = inboundPruner({
      pruneInbound: async (before) => {
        passes.push(before.getTime());
        return 0;
      },
    });
    prune(clock.now());
    clock.step(-3_600_000);
    clock.advance(1_000);
    prune(clock.now());
    expect(passes).toEqual([clock.now() + 3_600_000 - 1_000 - 600_000, clock.now() - 600_000]);
    prune(clock.now() + 59_000); // the interval counts from the pass after the step
    expect(passes).toHaveLength(2);
  });
});

describe("verifyInbound and restockCommand", () => {
  test("verifyInbound takes the clock it is given", async () => {
    const body = restocked("sku-5", 1);
    const then = Date.UTC(2026, 0, 1);
    const headers = await signed(body, { now: then });
    expect(
      (await verifyInbound({ source: "supplier", headers, body, secrets, now: then + 299_000 })).ok,
    ).toBe(true);
    expect(
      await verifyInbound({ source: "supplier", headers, body, secrets, now: then + 301_000 }),
    ).toMatchObject({
      ok: false,
      refusal: { reason: "stale" },
    });
  });

  test("the command is a valid envelope, the same for the same source and webhook-id, different otherwise", async () => {
    const payload = { type: "inventory.restocked" as const, sku: "sku-6", quantity: 7 };
    const inbound = { source: "supplier", webhookId: "msg_1", timestamp: 1_800_000_000 };
    const command = await restockCommand(payload, inbound);
    expect(parseEnvelope(command)).toEqual(command);
    expect(command.id).toMatch(/^whin_[0-9a-f]{64}$/);
    expect(command.time).toBe(new Date(1_800_000_000_000).toISOString());
    expect(await restockCommand(payload, inbound)).toEqual(command);
    expect((await restockCommand(payload, { ...inbound, source: "warehouse" })).id).not.toBe(command.id);
    expect((await restockCommand(payload, { ...inbound, webhookId: "msg_2" })).id).not.toBe(command.id);
  });
});
