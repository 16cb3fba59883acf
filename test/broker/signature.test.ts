// Upstash-Signature as the SDK Receiver checks it: the body claim covers what is sent, nbf tolerates a slow clock.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Client, Receiver } from "@upstash/qstash";
import { decodeJwt, jwtVerify } from "jose";
import type { Broker } from "../../deploy/local/broker/index.ts";
import {
  call,
  dropSchema,
  startReceiver,
  startTestBroker,
  uniqueSchema,
  waitFor,
  sdkFor,
} from "./helpers.ts";

const schema = uniqueSchema("signature");
let broker: Broker;
let client: Client;
let receiver: Receiver;
const destination = startReceiver();

beforeAll(async () => {
  broker = await startTestBroker(schema);
  ({ client, receiver } = sdkFor(broker));
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

  test("nbf is 0, as QStash sets it, so a receiver whose clock is behind still verifies", async () => {
    const url = destination.url("/skew");
    const { messageId } = await client.publish({ url, body: "x" });
    const signature = (await delivered(messageId)).headers["upstash-signature"] ?? "";
    const claims = decodeJwt(signature);
    const now = Math.floor(Date.now() / 1000);
    expect(claims.nbf).toBe(0);
    expect(claims.iat).toBeGreaterThanOrEqual(now - 5);
    expect(claims.iat).toBeLessThanOrEqual(now);
    expect(claims.exp).toBe((claims.iat as number) + 300);
    // What the SDK Receiver runs (jose, no clock tolerance), on a clock 3 s behind the broker's.
    const key = new TextEncoder().encode(broker.currentSigningKey);
    const behind = new Date(((claims.iat as number) - 3) * 1000);
    const verified = await jwtVerify(signature, key, { issuer: "Upstash", currentDate: behind });
    expect(verified.payload.sub).toBe(url);
    // Still refused once expired.
    const late = new Date(((claims.exp as number) + 1) * 1000);
    expect(jwtVerify(signature, key, { issuer: "Upstash", currentDate: late })).rejects.toThrow();
  });
});
