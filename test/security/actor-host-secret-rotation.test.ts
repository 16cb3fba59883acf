// Rotating ACTOR_HOST_SECRET in a split deployment: the actor host accepts the previous secret beside the new one
// (ACTOR_HOST_PREVIOUS_SECRET), so gateways move over one by one with no refused call; unset, the old one is refused.
import { expect, test } from "bun:test";
import { RemoteActorHost } from "../../actors/hosts/remote/client.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { restartableNode } from "../support/restartable-node.ts";

const oldSecret = "old-actor-host-secret-old-actor-host-secret";
const newSecret = "new-actor-host-secret-new-actor-host-secret";
const node = restartableNode("actor_host_rotation");
const restart = (env: Record<string, string>) => node.restart(env);

/** A gateway's view of the actor host, signing with `secret`: undefined when its ping passes, else the error. */
const ping = (secret: string) =>
  new RemoteActorHost({ baseUrl: node.url, secret })
    .ping()
    .then(() => undefined)
    .catch((error: unknown) => error);

test("gateways on the old secret keep working while the actor host also holds the new one; unset, they are refused", async () => {
  await restart({ ACTOR_HOST_SECRET: oldSecret });
  expect(await ping(oldSecret)).toBeUndefined();

  const lines = await restart({ ACTOR_HOST_SECRET: newSecret, ACTOR_HOST_PREVIOUS_SECRET: oldSecret });
  expect(await ping(oldSecret)).toBeUndefined();
  expect(await ping(newSecret)).toBeUndefined();
  expect(await ping("a-third-secret-a-third-secret-a-third-secret")).toBeInstanceOf(EdgewiseError);
  const said = lines.filter((line) => line.includes("ACTOR_HOST_PREVIOUS_SECRET are still accepted"));
  expect(said).toHaveLength(1);
  expect(said[0]).not.toContain(oldSecret);

  await restart({ ACTOR_HOST_SECRET: newSecret });
  const refused = await ping(oldSecret);
  expect(refused).toBeInstanceOf(EdgewiseError);
  expect((refused as Error).message).toContain("ACTOR_HOST_SECRET differs");
  expect(await ping(newSecret)).toBeUndefined();
}, 90_000);

test("ACTOR_HOST_PREVIOUS_SECRET without ACTOR_HOST_SECRET, or short, is refused at start, never printed", () => {
  expect(() => parseConfig({ ACTOR_HOST_PREVIOUS_SECRET: oldSecret })).toThrow(
    /ACTOR_HOST_PREVIOUS_SECRET .*needs ACTOR_HOST_SECRET/,
  );
  expect(() => parseConfig({ ACTOR_HOST_SECRET: newSecret, ACTOR_HOST_PREVIOUS_SECRET: "short" })).toThrow(
    /ACTOR_HOST_PREVIOUS_SECRET must be at least 32 characters/,
  );
});
