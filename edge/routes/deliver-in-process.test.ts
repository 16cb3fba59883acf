// An embedded broker's deliveries in process (app.deliverInProcess): the same route and checks, without the middleware.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { createSigner } from "../../deploy/local/broker/signing.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { createLogger } from "../../shared/telemetry/log/index.ts";
import { captureSink } from "../../shared/telemetry/log/sinks.ts";
import { EdgewiseMetrics, renderPrometheus } from "../../shared/telemetry/metrics/index.ts";
import { counter } from "../../test/conformance/fixtures.ts";
import { createApp } from "../app.ts";

const signingKey = "sig_current_for_tests";
const publicUrl = "http://edge.test";
const host = new LocalActorHost({
  actors: [counter],
  db: openBunSqlite(join(mkdtempSync(join(tmpdir(), "edgewise-deliver-in-process-")), "actors.db")),
});
afterAll(() => host.stop());
const capture = captureSink();
const metrics = new EdgewiseMetrics();
const app = createApp({
  actors: host,
  delivery: { currentSigningKey: signingKey, nextSigningKey: signingKey, publicUrl },
  metrics,
  logger: createLogger({ level: "warn", sink: capture.sink }),
});
const deliverInProcess = app.deliverInProcess!;

const url = (key: string) => `${publicUrl}/_edgewise/deliver/counter/${key}`;
async function delivery(key: string, envelope: object, options: { signed?: boolean } = {}): Promise<Request> {
  const body = JSON.stringify(envelope);
  const headers: Record<string, string> = { "content-type": "application/json", "upstash-retried": "0" };
  if (options.signed !== false) {
    headers["upstash-signature"] = await createSigner(signingKey)(url(key), new TextEncoder().encode(body));
  }
  return new Request(url(key), { method: "POST", body, headers });
}
const increment = (key: string) =>
  createEnvelope({ type: "Increment", source: "edgewise://test", target: `counter/${key}`, data: { by: 1 } });
const deliveriesCounted = async (outcome: string) => {
  const text = renderPrometheus(await metrics.registry.collect());
  const line = text
    .split("\n")
    .find((l) => l.startsWith("edgewise_deliveries_total{") && l.includes(`outcome="${outcome}"`));
  return line ? Number(line.split(" ").at(-1)) : 0;
};

describe("deliveries handed over in process", () => {
  test("a signed delivery commits once; a redelivery of it is a duplicate; both are counted", async () => {
    const envelope = increment("p1");
    const first = await deliverInProcess(await delivery("p1", envelope));
    expect({ status: first.status, body: await first.json() }).toEqual({
      status: 200,
      body: { duplicate: false },
    });
    const again = await deliverInProcess(await delivery("p1", envelope));
    expect(await again.json()).toEqual({ duplicate: true });
    expect(host.inspect({ type: "counter", key: "p1" }).state).toMatchObject({ count: 1 });
    expect(await deliveriesCounted("processed")).toBe(1);
    expect(await deliveriesCounted("duplicate")).toBe(1);
  });

  test("the signature is still checked: unsigned is a 401 problem and reaches no actor", async () => {
    const response = await deliverInProcess(await delivery("p2", increment("p2"), { signed: false }));
    expect(response.status).toBe(401);
    expect(response.headers.get("content-type")).toStartWith("application/problem+json");
    expect(host.inspect({ type: "counter", key: "p2" }).inboxSize).toBe(0);
  });

  test("it skips the gateway's middleware, which a delivery over HTTP goes through", async () => {
    const inProcess = await deliverInProcess(await delivery("p3", increment("p3")));
    const overHttp = await app.request(await delivery("p4", increment("p4")));
    expect([inProcess.status, overHttp.status]).toEqual([200, 200]);
    expect(inProcess.headers.get("x-request-id")).toBeNull();
    expect(inProcess.headers.get("x-content-type-options")).toBeNull();
    expect(overHttp.headers.get("x-request-id")).not.toBeNull();
    expect(overHttp.headers.get("x-content-type-options")).toBe("nosniff");
  });

  test("a failed delivery is logged with the app's logger, and a poison one answers 489", async () => {
    capture.clear();
    const poison = { ...increment("p5"), type: "Explode" };
    const response = await deliverInProcess(await delivery("p5", poison));
    expect(response.status).toBe(489);
    expect(response.headers.get("upstash-nonretryable-error")).toBe("true");
    const failed = capture.records().filter((record) => record.msg === "delivery failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ actor: "counter/p5", message_id: poison.id, level: "warn" });
  });

  test("a path that is not a delivery is a 404 problem", async () => {
    const response = await deliverInProcess(
      new Request(`${publicUrl}/_edgewise/deliver/counter`, { method: "POST" }),
    );
    expect(response.status).toBe(404);
    expect(response.headers.get("content-type")).toStartWith("application/problem+json");
  });
});
