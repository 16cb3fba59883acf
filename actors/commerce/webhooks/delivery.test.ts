// Delivery and DNS rebinding: the POST goes to the addresses the SSRF check approved, never to a second lookup's answer.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { issueCert, makeCa } from "../../../deploy/local/certs/openssl.ts";
import { systemClock } from "../../../shared/clock/index.ts";
import { createEnvelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { prefixedId } from "../../../shared/ids/index.ts";
import { deliver } from "./delivery.ts";
import { nodeHttpPost, postWithNodeHttp } from "./node-post.ts";
import type { PostWebhook } from "./post.ts";
import { generateSecret } from "./secret.ts";
import type { TargetPolicy } from "./ssrf.ts";
import type { AttemptRecord } from "./store.ts";

/** `.test` is reserved (RFC 6761): the system resolver never answers for it, only the injected one does. */
const NAME = "hooks.rebind.test";

const dir = mkdtempSync(join(tmpdir(), "edgewise-delivery-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ca = makeCa({
  commonName: "Edgewise delivery test CA",
  cert: join(dir, "ca.pem"),
  key: join(dir, "ca-key.pem"),
});
const leaf = issueCert({
  ca,
  commonName: NAME,
  sans: [`DNS:${NAME}`],
  usage: ["serverAuth"],
  cert: join(dir, "server.pem"),
  key: join(dir, "server-key.pem"),
});
const trustingCa = nodeHttpPost({ ca: readFileSync(ca.cert, "utf8") });

interface Hit {
  host: string;
  headers: Record<string, string>;
  body: string;
}

/** A receiver on one loopback address, over TLS with the certificate for NAME when asked. */
function receiver(hostname: string, options: { tls?: boolean; port?: number } = {}) {
  const hits: Hit[] = [];
  const server = Bun.serve({
    hostname,
    port: options.port ?? 0,
    ...(options.tls ? { tls: { cert: Bun.file(leaf.cert), key: Bun.file(leaf.key) } } : {}),
    async fetch(request) {
      const headers = Object.fromEntries(request.headers);
      hits.push({ host: headers.host ?? "", headers, body: await request.text() });
      return new Response(null, { status: 204 });
    },
  });
  return { hits, port: server.port as number, stop: () => server.stop(true) };
}

/** A resolver answering from a table, and what it was asked. */
function resolver(answers: Record<string, string[]>) {
  const asked: string[] = [];
  const resolve = async (hostname: string) => {
    asked.push(hostname);
    const answer = answers[hostname];
    if (!answer) throw new Error(`ENOTFOUND ${hostname}`);
    return answer;
  };
  return Object.assign(resolve, { asked });
}

/** One subscription at `url`, held in memory: the three store calls delivery makes. */
async function send(url: string, policy: TargetPolicy, post: PostWebhook) {
  const secret = generateSecret();
  const subscriptionId = prefixedId("whsub");
  const attempts: AttemptRecord[] = [];
  const store = {
    getSubscription: async (id: string) => ({
      id,
      url,
      events: ["order.confirmed"],
      secret,
      previousSecret: null,
      previousSecretExpiresAt: null,
      createdAt: new Date(),
      deletedAt: null,
    }),
    wasDelivered: async () => false,
    recordAttempt: async (attempt: AttemptRecord) => attempts.push(attempt),
    deleteSubscription: async () => true,
  };
  const event = createEnvelope({
    type: "OrderConfirmed",
    source: "edgewise://actor/order/o-1",
    data: { orderId: "o-1", version: 3, customerId: "c1", items: [], totalCents: 0 },
  });
  const outcome = await deliver(
    { store, policy, clock: systemClock, post, timeoutMs: 5_000 },
    { subscriptionId, event },
  ).catch((error: unknown) => error);
  return { outcome, attempts, secret, event };
}

describe("a name is resolved once per attempt, by the check, and the POST goes where the check said", () => {
  test("http: the receiver at the checked address gets the POST under the subscription's name", async () => {
    const hooks = receiver("127.0.0.1");
    try {
      const resolve = resolver({ [NAME]: ["127.0.0.1"] });
      const policy = { resolve, allowAddresses: ["127.0.0.1"] };
      const { outcome, attempts, secret } = await send(
        `http://${NAME}:${hooks.port}/hook`,
        policy,
        postWithNodeHttp,
      );
      expect(outcome).toEqual({ duplicate: false, reply: { status: 204, attempt: 1 } });
      expect(attempts.map((attempt) => attempt.outcome)).toEqual(["delivered"]);
      expect(resolve.asked).toEqual([NAME]);
      expect(hooks.hits.map((hit) => hit.host)).toEqual([`${NAME}:${hooks.port}`]);
      const [hit] = hooks.hits;
      expect(new Webhook(secret).verify(hit!.body, hit!.headers)).toMatchObject({ type: "order.confirmed" });
    } finally {
      hooks.stop();
    }
  });

  test("https: the certificate is verified against the name; one for another name is refused", async () => {
    const hooks = receiver("127.0.0.1", { tls: true });
    try {
      const resolve = resolver({ [NAME]: ["127.0.0.1"], "other.rebind.test": ["127.0.0.1"] });
      const policy = { resolve, allowAddresses: ["127.0.0.1"] };
      const ok = await send(`https://${NAME}:${hooks.port}/hook`, policy, trustingCa);
      expect(ok.outcome).toEqual({ duplicate: false, reply: { status: 204, attempt: 1 } });
      expect(hooks.hits.map((hit) => hit.host)).toEqual([`${NAME}:${hooks.port}`]);

      const other = await send(`https://other.rebind.test:${hooks.port}/hook`, policy, trustingCa);
      expect(other.outcome).toBeInstanceOf(EdgewiseError);
      expect(other.outcome).toMatchObject({ code: "webhooks.delivery_failed" });
      expect(other.attempts.map((attempt) => attempt.outcome)).toEqual(["failed"]);
      expect(hooks.hits).toHaveLength(1);
    } finally {
      hooks.stop();
    }
  });

  test("an address the check did not approve is never connected to", async () => {
    // The receiver listens on 127.0.0.1; the name's checked address is 127.0.0.2, where nothing listens.
    const hooks = receiver("127.0.0.1");
    try {
      const policy = { resolve: resolver({ [NAME]: ["127.0.0.2"] }), allowAddresses: ["127.0.0.2"] };
      const { outcome, attempts } = await send(`http://${NAME}:${hooks.port}/hook`, policy, postWithNodeHttp);
      expect(outcome).toMatchObject({ code: "webhooks.delivery_failed" });
      expect(attempts.map((attempt) => [attempt.outcome, attempt.statusCode])).toEqual([["failed", null]]);
      expect(hooks.hits).toEqual([]);
    } finally {
      hooks.stop();
    }
  });

  test("WEBHOOKS_ALLOW_PRIVATE: nothing is resolved or pinned, and a loopback receiver is reached as before", async () => {
    const hooks = receiver("127.0.0.1");
    try {
      const resolve = resolver({});
      const { outcome } = await send(
        `http://127.0.0.1:${hooks.port}/hook`,
        { resolve, allowPrivate: true },
        postWithNodeHttp,
      );
      expect(outcome).toEqual({ duplicate: false, reply: { status: 204, attempt: 1 } });
      expect(resolve.asked).toEqual([]);
      expect(hooks.hits.map((hit) => hit.host)).toEqual([`127.0.0.1:${hooks.port}`]);
    } finally {
      hooks.stop();
    }
  });
});
