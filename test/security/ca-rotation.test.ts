// Rotating every role CA of a running split deployment, under load, in the three steps SECURITY.md gives: no client
// request fails, no message is lost or applied twice, no publish to the broker's https API is refused, and afterwards
// only the new CAs are trusted.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type PeerCertificate, checkServerIdentity } from "node:tls";
import postgres from "postgres";
import { DEV_TOKEN } from "../../deploy/local/broker/index.ts";
import { TEST_DATABASE_URL } from "../broker/helpers.ts";
import { CommerceClient, eventually, expectOk } from "../commerce/client.ts";
import type { Started } from "../e2e/process.ts";
import {
  runCerts,
  freshSplitSettings,
  incrementThrough,
  type SplitDeployment,
  startSplitDeployment,
  stopProcesses,
} from "./split-processes.ts";

// The "tls: certificate files applied" lines are info: each step waits for them, as an operator would.
const { settings, database } = freshSplitSettings("ca-rotation", { logLevel: "info" });
const { work, certs } = settings;
const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
let split: SplitDeployment | undefined;

beforeAll(async () => {
  await admin.unsafe(`CREATE DATABASE ${database}`);
  runCerts(certs);
  split = await startSplitDeployment(settings);
}, 120_000);

afterAll(async () => {
  if (split) await stopProcesses(split.processes);
  await admin.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
  await admin.end();
  rmSync(work, { recursive: true, force: true });
}, 60_000);

const pem = (name: string) => readFileSync(join(certs, name), "utf8");
const serial = (name: string) => new X509Certificate(pem(name)).serialNumber;

interface Applied {
  presents: string;
  trusts: string[];
}

/** The TLS material a process last said it applied: a node's JSON log record, or the broker's line. */
function lastApplied(process: Started): Applied | undefined {
  let last: Applied | undefined;
  for (const line of process.output().split("\n")) {
    if (!line.includes("tls: certificate files applied")) continue;
    const broker = /tls: certificate files applied: presents (.*); trusts (.*)$/.exec(line);
    if (broker) {
      last = { presents: broker[1] ?? "", trusts: (broker[2] ?? "").split(", ") };
      continue;
    }
    try {
      const record = JSON.parse(line) as Applied;
      last = { presents: record.presents, trusts: record.trusts };
    } catch {
      // Not a record of its own (a line cut in two by the pipe is read again whole on the next poll).
    }
  }
  return last;
}

/** The broker CA bundle a node last applied (QSTASH_CA_FILE), from its "tls: broker CA applied" record. */
function lastBrokerTrust(process: Started): string[] | undefined {
  let last: string[] | undefined;
  for (const line of process.output().split("\n")) {
    if (!line.includes("tls: broker CA applied")) continue;
    try {
      last = (JSON.parse(line) as { trusts: string[] }).trusts;
    } catch {
      // A line cut in two by the pipe: read again whole on the next poll.
    }
  }
  return last;
}

/** The certificate the broker's API last switched to, from its "[broker] https: server certificate applied" line. */
function lastBrokerServer(process: Started): string | undefined {
  const lines = process.output().split("\n");
  return lines.findLast((line) => line.includes("https: server certificate applied"));
}

/** Waits until `process` has applied material that `holds`: the operator's signal to move to the next step. */
async function applied(process: Started, what: string, holds: (applied: Applied) => boolean) {
  await until(
    what,
    () => lastApplied(process),
    (last) => last !== undefined && holds(last),
  );
}

async function until<T>(what: string, read: () => T, holds: (value: T) => boolean) {
  await eventually(() => holds(read()), `${what}; last applied: ${JSON.stringify(read())}`, 20_000);
}

const naming = (serials: string[]) => (entries: string[]) =>
  serials.every((s) => entries.some((entry) => entry.includes(`serial ${s}`)));

/** A new connection to the actor host with `client`'s certificate, trusting `trust`: its status, or refused. */
async function connect(url: string, client: { cert: string; key: string }, trust: string) {
  let presented = "";
  const outcome = await fetch(`${url}/healthz`, {
    tls: {
      ...client,
      ca: trust,
      checkServerIdentity: (host: string, cert: PeerCertificate) => {
        presented = cert.serialNumber.toUpperCase();
        return checkServerIdentity(host, cert);
      },
    },
  } as RequestInit).then(
    async (response) => {
      await response.body?.cancel();
      return `status ${response.status}`;
    },
    () => "refused",
  );
  return { outcome, presented };
}

test("every role CA rotated in three steps under load: no request fails, no message lost or applied twice", async () => {
  if (!split) throw new Error("the split deployment did not start");
  const { broker, host, gateway } = split;
  const client = new CommerceClient({ base: gateway.match, jwtSecret: settings.jwtSecret });
  const [sku, customer, price, stock, balance] = ["rotation-sku", "rotation-alice", 100, 100_000, 10_000_000];
  await client.putSku(sku, stock, price);
  await client.putAccount(customer, balance);
  const token = await client.token();
  const old = {
    cas: ["gateway-ca.pem", "broker-ca.pem", "actor-host-ca.pem"].map(serial),
    gateway: { cert: pem("gateway.pem"), key: pem("gateway.key") },
  };

  // Steady load through the gateway, the user-visible hop: a counter increment every 10 ms (gateway → actor host),
  // and an order every 100 ms, whose saga runs through the broker's deliveries (broker → actor host).
  const increments: Promise<number>[] = [];
  const orders: Promise<{ status: number; orderId?: string }>[] = [];
  let loading = true;
  const load = (async () => {
    for (let i = 0; loading; i++) {
      increments.push(incrementThrough(gateway.match, "ca-rotation", token));
      if (i % 10 === 0) {
        orders.push(
          client.place(customer, [{ sku, quantity: 1 }]).then(
            (reply) => ({ status: reply.status, orderId: reply.body.orderId }),
            () => ({ status: 0 }),
          ),
        );
      }
      await Bun.sleep(10);
    }
  })();
  const steady = () => Bun.sleep(1_000);

  try {
    await steady();
    // Step 1: new CAs; every verifier trusts the old and the new ones. Leaves unchanged.
    runCerts(certs, ["rotate-ca"]);
    const fresh = ["gateway-ca.pem", "broker-ca.pem", "actor-host-ca.pem"].map(serial);
    const [gatewayCa = "", brokerCa = "", actorHostCa = ""] = fresh;
    const [oldGatewayCa = "", oldBrokerCa = "", oldActorHostCa = ""] = old.cas;
    expect(fresh.some((s) => old.cas.includes(s))).toBe(false);
    await applied(host, "the actor host trusts both gateway and both broker CAs", (a) =>
      naming([gatewayCa, oldGatewayCa, brokerCa, oldBrokerCa])(a.trusts),
    );
    for (const caller of [gateway, broker]) {
      await applied(caller, "a caller trusts both actor-host CAs", (a) =>
        naming([actorHostCa, oldActorHostCa])(a.trusts),
      );
    }
    // The nodes publish to the broker's API over https: both broker CAs trusted before its new certificate comes.
    for (const node of [host, gateway]) {
      await until(
        "a node trusts both broker CAs for QSTASH_URL",
        () => lastBrokerTrust(node),
        (trusts) => naming([brokerCa, oldBrokerCa])(trusts ?? []),
      );
    }
    await steady();

    // Step 2: leaves from the new CAs, presented by every process.
    runCerts(certs);
    for (const [process, leaf] of [
      [host, "actor-host.pem"],
      [gateway, "gateway.pem"],
      [broker, "broker.pem"],
    ] as const) {
      await applied(process, `${leaf} presented`, (a) => a.presents.includes(`serial ${serial(leaf)}`));
    }
    await until(
      "the broker's API serves its new certificate",
      () => lastBrokerServer(broker),
      (line) => (line ?? "").includes(`serial ${serial("broker-server.pem")}`),
    );
    await steady();

    // Step 3: the old CAs leave the bundles.
    runCerts(certs, ["retire-old-ca"]);
    await applied(
      host,
      "the actor host trusts the new client CAs only",
      (a) => a.trusts.length === 2 && naming([gatewayCa, brokerCa])(a.trusts),
    );
    for (const caller of [gateway, broker]) {
      await applied(
        caller,
        "a caller trusts the new actor-host CA only",
        (a) => a.trusts.length === 1 && naming([actorHostCa])(a.trusts),
      );
    }
    for (const node of [host, gateway]) {
      await until(
        "a node trusts the new broker CA only",
        () => lastBrokerTrust(node),
        (trusts) => trusts?.length === 1 && naming([brokerCa])(trusts),
      );
    }
    await steady();
  } finally {
    loading = false;
    await load;
  }

  const statuses = await Promise.all(increments);
  const placed = await Promise.all(orders);
  const failed = statuses.filter((status) => status !== 200).length;
  const refusedOrders = placed.filter((order) => order.status !== 202).length;
  const count = expectOk(await client.call<{ count: number }>("GET", "/v1/counters/ca-rotation")).count;
  console.log(
    `[ca-rotation] ${statuses.length} increments (${failed} failed), ${placed.length} orders (${refusedOrders} not accepted)`,
  );
  expect({ failed, refusedOrders }).toEqual({ failed: 0, refusedOrders: 0 });
  // Each increment applied once: none lost, none twice.
  expect(count).toBe(statuses.length);
  // Every order's messages delivered, each once: all confirmed, each charged and reserved exactly once.
  for (const order of placed) {
    expect((await client.settle(order.orderId as string)).status).toBe("confirmed");
  }
  expect(await client.balance(customer)).toBe(balance - placed.length * price);
  expect((await client.sku(sku)).available).toBe(stock - placed.length);
  const deadLetters = await fetch(`${broker.match}/v2/dlq`, {
    headers: { authorization: `Bearer ${DEV_TOKEN}` },
    tls: { ca: pem("broker-ca-bundle.pem") },
  } as RequestInit);
  expect(((await deadLetters.json()) as { messages: unknown[] }).messages).toEqual([]);
  // No publish to the broker's API was refused at the handshake through the rotation (a refusal is logged, once per
  // cause, by the node that met it).
  for (const node of [host, gateway]) {
    expect(node.output()).not.toContain("presented a certificate this node refuses");
  }

  // The rotation took: a new connection gets the new actor-host leaf, a gateway leaf from the new CA is admitted,
  // and one from the retired CA is refused at the handshake.
  const trust = pem("actor-host-ca-bundle.pem");
  const current = await connect(host.match, { cert: pem("gateway.pem"), key: pem("gateway.key") }, trust);
  expect(current).toEqual({ outcome: "status 200", presented: serial("actor-host.pem").toUpperCase() });
  expect((await connect(host.match, old.gateway, trust)).outcome).toBe("refused");
}, 180_000);
