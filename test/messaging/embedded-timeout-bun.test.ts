// The embedded broker's deliveries to its own node (handed over in process) keep Upstash-Timeout, as over HTTP.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@upstash/qstash";
import { deliveryPath } from "../../actors/queue/qstash-transport.ts";
import { type EdgewiseNode, startNode } from "../../deploy/bun/node.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { dropSchema, TEST_DATABASE_URL, uniqueSchema, waitFor } from "../broker/helpers.ts";
import { sleeper } from "../conformance/fixtures.ts";

const schema = uniqueSchema("embedded_timeout");
let node: EdgewiseNode;
beforeAll(async () => {
  node = await startNode({
    config: parseConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      EDGEWISE_DATA_DIR: mkdtempSync(join(tmpdir(), "edgewise-embedded-timeout-")),
      DATABASE_URL: TEST_DATABASE_URL,
    }),
    schema,
    actors: [sleeper],
    brokerTimeScale: 0.01,
    log: () => {},
  });
}, 30_000);
afterAll(async () => {
  await node?.stop();
  await dropSchema(schema);
});

test("a turn slower than Upstash-Timeout: the attempt times out and is retried, and the message applies once", async () => {
  const client = new Client({ baseUrl: node.brokerUrl, token: node.broker?.token as string, retry: false });
  const target = { type: "sleeper", key: "s1" };
  const envelope = createEnvelope({
    type: "Nap",
    source: "edgewise://test",
    target: "sleeper/s1",
    data: { ms: 1_500 },
  });
  const { messageId } = await client.publish({
    url: `${node.publicUrl}${deliveryPath(target)}`,
    body: JSON.stringify(envelope),
    headers: { "content-type": "application/cloudevents+json" },
    timeout: "1s",
    retries: 3,
  });
  const logs = async () => (await client.logs({ messageIds: [messageId] })).logs;
  // Before the timeout was kept in process, the first attempt simply waited 1.5 s and succeeded.
  await waitFor(
    async () => (await logs()).some((log) => log.state === "ERROR" && (log.error ?? "").includes("timeout")),
    5_000,
    "the first attempt to time out",
  );
  await waitFor(async () => (await logs()).some((log) => log.state === "DELIVERED"), 10_000, "the retry");
  expect(node.host!.inspect(target).state).toEqual({ naps: 1 });
}, 30_000);
