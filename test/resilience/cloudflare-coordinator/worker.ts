// The breaker-coordinator Worker (tests only): several simulated isolates, each its own CoordinatedDependencies
// (its own local breakers), sharing one BreakerCoordinator object per dependency, as real isolates would.
import { BreakerCoordinator, coordinatorPort } from "../../../actors/hosts/cloudflare/breaker-coordinator.ts";
import { CoordinatedDependencies } from "../../../actors/hosts/cloudflare/coordinated-dependencies.ts";
import { isBreakerOpen } from "../../../shared/resilience/index.ts";

export { BreakerCoordinator };

interface Env {
  BREAKERS: DurableObjectNamespace<BreakerCoordinator>;
}

interface Isolate {
  dependencies: CoordinatedDependencies;
  /** How often the dependency itself was called (a call the breaker refused never gets here). */
  invoked: number;
}

// Filled per request, never at module scope (workerd allows no I/O there). wrangler dev runs one isolate, so
// two entries of this map are what two isolates would be: separate memory, one coordinator.
const isolates = new Map<string, Isolate>();

function isolateFor(env: Env, id: string, permits: number): Isolate {
  let isolate = isolates.get(id);
  if (!isolate) {
    isolate = {
      invoked: 0,
      dependencies: new CoordinatedDependencies({
        coordinator: coordinatorPort(env.BREAKERS),
        isolate: id,
        // Trips on 3 failures in a row; the shared breaker reopens after 4 s, time enough for the test's steps in
        // the open state (a few requests through wrangler) on a loaded machine.
        policies: { db: { timeoutMs: 2_000, breaker: { consecutiveFailures: 3, resetTimeoutMs: 4_000 } } },
        // Syncs only on transitions and on /sync (no interval sync mid-test), holds never lapse, leases last.
        coordination: {
          syncIntervalMs: 600_000,
          syncTimeoutMs: 5_000,
          graceMs: 600_000,
          probePermits: permits,
          probeLeaseMs: 600_000,
        },
      }),
    };
    isolates.set(id, isolate);
  }
  return isolate;
}

export default {
  async fetch(request, env, ctx): Promise<Response> {
    const url = new URL(request.url);
    const dependency = url.searchParams.get("dep") ?? "db";
    if (url.pathname === "/coordinator") {
      const inspect = coordinatorPort(env.BREAKERS).inspect;
      return Response.json(await inspect?.(dependency));
    }
    const id = url.searchParams.get("isolate") ?? "a";
    const isolate = isolateFor(env, id, Number(url.searchParams.get("permits") ?? "1"));
    const { dependencies } = isolate;
    const view = () => ({
      isolate: id,
      state: dependencies.state(dependency),
      invoked: isolate.invoked,
      coordination: dependencies.status().find((status) => status.name === dependency),
    });
    // As the production Worker does: tick at the start and end of each request, syncs run in waitUntil.
    const waitUntil = (promise: Promise<unknown>) => ctx.waitUntil(promise);
    dependencies.tick(waitUntil);
    try {
      if (url.pathname === "/call") {
        const fail = url.searchParams.get("outcome") === "fail";
        let result: string;
        try {
          await dependencies.call(dependency, async () => {
            isolate.invoked += 1;
            if (fail) throw new Error("dependency down (test)");
          });
          result = "ok";
        } catch (error) {
          result = isBreakerOpen(error) ? "breaker.open" : "failed";
        }
        return Response.json({ result, ...view() });
      }
      if (url.pathname === "/sync") {
        await dependencies.syncNow([dependency]);
        return Response.json(view());
      }
      if (url.pathname === "/state") return Response.json(view());
      return new Response("not found", { status: 404 });
    } finally {
      dependencies.tick(waitUntil);
    }
  },
} satisfies ExportedHandler<Env>;
