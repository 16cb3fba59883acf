// Upstash-Signature as the SDK Receiver checks it: the body claim covers what is sent.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Receiver } from "@upstash/qstash";
import type { Broker } from "../../deploy/local/broker/index.ts";
import { call, dropSchema, startReceiver, startTestBroker, uniqueSchema, waitFor } from "./helpers.ts";

const schema = uniqueSchema("signature");
let broker: Broker;
let receiver: Receiver;
const destination = startReceiver();

beforeAll(async () => {
  broker = await startTestBroker(schema);
  receiver = new Receiver({
    currentSigningKey: broker.currentSigningKey,
    nextSigningKey: broker.nextSigningKey,
  });
});

afterAll(async () => {
  await broker.stop();
  destination.stop();
  await dropSchema(schema);
});

async function delivered(messageId: string) {
  await waitFor(() => destination.of(messageId).length === 1);
  const got = destination.of(messageId)[0];
  if (!got) throw new Error("not delivered");
  return got;
}

describe("Upstash-Signature", () => {
  test("a GET or HEAD message with a body is sent without it, and signed for what is sent", async () => {
    for (const method of ["GET", "HEAD"]) {
      const url = destination.url(`/${method.toLowerCase()}-with-body`);
      const sent = await call(broker, `/v2/publish/${url}`, {
        method: "POST",
        body: '{"id":1}',
        headers: { "Upstash-Method": method, "Content-Type": "application/json" },
      });
      const got = await delivered((sent.body as { messageId: string }).messageId);
      expect(got).toMatchObject({ method, body: "" });
      const signature = got.headers["upstash-signature"] ?? "";
      expect(await receiver.verify({ signature, body: "", url })).toBe(true);
    }
  });
});
