// A split deployment in process: a gateway whose actors live behind a signed HTTP actor host.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { counterActor } from "../../actors/examples/counter.ts";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { RemoteActorHost } from "../../actors/hosts/remote/client.ts";
import { actorHostPaths, signatureHeaders, signedMessage } from "../../actors/hosts/remote/protocol.ts";
import { hmacSigner } from "../../shared/crypto/hmac.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { createApp } from "../app.ts";

const secret = "actor-host-secret-for-tests-0123456789";
const local = new LocalActorHost({
  actors: [counterActor],
  db: openBunSqlite(join(mkdtempSync(join(tmpdir(), "edgewise-remote-")), "actors.db")),
});
afterAll(() => local.stop());
const actorNode = createApp({ actors: local, actorHost: { secret } });
const viaNode = (input: string | URL | Request, init?: RequestInit) =>
  actorNode.request(input instanceof Request ? input : String(input), init);
const remote = new RemoteActorHost({
  baseUrl: "http://actors.internal",
  secret,
  fetch: viaNode as typeof fetch,
});
const gateway = createApp({ actors: remote });

async function signed(path: string, body: string, options: { secret?: string; timestamp?: number } = {}) {
  const timestamp = String(options.timestamp ?? Date.now());
  const signature = await hmacSigner(options.secret ?? secret).sign(signedMessage(path, timestamp, body));
  return actorNode.request(path, {
    method: "POST",
    body,
    headers: {
      "content-type": "application/json",
      [signatureHeaders.timestamp]: timestamp,
      [signatureHeaders.signature]: signature,
    },
  });
}

describe("remote actor host", () => {
  test("a gateway asks actors on another node; the reply and typed errors come back", async () => {
    const response = await gateway.request("/v1/counters/r1/increment", {
      method: "POST",
      body: '{"by":4}',
      headers: { "content-type": "application/json" },
    });
    expect(await response.json()).toEqual({ count: 4 });
    expect(local.inspect({ type: "counter", key: "r1" }).state).toEqual({ count: 4 });
    const error = await remote.ask({ type: "counter", key: "r1" }, "Nope", {}).catch((caught) => caught);
    expect(error).toBeInstanceOf(EdgewiseError);
    expect((error as EdgewiseError).code).toBe("message.unknown_type");
  });

  test("unsigned, wrongly signed, stale and re-targeted requests get 401 and reach no actor", async () => {
    const body = JSON.stringify(
      createEnvelope({ type: "Increment", source: "t", target: "counter/r2", data: { by: 1 } }),
    );
    const unsigned = await actorNode.request(actorHostPaths.ask, {
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
    });
    expect(unsigned.status).toBe(401);
    expect(
      (await signed(actorHostPaths.ask, body, { secret: "another-secret-entirely-0123456789" })).status,
    ).toBe(401);
    expect((await signed(actorHostPaths.ask, body, { timestamp: Date.now() - 120_000 })).status).toBe(401);
    // A signature over the ask path does not authorize the same body on the receive path.
    const timestamp = String(Date.now());
    const askSignature = await hmacSigner(secret).sign(signedMessage(actorHostPaths.ask, timestamp, body));
    const swapped = await actorNode.request(actorHostPaths.receive, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/json",
        [signatureHeaders.timestamp]: timestamp,
        [signatureHeaders.signature]: askSignature,
      },
    });
    expect(swapped.status).toBe(401);
    expect(local.inspect({ type: "counter", key: "r2" }).state).toBeUndefined();
  });

  test("a replayed signed ask is acknowledged as a duplicate and not applied again", async () => {
    const body = JSON.stringify(
      createEnvelope({ type: "Increment", source: "t", target: "counter/r3", data: { by: 2 } }),
    );
    const first = await (await signed(actorHostPaths.ask, body)).json();
    const replay = await (await signed(actorHostPaths.ask, body)).json();
    expect(first).toEqual({ ok: true, duplicate: false, reply: { count: 2 } });
    expect(replay).toEqual({ ok: true, duplicate: true, reply: { count: 2 } });
  });
});
