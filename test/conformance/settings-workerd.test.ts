// Durable Objects read EDGEWISE_TURN_TIMEOUT and EDGEWISE_INBOX_RETENTION from the Worker's environment, as a node does.
import { expect, test } from "bun:test";
import { eventually } from "./cases.ts";
import { conformanceWorkerPerFile } from "./workerd-driver.ts";

const vars = { PROFILE_VERSION: "1", EDGEWISE_TURN_TIMEOUT: "400ms", EDGEWISE_INBOX_RETENTION: "1s" };
const driver = conformanceWorkerPerFile("settings-workerd", () => vars);

test("EDGEWISE_TURN_TIMEOUT: a turn of an actor with no limit of its own fails after it, and the next one runs", async () => {
  const key = `limit-${Date.now().toString(36)}`;
  const started = Date.now();
  // 3 s is well inside the 30 s default, so only the variable can fail it.
  const outcome = await driver().ask("sleeper", key, "Nap", { ms: 3_000 });
  const tookMs = Date.now() - started;
  expect(outcome.ok).toBe(false);
  if (!outcome.ok) {
    expect(outcome.error.code).toBe("actor.turn_timeout");
    expect(outcome.error.status).toBe(503);
  }
  expect(tookMs).toBeGreaterThanOrEqual(350);
  expect(tookMs).toBeLessThan(3_000);
  // Nothing of the failed turn committed, and a turn within the limit still runs.
  const quick = await driver().ask("sleeper", key, "Nap", { ms: 0 });
  expect(quick.ok && quick.reply).toEqual({ naps: 1 });
  expect((await driver().inspect("sleeper", key)).state).toEqual({ naps: 1 });
}, 30_000);

test("EDGEWISE_INBOX_RETENTION: a handled message id is forgotten after it, so its redelivery applies again", async () => {
  const key = `retention-${Date.now().toString(36)}`;
  const id = `retention-${key}`;
  const first = await driver().ask("counter", key, "Increment", { by: 1 }, id);
  expect(first.ok && first.reply).toMatchObject({ count: 1 });
  // Within the window, the same id is a duplicate: acknowledged, not applied.
  const again = await driver().ask("counter", key, "Increment", { by: 1 }, id);
  expect(again.ok && again.reply).toMatchObject({ count: 1 });
  expect((await driver().inspect("counter", key)).inboxSize).toBe(1);
  // The object's alarm prunes the id once it is 1 s old (7 days by default).
  await eventually(
    () => driver().inspect("counter", key),
    (snapshot) => snapshot.inboxSize === 0,
    10_000,
  );
  const late = await driver().ask("counter", key, "Increment", { by: 1 }, id);
  expect(late.ok && late.reply).toMatchObject({ count: 2 });
}, 30_000);
