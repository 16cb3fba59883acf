// The broker's operational log (stderr of `npm run broker`) never carries a destination's credentials.
import { expect, test } from "bun:test";
import { Modes } from "../chaos/fault-proxy.ts";
import { useBrokerBehindProxy } from "./behind-proxy.ts";
import { call, waitFor } from "./helpers.ts";

const lines: string[] = [];
const fixture = useBrokerBehindProxy("log", (line) => lines.push(line));

test("a publish that fails on Postgres is a retryable 503, logged without the destination's password or a token in its path", async () => {
  // A destination may carry its receiver's credentials (QStash takes any URL); a failed publish logs its path.
  const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJob29rIn0.c2lnbmF0dXJlLW9mLXRoZS1ob29r";
  const destinations = [`http://hook:PLANTEDpw@127.0.0.1:1/in`, `https://hooks.example/in/${jwt}`];
  await Bun.sleep(300); // not in the same instant as a query's answer (see health.test.ts)
  fixture.proxy.setMode(Modes.reset);
  for (const destination of destinations) {
    const answer = await call(fixture.broker, `/v2/publish/${destination}`, { method: "POST", body: "{}" });
    // Postgres unreachable is an outage a QStash client retries, not the broker's bug.
    expect(answer).toEqual({ status: 503, body: { error: "Postgres is unavailable; retry" } });
  }
  const raw = await fetch(`${fixture.broker.url}/v2/publish/${destinations[0]}`, {
    method: "POST",
    body: "{}",
    headers: { authorization: `Bearer ${fixture.broker.token}` },
  });
  expect(raw.status).toBe(503);
  expect(raw.headers.get("retry-after")).toBe("1");
  await waitFor(() => lines.filter((line) => line.startsWith("request POST")).length >= 2, 5000, "logged");
  const logged = lines.join("\n");
  expect(logged).toContain("request POST /v2/publish/http://hook:[redacted]@127.0.0.1:1/in");
  expect(logged).not.toContain("PLANTED");
  expect(logged).not.toContain(jwt.split(".")[2] as string);
  fixture.proxy.setMode(Modes.pass);
  // Postgres back: the same publish is accepted.
  await waitFor(
    async () =>
      (await call(fixture.broker, `/v2/publish/${destinations[0]}`, { method: "POST", body: "{}" }))
        .status === 201,
    10_000,
    "accepted once Postgres is back",
  );
}, 30_000);
