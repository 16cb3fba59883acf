// The OTLP metrics pusher: when a push is due, that pushes never overlap, and how a refusal is reported.
import { describe, expect, test } from "bun:test";
import { createLogger } from "../log/index.ts";
import { otlpKeyValues } from "../otlp-env.ts";
import { OtlpMetricsPusher, type PostFetch } from "./otlp-push.ts";
import { MetricsRegistry } from "./registry.ts";

const config = {
  url: "http://127.0.0.1:1/v1/metrics",
  headers: { authorization: "Bearer k" },
  intervalMs: 1_000,
  timeoutMs: 1_000,
  resource: { "service.name": "t" },
};

function setup(answer: () => Promise<Response>) {
  const registry = new MetricsRegistry();
  registry.counter({ name: "demo_total", help: "h" }).inc();
  const lines: string[] = [];
  const posts: RequestInit[] = [];
  const post: PostFetch = async (_url, init) => {
    posts.push(init);
    return answer();
  };
  const logger = createLogger({ sink: (line) => lines.push(line) });
  return { pusher: new OtlpMetricsPusher(registry, config, logger, post), posts, lines };
}

describe("OtlpMetricsPusher", () => {
  test("the first push is due at once, the next one an interval after it", async () => {
    const { pusher, posts } = setup(async () => new Response("{}"));
    const now = Date.now();
    expect(await pusher.pushIfDue(now)).toBe(true);
    expect(pusher.pushIfDue(now + 500)).toBeUndefined();
    expect(await pusher.pushIfDue(now + 1_000 + 50)).toBe(true);
    expect(posts).toHaveLength(2);
    expect((posts[0]?.headers as Record<string, string> | undefined)?.authorization).toBe("Bearer k");
  });

  test("a push asked for while one runs shares it", async () => {
    let release: () => void = () => {};
    const { pusher, posts } = setup(
      () => new Promise((resolve) => (release = () => resolve(new Response("{}")))),
    );
    const first = pusher.push();
    const second = pusher.push();
    await Bun.sleep(5);
    release();
    expect(await Promise.all([first, second])).toEqual([true, true]);
    expect(posts).toHaveLength(1);
  });

  test("a refused push resolves false and is logged once per outage, without the headers", async () => {
    let status = 503;
    const { pusher, lines } = setup(async () => new Response("no", { status }));
    expect(await pusher.push()).toBe(false);
    expect(await pusher.push()).toBe(false);
    expect(lines.filter((line) => line.includes("metrics export failed"))).toHaveLength(1);
    status = 200;
    expect(await pusher.push()).toBe(true);
    expect(lines.some((line) => line.includes("takes exports again"))).toBe(true);
    expect(lines.some((line) => line.includes("Bearer k"))).toBe(false);
  });
});

describe("otlpKeyValues", () => {
  test("header names are HTTP tokens, lowercased; values are percent-decoded", () => {
    expect(otlpKeyValues("V", "Authorization=Bearer%20a, X-Team = core", { headers: true })).toEqual({
      authorization: "Bearer a",
      "x-team": "core",
    });
    expect(() => otlpKeyValues("V", "bad name=x", { headers: true })).toThrow("V: entry 1 is not key=value");
    expect(otlpKeyValues("V", "deployment.environment=prod")).toEqual({ "deployment.environment": "prod" });
  });
});
