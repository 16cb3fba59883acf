// The split deployment as separate processes: broker, actor host and gateway, every internal hop over TLS (mutual TLS
// to the actor host, HTTPS to the broker's API).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { join } from "node:path";
import postgres from "postgres";
import { TEST_DATABASE_URL } from "../broker/helpers.ts";
import { CommerceClient, eventually, expectOk } from "../commerce/client.ts";
import { type Started, startProcess } from "../e2e/process.ts";
import { parseMetrics } from "../observability/metrics-scrape.ts";
import { attackCategory } from "./report.ts";
import {
  gatewayTls,
  nodeEnv,
  queueEnv,
  root,
  runCerts as certsInto,
  freshSplitSettings,
  incrementThrough,
  startSplitDeployment,
  stopProcesses,
} from "./split-processes.ts";

const bun = process.execPath;
const cases = attackCategory("split-deployment");
const { settings, database } = freshSplitSettings("split");
const { work, certs } = settings;
const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
const processes: Started[] = [];
let actorHostUrl = "";
let brokerUrl = "";
let client: CommerceClient;

/** `npm run certs`, as an operator runs it: the first time it makes the CAs; again, it reissues the leaves. */
const runCerts = () => void certsInto(certs);

beforeAll(async () => {
  await admin.unsafe(`CREATE DATABASE ${database}`);
  runCerts();
  const split = await startSplitDeployment(settings);
  processes.push(...split.processes);
  brokerUrl = split.broker.match;
  actorHostUrl = split.host.match;
  client = new CommerceClient({ base: split.gateway.match, jwtSecret: settings.jwtSecret });
}, 120_000);

// Three processes draining on SIGTERM, one after another, then a database dropped: past a hook's default 5 s on a
// busy machine (it timed out once under load).
afterAll(async () => {
  await stopProcesses(processes);
  await admin.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
  await admin.end();
  rmSync(work, { recursive: true, force: true });
}, 60_000);

/** A fetch to the actor host that must be refused at the TLS handshake: no HTTP status ever comes back. */
async function refusedAtHandshake(name: string, tls: Record<string, string> | undefined, url = actorHostUrl) {
  const outcome = await fetch(`${url}/_edgewise/actors/ask`, {
    method: "POST",
    body: "{}",
    ...(tls ? { tls } : {}),
  } as RequestInit).then(
    (response) => `answered ${response.status}`,
    (error: Error) => `refused: ${(error as { code?: string }).code ?? error.message}`,
  );
  cases.tried(name, outcome.startsWith("refused"));
  expect({ name, outcome: outcome.startsWith("refused") ? "refused" : outcome }).toEqual({
    name,
    outcome: "refused",
  });
}

const pem = (name: string) => Bun.file(join(certs, name)).text();
const serialOf = (name: string) =>
  new X509Certificate(readFileSync(join(certs, name))).serialNumber.toUpperCase();

/** The serial of the certificate the actor host (or the broker) presents on a new connection, as a node sees it. */
async function presentedSerial(of: "actor host" | "broker" = "actor host"): Promise<string> {
  let serial = "";
  const client =
    of === "broker"
      ? { ca: await pem("broker-ca-bundle.pem") }
      : { ca: await pem("actor-host-ca.pem"), cert: await pem("gateway.pem"), key: await pem("gateway.key") };
  const response = await fetch(`${of === "broker" ? brokerUrl : actorHostUrl}/healthz`, {
    tls: {
      ...client,
      checkServerIdentity: (host: string, cert: PeerCertificate) => {
        serial = cert.serialNumber.toUpperCase();
        return checkServerIdentity(host, cert);
      },
    },
  } as RequestInit);
  await response.body?.cancel();
  return serial;
}

/** The TLS options of a client holding the gateway's certificate: what the actor host's listener admits. */
const actorHostTls = async () => ({
  ca: await pem("actor-host-ca.pem"),
  cert: await pem("gateway.pem"),
  key: await pem("gateway.key"),
});

/** Everything a client sees of an answer but its varying headers: status, content type and the exact body. */
async function answered(
  base: string,
  method: string,
  path: string,
  as: { sub: string; scopes: string[] },
  tls?: Record<string, string>,
) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${await client.token(as.sub, as.scopes)}` },
    ...(tls ? { tls } : {}),
  } as RequestInit);
  return {
    status: response.status,
    contentType: response.headers.get("content-type"),
    body: await response.text(),
  };
}

/**
 * What the actor host's /metrics says of its actors: resident ones and turns run, by type, and the asks it was
 * sent. Read after its one-second reuse of a render, so every request before the call is in it.
 */
async function actorHostMetrics() {
  await Bun.sleep(1_100);
  const response = await fetch(`${actorHostUrl}/metrics`, { tls: await actorHostTls() } as RequestInit);
  expect(response.status).toBe(200);
  const scrape = await parseMetrics(await response.text());
  const types = ["order", "inventory"];
  return {
    active: types.map((type) => scrape.value("edgewise_actors_active", { actor_type: type })),
    turns: types.map((type) => scrape.count("edgewise_actor_turn_duration_seconds", { actor_type: type })),
    asks: scrape.count("http_server_request_duration_seconds", { http_route: "/_edgewise/actors/ask" }),
  };
}

describe("split deployment over mutual TLS", () => {
  test("an order goes end to end: gateway → actor host → broker → actor host, and confirms", async () => {
    // Every internal hop over TLS: the actor host's listener, and the broker's API the nodes publish to.
    expect(actorHostUrl).toStartWith("https://");
    expect(brokerUrl).toStartWith("https://");
    await client.putSku("split-sku", 5, 1_250);
    await client.putAccount("split-alice", 10_000);
    const placed = await client.place("split-alice", [{ sku: "split-sku", quantity: 2 }]);
    expect(placed.status).toBe(202);
    const order = await client.settle(placed.body.orderId);
    expect(order.status).toBe("confirmed");
    expect(await client.balance("split-alice")).toBe(10_000 - 2_500);
    expect((await client.sku("split-sku")).available).toBe(3);
    // Reads through the gateway see what changed on the actor host: the gateway, which hears no events, keeps no
    // cache of its own (this deployment has no shared Redis).
    expect((await client.order(placed.body.orderId)).status).toBe("confirmed");
    expect((await client.cancel(placed.body.orderId)).status).toBe(202);
    await eventually(
      async () => (await client.order(placed.body.orderId)).status === "cancelled",
      "the cancel, read through the gateway",
      5_000,
    );
    // The cancel returns the 2 units (OrderCancelled, through the queue): seen through the gateway too. A Put
    // before they land would be raised by them afterwards.
    await eventually(async () => (await client.sku("split-sku")).available === 5, "the units back", 5_000);
    await client.putSku("split-sku", 50, 700);
    expect(await client.sku("split-sku")).toMatchObject({ available: 50, priceCents: 700 });
  }, 60_000);

  test("unknown order ids and skus are answered 404 by the gateway, as by the actor host's own routes, activating no actor there", async () => {
    const customer = "split-unknown-alice";
    await client.putSku("split-unknown-sku", 5, 300);
    await client.putAccount(customer, 10_000);
    const placed = await client.place(customer, [{ sku: "split-unknown-sku", quantity: 1 }]);
    expect(placed.status).toBe(202);
    const orderId = placed.body.orderId;
    // Read while pending (a client polls so) and until settled: one ask each on the actor host, as before.
    expect((await client.settle(orderId)).status).toBe("confirmed");

    const as = { sub: customer, scopes: ["orders:read", "orders:write", "inventory:read"] };
    const requests = Array.from({ length: 50 }, (_, n) => [
      ["GET", `/v1/orders/split-never-${n}`],
      ["POST", `/v1/orders/split-never-${n}/cancel`],
      ["GET", `/v1/inventory/split-never-${n}`],
    ]).flat() as Array<[string, string]>;
    const before = await actorHostMetrics();
    const answers = [];
    for (const [method, path] of requests) answers.push(await answered(client.target.base, method, path, as));
    const after = await actorHostMetrics();
    // Each was one signed ask to the actor host, answered there without a turn or an actor.
    expect(after.asks - before.asks).toBe(requests.length);
    expect(after.active).toEqual(before.active);
    expect(after.turns).toEqual(before.turns);

    // The same bytes as the local host's path: the actor host's own public routes, which tell from its store.
    for (const [index, [method, path]] of requests.entries()) {
      const local = await answered(actorHostUrl, method, path, as, await actorHostTls());
      expect({ path, ...answers[index] }).toEqual({ path, ...local });
    }
    expect(answers[0]).toEqual({
      status: 404,
      contentType: "application/problem+json",
      body: JSON.stringify({
        type: "https://edgewise.dev/problems/not_found",
        title: "Not found",
        status: 404,
        detail: "order split-never-0 does not exist",
        code: "not_found",
        instance: "/v1/orders/split-never-0",
      }),
    });
    expect(JSON.parse(answers[2]?.body ?? "")).toMatchObject({ detail: "sku split-never-0 was never set" });

    // Ids that exist read as before, in one ask each (no extra round trip), and the order still cancels.
    const reads = await actorHostMetrics();
    for (let i = 0; i < 5; i++) {
      const read = await answered(client.target.base, "GET", `/v1/orders/${orderId}`, as);
      expect(read.status).toBe(200);
      expect(JSON.parse(read.body)).toMatchObject({ orderId, customerId: customer, status: "confirmed" });
    }
    expect((await client.sku("split-unknown-sku")).available).toBe(4);
    expect((await actorHostMetrics()).asks - reads.asks).toBe(6);
    const cancelled = await answered(client.target.base, "POST", `/v1/orders/${orderId}/cancel`, as);
    expect({ status: cancelled.status, body: JSON.parse(cancelled.body) }).toEqual({
      status: 202,
      body: { orderId, status: "cancelled" },
    });
    expect((await client.order(orderId)).status).toBe("cancelled");
  }, 60_000);

  test("a client without a valid certificate is refused at the TLS handshake", async () => {
    const ca = await pem("actor-host-ca.pem");
    await refusedAtHandshake("no client certificate", { ca });
    // A certificate of the wrong role: the actor host's own is not a gateway's or the broker's.
    await refusedAtHandshake("actor-host certificate used as a client", {
      ca,
      cert: await pem("actor-host.pem"),
      key: await pem("actor-host.key"),
    });
    // The broker's server certificate is from the broker CA, which the actor host admits, but may not be a client's.
    await refusedAtHandshake("the broker's server certificate used as a client", {
      ca,
      cert: await pem("broker-server.pem"),
      key: await pem("broker-server.key"),
    });
    await refusedAtHandshake("plain HTTP", undefined, actorHostUrl.replace("https://", "http://"));
    // The control: the gateway's certificate gets through TLS, and the unsigned request is then refused (401).
    const response = await fetch(`${actorHostUrl}/_edgewise/actors/ask`, {
      method: "POST",
      body: "{}",
      tls: { ca, cert: await pem("gateway.pem"), key: await pem("gateway.key") },
    } as RequestInit);
    expect(response.status).toBe(401);
  });

  test("the gateway's /readyz proves the hop to its actor host: TLS and the shared secret", async () => {
    type Ready = { dependencies: Record<string, { ok: boolean; critical: boolean }> };
    const ready = await fetch(`${client.target.base}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as Ready).dependencies.actorHost).toMatchObject({
      ok: true,
      critical: true,
    });
    // A gateway whose ACTOR_HOST_SECRET differs serves nothing: it must not say it is ready (it did: the hop's
    // TLS and the actor host's /healthz were fine, and /readyz never asked the actor host at all).
    const wrong = await startProcess([bun, "edge/entries/bun.ts"], {
      cwd: root,
      pattern: /listening on (\S+)/,
      env: {
        ...nodeEnv(settings, "gateway-wrong-secret"),
        ...queueEnv(brokerUrl, certs),
        ACTOR_HOST_SECRET: `${settings.actorHostSecret}-not`,
        ACTOR_HOST_URL: actorHostUrl,
        ...gatewayTls(certs),
      },
    });
    try {
      const refused = await fetch(`${wrong.match}/readyz`);
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as Ready).dependencies.actorHost).toMatchObject({
        ok: false,
        critical: true,
      });
    } finally {
      await wrong.kill("SIGTERM");
    }
  }, 60_000);

  test("a gateway without QSTASH_CA_FILE refuses the broker's certificate: not ready, and its log says why", async () => {
    const untrusting = await startProcess([bun, "edge/entries/bun.ts"], {
      cwd: root,
      pattern: /listening on (\S+)/,
      env: {
        ...nodeEnv(settings, "gateway-no-broker-ca"),
        ...queueEnv(brokerUrl),
        ACTOR_HOST_URL: actorHostUrl,
        ...gatewayTls(certs),
      },
    });
    try {
      const refused = await fetch(`${untrusting.match}/readyz`);
      type Ready = { dependencies: Record<string, { ok: boolean }> };
      const broker = ((await refused.json()) as Ready).dependencies.broker;
      cases.tried("a gateway without the broker CA", refused.status === 503 && broker?.ok === false);
      expect(refused.status).toBe(503);
      expect(broker).toMatchObject({ ok: false });
      // The remedy comes later in the same line, which the gateway's output may hold half-written: wait for both.
      await eventually(
        () =>
          untrusting.output().includes("presented a certificate this node refuses") &&
          untrusting.output().includes("set QSTASH_CA_FILE"),
        "the refusal and its remedy in the gateway's log",
        5_000,
      );
      expect(untrusting.output()).toContain("set QSTASH_CA_FILE");
    } finally {
      await untrusting.kill("SIGTERM");
    }
  }, 60_000);

  test("the gateway's public port serves no internal endpoint", async () => {
    for (const path of ["/_edgewise/actors/ask", "/_edgewise/actors/receive", "/_edgewise/deliver/order/x"]) {
      const response = await fetch(`${client.target.base}${path}`, { method: "POST", body: "{}" });
      cases.tried(`gateway ${path}`, response.status === 404);
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
    }
  });

  test("certificates rotated under 1 request every 10 ms: no request lost, none applied twice", async () => {
    const token = await client.token();
    const before = serialOf("actor-host.pem");
    expect(await presentedSerial()).toBe(before);
    const brokerBefore = serialOf("broker-server.pem");
    expect(await presentedSerial("broker")).toBe(brokerBefore);
    const sent: Array<Promise<number>> = [];
    const total = 300;
    let rotatedAt = -1;
    for (let i = 0; i < total; i++) {
      if (i === total / 3) {
        rotatedAt = i;
        runCerts(); // every leaf reissued: the actor host's, the gateway's and the broker's
      }
      sent.push(incrementThrough(client.target.base, "rotation", token));
      await Bun.sleep(10);
    }
    const statuses = await Promise.all(sent);
    const failed = statuses.filter((status) => status !== 200).length;
    const count = expectOk(await client.call<{ count: number }>("GET", "/v1/counters/rotation")).count;
    console.log(
      `[split] rotation at request ${rotatedAt} of ${total}: ${failed} failed, final count ${count}`,
    );
    expect(failed).toBe(0);
    expect(count).toBe(total);
    // The actor host now serves the reissued certificate, without having restarted, and so does the broker's API
    // (its listener switched within a second), through which an order's messages still go.
    const after = serialOf("actor-host.pem");
    expect(after).not.toBe(before);
    expect(await presentedSerial()).toBe(after);
    const brokerAfter = serialOf("broker-server.pem");
    expect(brokerAfter).not.toBe(brokerBefore);
    await eventually(
      async () => (await presentedSerial("broker")) === brokerAfter,
      "the broker's reissued certificate",
      5_000,
    );
    await client.putSku("rotated-sku", 1, 100);
    await client.putAccount("rotated-bob", 100);
    const placed = await client.place("rotated-bob", [{ sku: "rotated-sku", quantity: 1 }]);
    expect((await client.settle(placed.body.orderId)).status).toBe("confirmed");
  }, 60_000);
});
