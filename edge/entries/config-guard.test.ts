// The Worker entry's guard, in process: what a request gets when the Worker's configuration is invalid.
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../shared/config/index.ts";
import { EdgewiseError, problemContentType } from "../../shared/errors/index.ts";
import { captureSink, createLogger } from "../../shared/telemetry/log/index.ts";
import { configGuard } from "./config-guard.ts";

const request = new Request("https://edgewise.example/v1/orders");

function guarded() {
  const capture = captureSink();
  const guard = configGuard(createLogger({ sink: capture.sink }));
  return { guard, logged: capture.lines };
}

describe("configGuard", () => {
  test("a bad variable: 500 problem+json naming it, never its value, logged once", async () => {
    const { guard, logged } = guarded();
    const secret = "too-short-secret";
    const handle = async () => {
      parseConfig({ JWT_SECRET: secret });
      return new Response("unreachable");
    };
    for (let i = 0; i < 3; i++) {
      const response = await guard.fetch(request, handle);
      expect(response.status).toBe(500);
      expect(response.headers.get("content-type")).toBe(problemContentType);
      const text = await response.text();
      expect(text).not.toContain(secret);
      expect(JSON.parse(text)).toMatchObject({
        code: "config.invalid",
        title: "Invalid configuration",
        detail: "Invalid configuration: JWT_SECRET: JWT_SECRET must be at least 32 characters",
        instance: "/v1/orders",
        errors: [{ path: "JWT_SECRET", message: "JWT_SECRET must be at least 32 characters" }],
      });
    }
    expect(logged).toHaveLength(1);
    expect(JSON.parse(logged[0] as string)).toMatchObject({
      level: "error",
      msg: "the Worker's configuration is invalid; requests get 500 until it is fixed",
      error: { code: "config.invalid" },
    });
    expect(JSON.stringify(logged)).not.toContain(secret);
  });

  test("a token-shaped value in a message is masked in the answer and the log", async () => {
    const { guard, logged } = guarded();
    const token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
    const response = await guard.fetch(request, async () => {
      throw new EdgewiseError("config.invalid", `OTEL_EXPORTER_OTLP_HEADERS: bad entry ${token}`);
    });
    const text = await response.text();
    expect(text).toContain("OTEL_EXPORTER_OTLP_HEADERS");
    expect(text).not.toContain(token);
    expect(JSON.stringify(logged)).not.toContain(token);
  });

  test("any other error is an internal problem, its message hidden", async () => {
    const { guard, logged } = guarded();
    const response = await guard.fetch(request, async () => {
      throw new Error("binding ORDER is undefined");
    });
    expect(response.status).toBe(500);
    expect(response.headers.get("content-type")).toBe(problemContentType);
    const problem = (await response.json()) as { code: string; detail: string };
    expect(problem.code).toBe("internal");
    expect(problem.detail).not.toContain("ORDER");
    expect(logged).toHaveLength(1);
  });

  test("a request that works is answered as it is", async () => {
    const { guard, logged } = guarded();
    const response = await guard.fetch(request, async () => new Response("ok"));
    expect(await response.text()).toBe("ok");
    expect(logged).toHaveLength(0);
  });

  test("a cron run: a config error is logged once and ends the run; any other error is thrown", async () => {
    const { guard, logged } = guarded();
    const invalid = async () => {
      throw new EdgewiseError("config.invalid", "QSTASH_URL is set but QSTASH_TOKEN is not");
    };
    await guard.run(invalid);
    await guard.run(invalid);
    expect(logged).toHaveLength(1);
    await expect(
      guard.run(async () => {
        throw new Error("Postgres refused");
      }),
    ).rejects.toThrow("Postgres refused");
  });
});
