// Security suite, inbound-webhooks: replayed, stale, future, forged, unknown-source and header-less inventory.restocked webhooks.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { generateSecret, signedHeaders } from "../../actors/commerce/webhooks/index.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { eventually, expectOk, uniqueName } from "../commerce/client.ts";
import { attackCategory } from "./report.ts";
import { availableOf, expectClosed, send as request } from "./support.ts";

const cases = attackCategory("inbound-webhooks");

const supplierSecret = generateSecret();
const rotatedSecret = generateSecret();
const warehouseSecret = generateSecret();
let running: CommerceNode;

beforeAll(async () => {
  running = await startCommerceNode("security_inbound", {
    INBOUND_WEBHOOK_SECRETS: `supplier=${supplierSecret},supplier=${rotatedSecret},warehouse=${warehouseSecret}`,
  });
}, 30_000);
afterAll(() => running?.stop());

/** The sku's committed stock, read from its actor. */
const stock = (sku: string) => availableOf(running, sku);
const restocked = (sku: string, quantity: number) =>
  JSON.stringify({ type: "inventory.restocked", sku, quantity });

/** Signed with the standardwebhooks package, as a sender would; `at` is the sender's clock. */
const officialHeaders = (id: string, at: Date, body: string, secret = supplierSecret) => ({
  "webhook-id": id,
  "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
  "webhook-signature": new Webhook(secret).sign(id, at, body),
});

const post = (source: string, body: string, headers: Record<string, string>) =>
  request(running.node.url, "POST", `/webhooks/inbound/${source}`, { body, headers });

/** A sku with 2 units, restocked once by a genuine webhook to 7; returns it with that webhook. */
async function restockedOnce() {
  const sku = uniqueName("restock");
  await running.client.putSku(sku, 2, 100);
  const id = uniqueName("msg");
  const body = restocked(sku, 5);
  const headers = officialHeaders(id, new Date(), body);
  expect((await post("supplier", body, headers)).status).toBe(202);
  await eventually(() => stock(sku) === 7, "the genuine restock");
  return { sku, id, body, headers };
}

/** Waits until a genuine restock sent after the attacks has landed, then gives anything else time to land too. */
async function settledStock(sku: string, quantity = 1) {
  const before = stock(sku) as number;
  const body = restocked(sku, quantity);
  expect(
    (await post("supplier", body, officialHeaders(uniqueName("sentinel"), new Date(), body))).status,
  ).toBe(202);
  await eventually(() => stock(sku) === before + quantity, "the sentinel restock");
  await Bun.sleep(200);
  return (stock(sku) as number) - quantity;
}

describe("replays", () => {
  test("a webhook-id already seen is acknowledged (202 duplicate) and not applied again, whatever else changed", async () => {
    const { sku, id, body, headers } = await restockedOnce();
    const bigger = restocked(sku, 500);
    const replays: Array<[string, string, Record<string, string>]> = [
      ["the same request again", body, headers],
      ["re-signed with a fresh timestamp (a sender's retry)", body, officialHeaders(id, new Date(), body)],
      ["the same id with another body, validly signed", bigger, officialHeaders(id, new Date(), bigger)],
      [
        "the same id signed with the rotated secret",
        body,
        officialHeaders(id, new Date(), body, rotatedSecret),
      ],
    ];
    for (const [name, sent, sentHeaders] of replays) {
      const answer = await post("supplier", sent, sentHeaders);
      expectClosed(
        cases,
        `replay: ${name}`,
        { status: answer.status, json: answer.json, stock: stock(sku) },
        { status: 202, json: { status: "duplicate" }, stock: 7 },
      );
    }
    expect(await settledStock(sku)).toBe(7);
  });

  test("five concurrent copies of one new webhook restock once", async () => {
    const sku = uniqueName("restock");
    await running.client.putSku(sku, 2, 100);
    const body = restocked(sku, 3);
    const headers = officialHeaders(uniqueName("msg"), new Date(), body);
    const answers = await Promise.all(Array.from({ length: 5 }, () => post("supplier", body, headers)));
    const settled = await settledStock(sku);
    expectClosed(
      cases,
      "five concurrent copies",
      { statuses: answers.map((answer) => answer.status), stock: settled },
      { statuses: [202, 202, 202, 202, 202], stock: 5 },
    );
  });
});

describe("refusals", () => {
  test("stale, future, forged, unknown-source, header-less and altered webhooks get 401 problem+json and restock nothing", async () => {
    const { sku } = await restockedOnce();
    const body = restocked(sku, 100);
    const fresh = () => uniqueName("msg");
    const now = Date.now();
    const signedBy = (secret: string) => officialHeaders(fresh(), new Date(), body, secret);
    const genuine = () => officialHeaders(fresh(), new Date(), body);
    const without = (name: string) => {
      const { [name as "webhook-id"]: _, ...rest } = genuine();
      return rest;
    };
    const attempts: Array<[string, string, string, Record<string, string>]> = [
      ["stale: 6 minutes old", "supplier", body, officialHeaders(fresh(), new Date(now - 6 * 60_000), body)],
      ["stale: 301 s old", "supplier", body, officialHeaders(fresh(), new Date(now - 301_000), body)],
      [
        "future: 6 minutes ahead",
        "supplier",
        body,
        officialHeaders(fresh(), new Date(now + 6 * 60_000), body),
      ],
      ["timestamp in milliseconds", "supplier", body, { ...genuine(), "webhook-timestamp": String(now) }],
      ["timestamp not a number", "supplier", body, { ...genuine(), "webhook-timestamp": "soon" }],
      ["signed with a secret nobody configured", "supplier", body, signedBy(generateSecret())],
      ["signed with the warehouse's secret, sent as supplier", "supplier", body, signedBy(warehouseSecret)],
      ["signed by supplier, sent as warehouse", "warehouse", body, genuine()],
      ["an unknown source", "nobody", body, genuine()],
      ["no webhook-id", "supplier", body, without("webhook-id")],
      ["no webhook-timestamp", "supplier", body, without("webhook-timestamp")],
      ["no webhook-signature", "supplier", body, without("webhook-signature")],
      ["no Standard Webhooks headers at all", "supplier", body, {}],
      ["body altered after signing", "supplier", restocked(sku, 10_000), genuine()],
      ["webhook-id altered after signing", "supplier", body, { ...genuine(), "webhook-id": fresh() }],
      [
        "timestamp altered after signing, still within tolerance",
        "supplier",
        body,
        { ...genuine(), "webhook-timestamp": String(Math.floor(now / 1000) - 10) },
      ],
      ["an empty v1 signature", "supplier", body, { ...genuine(), "webhook-signature": "v1," }],
      [
        "a valid signature labelled v2",
        "supplier",
        body,
        (() => {
          const headers = genuine();
          return { ...headers, "webhook-signature": headers["webhook-signature"].replace(/^v1,/, "v2,") };
        })(),
      ],
      [
        "garbage signatures",
        "supplier",
        body,
        { ...genuine(), "webhook-signature": "v1,AAAA v1,BBBB= v1a,CCCC" },
      ],
    ];
    for (const [name, source, sent, headers] of attempts) {
      const answer = await post(source, sent, headers);
      expectClosed(
        cases,
        name,
        { status: answer.status, problem: answer.problem, stock: stock(sku) },
        { status: 401, problem: true, stock: 7 },
      );
    }
    expect(await settledStock(sku)).toBe(7);
  });

  test("source names that are not a source's are 4xx, never routed elsewhere", async () => {
    const { sku } = await restockedOnce();
    const body = restocked(sku, 100);
    for (const source of ["..%2Fsupplier", "supplier%00", "supplier%2F..%2Fwarehouse", "%20supplier"]) {
      const answer = await post(source, body, officialHeaders(uniqueName("msg"), new Date(), body));
      expectClosed(
        cases,
        `source ${source}`,
        { refused: answer.status >= 400 && answer.status < 500, problem: answer.problem, stock: stock(sku) },
        { refused: true, problem: true, stock: 7 },
      );
    }
  });

  test("a compressed webhook is 415 with Accept-Encoding: identity, signed or not, any source; sent plain it is taken", async () => {
    const { sku } = await restockedOnce();
    const body = restocked(sku, 3);
    const id = uniqueName("msg");
    const signed = officialHeaders(id, new Date(), body);
    const forged = officialHeaders(id, new Date(), body, generateSecret());
    const attempts: Array<[string, string, Record<string, string>, string, BodyInit]> = [
      ["gzip, signed over its JSON", "supplier", signed, "gzip", Bun.gzipSync(body)],
      ["gzip, forged", "supplier", forged, "gzip", Bun.gzipSync(body)],
      ["gzip, an unknown source", "nobody", signed, "gzip", Bun.gzipSync(body)],
      ["labelled br, sent plain and signed", "supplier", signed, "br", body],
    ];
    for (const [name, source, headers, coding, sent] of attempts) {
      const response = await fetch(`${running.node.url}/webhooks/inbound/${source}`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json", "content-encoding": coding },
        body: sent,
      });
      const problem = (await response.json()) as { code: string };
      expectClosed(
        cases,
        `compressed: ${name}`,
        {
          status: response.status,
          code: problem.code,
          accepts: response.headers.get("accept-encoding"),
          stock: stock(sku),
        },
        { status: 415, code: "request.unsupported_media_type", accepts: "identity", stock: 7 },
      );
    }
    // The same webhook id, sent plain: nothing of it was recorded as seen.
    expect((await post("supplier", body, signed)).status).toBe(202);
    await eventually(() => stock(sku) === 10, "the plain restock");
  });

  test("a validly signed webhook with an oversized webhook-id is refused, not a 5xx, and restocks nothing", async () => {
    const { sku } = await restockedOnce();
    const body = restocked(sku, 100);
    const id = Array.from(crypto.getRandomValues(new Uint8Array(3_000)), (byte) =>
      byte.toString(16).padStart(2, "0"),
    ).join("");
    const headers = await signedHeaders({ secret: supplierSecret, id, body, now: Date.now() });
    const answer = await post("supplier", body, headers);
    expectClosed(
      cases,
      "a 6000-character webhook-id",
      { status: answer.status, problem: answer.problem, stock: await settledStock(sku) },
      { status: 401, problem: true, stock: 7 },
    );
  });

  test("refusals and replays are recorded as security events", async () => {
    const api = running.client;
    // Those of the tests above, recorded after their answers: the last ones may still be on their way.
    await running.node.securityEvents.settled();
    const refused = expectOk(
      await api.call<{ items: Array<{ data: { reason: string } }> }>(
        "GET",
        "/v1/activity?type=security.webhook_refused&limit=100",
      ),
    );
    const reasons = refused.items.map((item) => item.data.reason);
    expect(reasons).toContain("stale");
    expect(reasons).toContain("bad_signature");
    const replayed = expectOk(
      await api.call<{ items: unknown[] }>("GET", "/v1/activity?type=security.webhook_replayed&limit=100"),
    );
    expect(replayed.items.length).toBeGreaterThanOrEqual(1);
  });

  test("a flood of refused webhooks is recorded at a bounded rate, not one activity row each", async () => {
    const marker = uniqueName("flood");
    const body = restocked(uniqueName("nosku"), 1);
    // The budget is per second: the tests above may have spent this second's, so the flood starts in a fresh one.
    await Bun.sleep(1_100);
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        post("supplier", body, officialHeaders(`${marker}-${i}`, new Date(), body, generateSecret())),
      ),
    );
    expect(new Set(answers.map((answer) => answer.status))).toEqual(new Set([401]));
    // Each refusal is recorded after its answer (security-events.ts): wait for the recordings started, not 200 ms,
    // which a loaded machine's Postgres may take longer than (and then none is in the activity log yet).
    await running.node.securityEvents.settled();
    const refused = expectOk(
      await running.client.call<{ items: Array<{ data: { webhookId?: string } }> }>(
        "GET",
        "/v1/activity?type=security.webhook_refused&limit=100",
      ),
    );
    const recorded = refused.items.filter((item) => item.data.webhookId?.startsWith(marker)).length;
    // 10 a second: the flood spans one or two windows (three on a slow run), and at least one is recorded.
    expectClosed(
      cases,
      "a flood of 60 refused webhooks",
      { bounded: recorded >= 1 && recorded <= 30 },
      {
        bounded: true,
      },
    );
  });
});
