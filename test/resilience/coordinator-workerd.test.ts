// Breakers shared through the BreakerCoordinator Durable Object, inside workerd: a test Worker under `wrangler dev`
// whose `?isolate=` parameter picks one of several separate sets of local breakers (what separate isolates
// would be; wrangler dev runs one), all reporting to the same coordinator object per dependency.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { CoordinatorSnapshot } from "../../actors/hosts/cloudflare/breaker-shared.ts";
import type { CoordinationStatus } from "../../actors/hosts/cloudflare/coordinated-dependencies.ts";
import { type Started, startProcess } from "../e2e/process.ts";
import { wranglerDev, wranglerEnv } from "../support/wrangler.ts";

const root = resolve(import.meta.dir, "../..");
const persistTo = mkdtempSync(join(tmpdir(), "edgewise-coordinator-workerd-"));
let worker: Started | undefined;

interface View {
  isolate: string;
  state: string;
  invoked: number;
  coordination?: CoordinationStatus;
  result?: "ok" | "failed" | "breaker.open";
}

beforeAll(async () => {
  worker = await startProcess(
    wranglerDev({ config: "test/resilience/cloudflare-coordinator/wrangler.toml", persistTo }),
    { cwd: root, env: wranglerEnv, pattern: /Ready on (https?:\/\/[\w.]+:\d+)/, timeoutMs: 40_000 },
  );
}, 60_000);

afterAll(async () => {
  if (process.env.EDGEWISE_TEST_WORKER_LOG === "1") console.log(worker?.output());
  await worker?.kill();
  rmSync(persistTo, { recursive: true, force: true });
});

async function get<T>(path: string): Promise<T> {
  const response = await fetch(`${worker?.match}${path}`, {
    method: path.startsWith("/call") ? "POST" : "GET",
  });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

const call = (isolate: string, dep: string, outcome: "ok" | "fail", permits = 1) =>
  get<View>(`/call?isolate=${isolate}&dep=${dep}&outcome=${outcome}&permits=${permits}`);
const sync = (isolate: string, dep: string, permits = 1) =>
  get<View>(`/sync?isolate=${isolate}&dep=${dep}&permits=${permits}`);
const coordinator = (dep: string) => get<CoordinatorSnapshot>(`/coordinator?dep=${dep}`);

/** Polls the coordinator until `done` holds: syncs after a request run in its waitUntil, after the response. */
async function until(
  dep: string,
  done: (snapshot: CoordinatorSnapshot) => boolean,
): Promise<CoordinatorSnapshot> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const snapshot = await coordinator(dep);
    if (done(snapshot)) return snapshot;
    if (Date.now() > deadline) throw new Error(`coordinator of ${dep}: ${JSON.stringify(snapshot)}`);
    await Bun.sleep(50);
  }
}

test("a trip in isolate A makes B fail fast after it syncs; one probe is granted; its success closes both", async () => {
  const dep = "db:one";
  // B uses the dependency first and learns the shared state: closed.
  expect(await call("b1", dep, "ok")).toMatchObject({ result: "ok", state: "closed", invoked: 1 });
  expect((await sync("b1", dep)).coordination).toMatchObject({ shared: { state: "closed" }, generation: 0 });

  // A trips on three failures; the trip is reported in that request's waitUntil.
  for (let i = 0; i < 3; i++) expect((await call("a1", dep, "fail")).result).toBe("failed");
  const open = await until(dep, (snapshot) => snapshot.state === "open");
  expect(open).toMatchObject({ name: dep, generation: 1, reason: "consecutive-failures" });

  // B, once synced, fails fast: the dependency is not called.
  expect((await sync("b1", dep)).coordination).toMatchObject({ local: "open", held: true, generation: 1 });
  expect(await call("b1", dep, "ok")).toMatchObject({ result: "breaker.open", state: "open", invoked: 1 });

  // After the shared reset time (4 s) both ask for a probe; the coordinator grants exactly one.
  await Bun.sleep(4_100);
  expect((await sync("a1", dep)).coordination).toMatchObject({ permit: true });
  expect((await sync("b1", dep)).coordination).toMatchObject({ permit: false, held: true });
  const halfOpen = await coordinator(dep);
  expect(halfOpen.state).toBe("half-open");
  expect(halfOpen.permits.map((permit) => permit.isolate)).toEqual(["a1"]);
  expect(await call("b1", dep, "ok")).toMatchObject({ result: "breaker.open", invoked: 1 });

  // A's probe succeeds: A closes, reports it, and the coordinator closes.
  expect(await call("a1", dep, "ok")).toMatchObject({ result: "ok", state: "closed", invoked: 4 });
  expect(await until(dep, (snapshot) => snapshot.state === "closed")).toMatchObject({
    generation: 2,
    reason: "probes-succeeded",
  });
  // B, once synced, is closed and calls again.
  expect((await sync("b1", dep)).coordination).toMatchObject({ local: "closed", held: false, generation: 2 });
  expect(await call("b1", dep, "ok")).toMatchObject({ result: "ok", state: "closed", invoked: 2 });
}, 60_000);

test("with two probe permits, two of three isolates probe; a failed probe reopens for all", async () => {
  const dep = "db:two";
  const permits = 2;
  for (const isolate of ["q2", "r2"]) await call(isolate, dep, "ok", permits);
  for (let i = 0; i < 3; i++) await call("p2", dep, "fail", permits);
  await until(dep, (snapshot) => snapshot.state === "open");
  for (const isolate of ["q2", "r2"]) {
    expect((await sync(isolate, dep, permits)).coordination).toMatchObject({ local: "open", held: true });
  }

  await Bun.sleep(4_100);
  const asked = await Promise.all(["p2", "q2", "r2"].map((isolate) => sync(isolate, dep, permits)));
  const granted = asked.filter((view) => view.coordination?.permit).map((view) => view.isolate);
  expect(granted).toHaveLength(2);
  expect((await coordinator(dep)).permits.map((permit) => permit.isolate).sort()).toEqual(
    [...granted].sort(),
  );
  const refused = ["p2", "q2", "r2"].find((isolate) => !granted.includes(isolate)) as string;
  expect((await call(refused, dep, "ok", permits)).result).toBe("breaker.open");

  // The first probe fails: the shared breaker reopens, and the other permit holder is held open again.
  const [first, second] = granted as [string, string];
  expect(await call(first, dep, "fail", permits)).toMatchObject({ result: "failed", state: "open" });
  const reopened = await until(dep, (snapshot) => snapshot.state === "open" && snapshot.generation === 2);
  expect(reopened).toMatchObject({ reason: "probe-failed", permits: [] });
  expect((await sync(second, dep, permits)).coordination).toMatchObject({ local: "open", permit: false });
  expect((await call(second, dep, "ok", permits)).result).toBe("breaker.open");
}, 60_000);
