// The local host's hasState (told from the store, activating nothing), and the asks onlyIfState it answers from it.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { orderActor } from "../../commerce/order.ts";
import { LocalActorHost } from "./host.ts";
import { openBunSqlite } from "./sqlite-bun.ts";

const dirs: string[] = [];
const hosts: LocalActorHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((host) => host.stop()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function boot(file: string): LocalActorHost {
  const host = new LocalActorHost({
    actors: [orderActor],
    db: openBunSqlite(file),
    onBackgroundError: () => {},
  });
  hosts.push(host);
  return host;
}

const order = (key: string) => ({ type: orderActor.type, key });
const place = { customerId: "c-1", items: [{ sku: "sku-1", quantity: 1 }] };

test("hasState is false for an order never placed or whose Place failed, true once placed, also after a restart, and activates nothing", async () => {
  const dir = mkdtempSync(join(tmpdir(), "edgewise-has-state-"));
  dirs.push(dir);
  const file = join(dir, "actors.db");
  const host = boot(file);

  // Never seen: false, and no actor is loaded to say so.
  for (let n = 0; n < 100; n++) expect(host.hasState(order(`never-${n}`))).toBe(false);
  expect(host.stats().activeActors).toBe(0);

  // Placed: its state is committed with the Place's turn.
  await host.ask(order("placed"), "Place", place);
  expect(host.hasState(order("placed"))).toBe(true);
  // A Place that fails commits nothing: an id no order may have ("constructor" is a valid actor key).
  const failed = await host.ask(order("constructor"), "Place", place).catch((error: unknown) => error);
  expect(failed).toMatchObject({ code: "request.invalid" });
  // Its instance is active (so hasState answers true while it is: ask it), but nothing of it is stored.
  expect(host.store.hasState("order/constructor")).toBe(false);
  expect(host.stats().activeActors).toBe(2);
  await host.stop();

  // From disk, with no actor active: the placed order has state, the failed and unknown ones none.
  const again = boot(file);
  expect(again.hasState(order("placed"))).toBe(true);
  expect(again.hasState(order("constructor"))).toBe(false);
  expect(again.hasState(order("never-0"))).toBe(false);
  expect(again.stats().activeActors).toBe(0);
  // An unknown type or an invalid key is refused as by ask.
  expect(() => again.hasState({ type: "nobody", key: "k" })).toThrow();
  expect(() => again.hasState(order("a/b"))).toThrow();
});

test("once stopped, hasState refuses as an ask does (503 unavailable), not with its closed store's error", async () => {
  const dir = mkdtempSync(join(tmpdir(), "edgewise-has-state-"));
  dirs.push(dir);
  const host = boot(join(dir, "actors.db"));
  await host.stop();
  hosts.splice(hosts.indexOf(host), 1);
  const asked = await host.ask(order("never"), "Get", {}).catch((error: unknown) => error);
  expect(asked).toMatchObject({ code: "unavailable" });
  let told: unknown;
  try {
    host.hasState(order("never"));
  } catch (error) {
    told = error;
  }
  expect(told).toMatchObject({ code: "unavailable", message: (asked as Error).message });
});

test("an ask onlyIfState answers noState for an order without state, activating none; an active or placed one is asked", async () => {
  const dir = mkdtempSync(join(tmpdir(), "edgewise-has-state-"));
  dirs.push(dir);
  const host = boot(join(dir, "actors.db"));
  const noState = { duplicate: false, reply: undefined, noState: true as const };
  for (let n = 0; n < 50; n++)
    expect(await host.ask(order(`never-${n}`), "Get", {}, { onlyIfState: true })).toEqual(noState);
  expect(host.stats().activeActors).toBe(0);

  await host.ask(order("placed"), "Place", place);
  const read = await host.ask(order("placed"), "Get", {}, { onlyIfState: true });
  expect(read).toMatchObject({ duplicate: false, reply: { status: "pending", customerId: "c-1" } });
  expect(read.noState).toBeUndefined();
  // Active without committed state (a failed Place): it counts as having state, so the order answers itself.
  await host.ask(order("constructor"), "Place", place).catch(() => {});
  const active = await host
    .ask(order("constructor"), "Get", {}, { onlyIfState: true })
    .catch((error: unknown) => error);
  expect(active).toMatchObject({ code: "not_found", message: "order constructor does not exist" });
  // Checked as any ask: an invalid key is refused, not told "no state"; once stopping, 503 as an ask.
  const invalid = await host
    .ask(order("a/b"), "Get", {}, { onlyIfState: true })
    .catch((error: unknown) => error);
  expect(invalid).toMatchObject({ code: "actor.invalid_key" });
  await host.stop();
  hosts.splice(hosts.indexOf(host), 1);
  const stopping = await host
    .ask(order("never-0"), "Get", {}, { onlyIfState: true })
    .catch((error: unknown) => error);
  expect(stopping).toMatchObject({ code: "unavailable" });
});
