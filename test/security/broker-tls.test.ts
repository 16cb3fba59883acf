// The hop to the broker's API over HTTPS (SECURITY.md, hop 3): a node trusts the broker CA for QSTASH_URL
// (QSTASH_CA_FILE), refuses a certificate it cannot check without sending anything, and keeps its messages until it can.
import { afterAll, describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateSecret } from "../../actors/commerce/webhooks/index.ts";
import { QStashTransport } from "../../actors/queue/qstash-transport.ts";
import { brokerApiFetch } from "../../deploy/broker-api.ts";
import { bunServe } from "../../deploy/bun/serve.ts";
import { issueCert } from "../../deploy/local/certs/openssl.ts";
import { caFiles } from "../../deploy/local/certs/roles.ts";
import { watchCaBundle, watchTlsFiles } from "../../deploy/tls.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { isEdgewiseError } from "../../shared/errors/index.ts";
import { dropSchema, startTestBroker, uniqueSchema } from "../broker/helpers.ts";
import { startCommerceNode } from "../commerce/bun-node.ts";
import { eventually } from "../commerce/client.ts";
import { attackCategory } from "./report.ts";
import { root, runCerts } from "./split-processes.ts";

const cases = attackCategory("broker-tls");
const work = mkdtempSync(join(tmpdir(), "edgewise-broker-tls-"));
const certs = join(work, "certs");
runCerts(certs);
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(work, { recursive: true, force: true });
}, 30_000);

const pem = (name: string) => readFileSync(join(certs, name), "utf8");
const brokerBundle = join(certs, "broker-ca-bundle.pem");

// The broker as `npm run broker` serves it with QSTASH_TLS_CERT_FILE: its API over https, from the broker CA.
const schema = uniqueSchema("broker_tls");
const serverTls = watchTlsFiles({
  cert: join(certs, "broker-server.pem"),
  key: join(certs, "broker-server.key"),
});
const broker = await startTestBroker(schema, { tls: { files: serverTls }, timeScale: 0.01 });
cleanups.push(
  () => dropSchema(schema),
  () => serverTls.close(),
  () => broker.stop(),
);
/**
 * Messages the broker has accepted: each one a node publishes carries a deduplication id, which the broker keeps for
 * 10 minutes, whether the message is still waiting, delivered or dead. A refused handshake leaves it as it was.
 */
const published = async () =>
  (await broker.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM qstash_dedup`)[0]?.n ?? 0;

const envelope = (key: string) =>
  createEnvelope({ type: "Ping", source: "edgewise://test", target: `counter/${key}`, data: {} });
const transport = (url: string, fetch: ReturnType<typeof brokerApiFetch>) =>
  new QStashTransport({
    baseUrl: url,
    token: broker.token,
    deliveryUrl: () => "http://127.0.0.1:9/x",
    fetch,
  });

/** A publish that must be refused at the handshake: its error, and whether the broker stored nothing. */
async function refusedPublish(name: string, url: string, fetch: ReturnType<typeof brokerApiFetch>) {
  const before = await published();
  const error = await transport(url, fetch)
    .send([envelope(name.replace(/\W+/g, "-"))])
    .then(
      () => undefined,
      (failure: unknown) => failure,
    );
  const nothingStored = (await published()) === before;
  cases.tried(name, error !== undefined && nothingStored);
  expect(nothingStored).toBe(true);
  return error as { code?: string; message?: string; meta?: { code?: string } } | undefined;
}

describe("a node publishing to the broker over https", () => {
  test("control: trusting the broker CA bundle, a publish goes through", async () => {
    expect(broker.url).toStartWith("https://127.0.0.1:");
    const before = await published();
    const trust = watchCaBundle(brokerBundle);
    cleanups.push(() => trust.close());
    await transport(broker.url, brokerApiFetch(broker.url, { ca: trust })).send([envelope("control")]);
    expect(await published()).toBe(before + 1);
  });

  test("without QSTASH_CA_FILE, the broker's certificate is refused, and the error says which setting fixes it", async () => {
    const refusals: string[] = [];
    const error = await refusedPublish(
      "a node without the broker CA",
      broker.url,
      brokerApiFetch(broker.url, { onRefused: (refused) => refusals.push(refused.message) }),
    );
    expect(isEdgewiseError(error)).toBe(true);
    expect(error?.code).toBe("broker.unavailable");
    expect(error?.meta?.code).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    expect(error?.message).toContain("set QSTASH_CA_FILE");
    expect(refusals).toHaveLength(1);
  });

  test("a broker certificate for another name, expired, or of another role is refused", async () => {
    const trust = watchCaBundle(brokerBundle);
    cleanups.push(() => trust.close());
    const impostors = {
      // Issued by the broker CA itself, but for another name: the SAN is checked against the URL's host.
      "a certificate from the broker CA for another name": issueCert({
        cert: join(work, "elsewhere.pem"),
        key: join(work, "elsewhere.key"),
        ca: caFiles(certs, "broker"),
        commonName: "edgewise elsewhere",
        sans: ["DNS:elsewhere.test"],
        usage: ["serverAuth"],
      }),
      "an expired certificate from the broker CA": issueCert({
        cert: join(work, "expired.pem"),
        key: join(work, "expired.key"),
        ca: caFiles(certs, "broker"),
        commonName: "edgewise expired",
        sans: ["IP:127.0.0.1"],
        usage: ["serverAuth"],
        notBefore: new Date(Date.now() - 3 * 86_400_000),
        notAfter: new Date(Date.now() - 86_400_000),
      }),
      // The actor host's own server certificate names 127.0.0.1, but its CA is not the broker's.
      "the actor host's certificate (another role's CA)": {
        cert: join(certs, "actor-host.pem"),
        key: join(certs, "actor-host.key"),
      },
    };
    const codes: Record<string, string | undefined> = {};
    for (const [name, cert] of Object.entries(impostors)) {
      let handled = 0;
      const files = watchTlsFiles(cert);
      const listener = await bunServe({
        port: 0,
        hostname: "127.0.0.1",
        fetch: () => {
          handled += 1;
          return Response.json([{ messageId: "msg_impostor" }]);
        },
        tls: { files, requireClientCert: false },
      });
      try {
        const url = `https://127.0.0.1:${listener.port}`;
        const outcome = await transport(url, brokerApiFetch(url, { ca: trust }))
          .send([envelope("impostor")])
          .then(
            () => undefined,
            (error: { meta?: { code?: string }; message?: string }) => error,
          );
        cases.tried(name, outcome !== undefined && handled === 0);
        codes[name] = outcome?.meta?.code;
        expect(handled).toBe(0);
        if (name.includes("another name")) expect(outcome?.message).toContain("does not name 127.0.0.1");
      } finally {
        await listener.stop(true);
        files.close();
      }
    }
    expect(codes).toEqual({
      "a certificate from the broker CA for another name": "ERR_TLS_CERT_ALTNAME_INVALID",
      "an expired certificate from the broker CA": "CERT_HAS_EXPIRED",
      "the actor host's certificate (another role's CA)": "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    });
  });

  test("a node whose QSTASH_CA_FILE lacks the broker CA keeps the order's messages; once it holds it, they go out", async () => {
    // The operator's mistake: the bundle of another role's CA in QSTASH_CA_FILE. Fixed by replacing the file.
    const trustFile = join(work, "node-broker-trust.pem");
    writeFileSync(trustFile, pem("actor-host-ca-bundle.pem"));
    const supplier = generateSecret();
    const lines: string[] = [];
    const running = await startCommerceNode(
      "broker_tls_node",
      {
        QSTASH_URL: broker.url,
        QSTASH_TOKEN: broker.token,
        QSTASH_CURRENT_SIGNING_KEY: broker.currentSigningKey,
        QSTASH_NEXT_SIGNING_KEY: broker.nextSigningKey,
        QSTASH_CA_FILE: trustFile,
        INBOUND_WEBHOOK_SECRETS: `supplier=${supplier}`,
        EDGEWISE_TRACING: "0",
      },
      { log: (line) => lines.push(line) },
    );
    cleanups.push(() => running.stop());
    const { client, node } = running;
    const admin = await client.token();
    const console = () =>
      fetch(`${node.url}/_console`, { headers: { authorization: `Bearer ${admin}` } }).then((r) => r.text());
    const before = await published();
    // A supplier's restock, which the node publishes before answering: refused while the hop is, retried after.
    const restock = JSON.stringify({ type: "inventory.restocked", sku: "tls-sku", quantity: 3 });
    const webhook = () => {
      const at = new Date();
      return fetch(`${node.url}/webhooks/inbound/supplier`, {
        method: "POST",
        body: restock,
        headers: {
          "content-type": "application/json",
          "webhook-id": "msg_tls_restock",
          "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
          "webhook-signature": new Webhook(supplier).sign("msg_tls_restock", at, restock),
        },
      });
    };

    await client.putSku("tls-sku", 5, 1_000);
    await client.putAccount("tls-alice", 5_000);
    const placed = await client.place("tls-alice", [{ sku: "tls-sku", quantity: 1 }]);
    expect(placed.status).toBe(202);
    await eventually(
      () => lines.some((line) => line.includes("presented a certificate this node refuses")),
      "the node logs the refused certificate",
      10_000,
    );
    // Failed closed: nothing reached the broker, the order waits with its messages in the actors' outboxes, and
    // /readyz and the console say the broker cannot be reached.
    const refused = lines.find((line) => line.includes("presented a certificate this node refuses")) ?? "";
    expect(refused).toContain("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    expect(refused).toContain("no CA in QSTASH_CA_FILE issued it");
    expect(await published()).toBe(before);
    expect(node.host?.outboxBacklog().pending).toBeGreaterThan(0);
    expect((await client.order(placed.body.orderId)).status).toBe("pending");
    const ready = await fetch(`${node.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(
      ((await ready.json()) as { dependencies: Record<string, { ok: boolean }> }).dependencies.broker?.ok,
    ).toBe(false);
    expect(await console()).toContain("Queue unreachable");
    const refusedWebhook = await webhook();
    expect(refusedWebhook.status).toBe(503);
    // The detail (the broker's address, the remedy) is the operator's, in the log; not the supplier's.
    expect(await refusedWebhook.text()).not.toContain("QSTASH_CA_FILE");
    cases.tried("a node whose QSTASH_CA_FILE lacks the broker CA", (await published()) === before);

    // The fix: the broker CA bundle in the file the node follows. No restart.
    writeFileSync(trustFile, pem("broker-ca-bundle.pem"));
    await eventually(
      () => lines.some((line) => line.includes("tls: broker CA applied")),
      "the node applies the new bundle",
      10_000,
    );
    const order = await client.settle(placed.body.orderId);
    expect(order.status).toBe("confirmed");
    expect(await client.balance("tls-alice")).toBe(4_000);
    // The supplier's retry of the refused webhook is accepted now, and its restock lands: 5 - 1 + 3.
    expect((await webhook()).status).toBe(202);
    await eventually(async () => (await client.sku("tls-sku")).available === 7, "the restock", 10_000);
    expect(await published()).toBeGreaterThan(before);
    await eventually(async () => (await fetch(`${node.url}/readyz`)).status === 200, "/readyz ready", 10_000);
    expect(await console()).toContain("the dead-letter queue is empty");
  }, 60_000);

  test("on Deno, a publish trusts QSTASH_CA_FILE's CAs too, and without them refuses the certificate", async () => {
    // Spawned, not spawnSync: the broker answering the probe runs in this process's event loop.
    const probe = async (ca: string) => {
      const child = Bun.spawn(
        [
          join(root, "node_modules/.bin/deno"),
          "run",
          "--allow-all",
          "--no-lock",
          join(import.meta.dir, "deno-broker-tls-probe.ts"),
        ],
        {
          cwd: root,
          env: { ...process.env, PROBE_URL: broker.url, PROBE_TOKEN: broker.token, PROBE_CA: ca },
          stdout: "pipe",
          stderr: "pipe",
          timeout: 30_000,
        },
      );
      const [out, err] = await Promise.all([
        new Response(child.stdout).text(),
        new Response(child.stderr).text(),
      ]);
      return `${out.trim()}${err.trim() ? ` / ${err.trim()}` : ""}`;
    };
    const before = await published();
    expect(await probe(brokerBundle)).toBe("published");
    expect(await published()).toBe(before + 1);
    const without = await probe("");
    cases.tried("a Deno node without the broker CA", without.startsWith("refused"));
    expect(without).toStartWith("refused");
    expect(without).toContain("invalid peer certificate: UnknownIssuer");
    expect(await published()).toBe(before + 1);
  }, 60_000);
});
