// The bench Worker: the example counter as a Durable Object, asked over HTTP or in a loop inside the Worker.
import { counterActor } from "../../../actors/examples/counter.ts";
import { DurableObjectHost, durableActor } from "../../../actors/hosts/cloudflare/index.ts";
import { actorClient } from "../../../actors/runtime/index.ts";

interface Env {
  COUNTER: DurableObjectNamespace;
}

export const Counter = durableActor<Env>(counterActor);

const counters = (env: Env) => actorClient(new DurableObjectHost({ counter: env.COUNTER }), counterActor);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** `turns` asks to one actor, `inFlight` at a time, timed inside the Worker (no HTTP hop per turn). */
async function loop(client: ReturnType<typeof counters>, key: string, turns: number, inFlight: number) {
  const latencies: number[] = [];
  let started = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (started < turns) {
      started++;
      const sent = performance.now();
      await client.ask(key, "Increment", { by: 1 });
      latencies.push(performance.now() - sent);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  // workerd advances its clocks only across I/O; every ask is I/O, so these are fine at this grain.
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    turns: latencies.length,
    seconds: Number(seconds.toFixed(3)),
    turnsPerSecond: Math.round(latencies.length / seconds),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

const json = (body: unknown) => Response.json(body);

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const [, route, key = ""] = url.pathname.split("/");
    const client = counters(env);
    switch (`${request.method} ${route}`) {
      case "GET healthz":
        return json({ status: "ok" });
      case "POST ask":
        return json(await client.ask(key, "Increment", { by: 1 }));
      case "GET count":
        return json(await client.ask(key, "Get", {}));
      case "POST loop": {
        const turns = Number(url.searchParams.get("turns") ?? 5_000);
        const inFlight = Number(url.searchParams.get("inFlight") ?? 32);
        return json(await loop(client, key, turns, inFlight));
      }
      default:
        return new Response("not found", { status: 404 });
    }
  },
} satisfies ExportedHandler<Env>;
