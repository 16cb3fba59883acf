// A Durable Object that wakes with outbox rows and no alarm for them relays them, without waiting for another write.
import { expect, test } from "bun:test";
import { eventually } from "./cases.ts";
import { conformanceWorkerPerFile } from "./workerd-driver.ts";

/** Read at each start: the first runs without a transport, the restart with one. */
const vars = { PROFILE_VERSION: "1", RELAY: "off" };
const driver = conformanceWorkerPerFile("wake-workerd", () => vars);

test("outbox rows committed before the Worker had a transport are relayed once it has one, on a read", async () => {
  const key = `wake-${Date.now().toString(36)}`;
  const target = `counter/${key}-target`;
  const sent = await driver().ask("counter", key, "SendTo", { key: `${key}-target`, count: 3 });
  if (!sent.ok) throw new Error(sent.error.message);
  const ids = (sent.reply as { ids: string[] }).ids;
  expect((await driver().inspect("counter", key)).outboxSize).toBe(3);

  // Deployed again, now with a transport. The object's only alarm is its inbox pruning, days away.
  vars.RELAY = "on";
  await driver().crash();
  expect((await driver().sent()).filter((envelope) => envelope.target === target)).toEqual([]);

  // A read commits nothing, so no commit sets an alarm: waking the object must.
  const read = await driver().ask("counter", key, "Get", {});
  expect(read.ok).toBe(true);
  const relayed = await eventually(
    async () => (await driver().sent()).filter((envelope) => envelope.target === target),
    (list) => list.length >= 3,
  );
  expect(relayed.map((envelope) => envelope.id)).toEqual(ids);
  expect((await driver().inspect("counter", key)).outboxSize).toBe(0);
}, 60_000);
