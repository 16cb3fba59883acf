// An actor host behind mutual TLS that trusts qstash dev's public signing keys: who reaches its delivery route, and
// what its start-up warning says about it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Broker, startBroker } from "../../deploy/local/broker/index.ts";
import { createSigner } from "../../deploy/local/broker/signing.ts";
import { type CertFiles, issueCert, makeCa } from "../../deploy/local/certs/openssl.ts";
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../broker/helpers.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";

const dir = mkdtempSync(join(tmpdir(), "edgewise-keys-mtls-"));
const file = (name: string): CertFiles => ({ cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) });
const ca = (name: string) => makeCa({ ...file(`${name}-ca`), commonName: `Edgewise ${name} CA` });
const gatewayCa = ca("gateway");
const brokerCa = ca("broker");
const actorHostCa = ca("actor-host");
const clientsBundle = join(dir, "actor-host-clients-ca.pem");
writeFileSync(clientsBundle, readFileSync(gatewayCa.cert, "utf8") + readFileSync(brokerCa.cert, "utf8"));
const server = issueCert({
  ...file("actor-host"),
  commonName: "edgewise actor-host",
  ca: actorHostCa,
  sans: ["DNS:localhost", "IP:127.0.0.1"],
  usage: ["serverAuth"],
});
const gateway = issueCert({
  ...file("gateway"),
  commonName: "edgewise gateway",
  ca: gatewayCa,
  usage: ["clientAuth"],
});
const pem = (path: string) => readFileSync(path, "utf8");

const brokerSchema = uniqueSchema("keys_mtls_broker");
let broker: Broker;
const running: CommerceNode[] = [];
beforeAll(async () => {
  // npm run broker's defaults: qstash dev's public token and signing keys.
  broker = await startBroker({ port: 0, databaseUrl: TEST_DATABASE_URL, schema: brokerSchema });
}, 30_000);
afterAll(async () => {
  for (const node of running) await node.stop();
  await broker.stop();
  await dropSchema(brokerSchema);
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** An actor host on every interface, on the broker's public keys, with the given TLS settings; its warn lines. */
async function actorHost(name: string, tls: Record<string, string>) {
  const lines: string[] = [];
  const node = await startCommerceNode(
    name,
    {
      HOST: "0.0.0.0",
      QSTASH_URL: broker.url,
      QSTASH_TOKEN: broker.token,
      QSTASH_CURRENT_SIGNING_KEY: broker.currentSigningKey,
      QSTASH_NEXT_SIGNING_KEY: broker.nextSigningKey,
      ...tls,
    },
    { log: (line) => lines.push(line) },
  );
  running.push(node);
  return { node, warnings: () => lines.filter((line) => line.includes("public signing keys")) };
}

describe("an actor host requiring client certificates, on qstash dev's public signing keys", () => {
  test("its delivery route is reached only with a client certificate, but a gateway's is enough to sign a delivery; its warning says so", async () => {
    const { node, warnings } = await actorHost("keys_mtls", {
      TLS_CERT_FILE: server.cert,
      TLS_KEY_FILE: server.key,
      TLS_CA_FILE: clientsBundle,
    });
    expect(node.node.url).toStartWith("https://");
    const target = `${node.node.url}/_edgewise/deliver/counter/k`;
    const body = "{}";
    const signature = await createSigner(broker.currentSigningKey)(target, new TextEncoder().encode(body));
    const deliver = (tls: Record<string, string>) =>
      fetch(target, {
        method: "POST",
        body,
        headers: { "upstash-signature": signature, "content-type": "application/json" },
        tls: { ca: pem(actorHostCa.cert), ...tls },
      } as RequestInit).then(
        (response) => response.status,
        () => "refused",
      );
    // Without a client certificate: refused at the handshake, so not "anyone who can reach it".
    expect(await deliver({})).toBe("refused");
    // With a gateway-role certificate, a delivery signed with the public key passes the signature check: the
    // envelope is then refused as poison (489), not the signature (401). So the warning must stay.
    expect(await deliver({ cert: pem(gateway.cert), key: pem(gateway.key) })).toBe(489);
    const [warning, ...others] = warnings();
    expect(others).toEqual([]);
    expect(warning).toContain("any client with a certificate from TLS_CA_FILE's CAs");
    expect(warning).toContain("QSTASH_CURRENT_SIGNING_KEY and QSTASH_NEXT_SIGNING_KEY");
    expect(warning).not.toContain("anyone who can reach it");
  }, 60_000);

  test("without TLS_CA_FILE no client certificate is asked for, and the warning says anyone can sign a delivery", async () => {
    const { node, warnings } = await actorHost("keys_tls_only", {
      TLS_CERT_FILE: server.cert,
      TLS_KEY_FILE: server.key,
    });
    expect(node.node.url).toStartWith("https://");
    const [warning, ...others] = warnings();
    expect(others).toEqual([]);
    expect(warning).toContain("anyone who can reach it can sign a delivery");
  }, 60_000);
});
