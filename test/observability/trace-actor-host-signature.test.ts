// An actor host records a request's spans only once its signature passed: an outsider's sampled traceparent adds none.
import { afterAll, beforeAll, expect, test } from "bun:test";
import {
  actorHostPaths,
  actorHostPingPath,
  signatureHeaders,
  signedMessage,
} from "../../actors/hosts/remote/protocol.ts";
import { hmacSigner } from "../../shared/crypto/hmac.ts";
import { captureSink, createLogger } from "../../shared/telemetry/log/index.ts";
import { sampleWrites, writeSampling } from "../../shared/telemetry/trace/sampling.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { hex } from "./saga-trace.ts";

const secret = crypto.randomUUID() + crypto.randomUUID();
const capture = captureSink();
let actorHost: CommerceNode;
const policy = writeSampling();
beforeAll(async () => {
  actorHost = await startCommerceNode(
    "trace_actor_host_sig",
    { ACTOR_HOST_SECRET: secret },
    { logger: createLogger({ level: "debug", sink: capture.sink }) },
  );
}, 30_000);
afterAll(async () => {
  sampleWrites(policy);
  await actorHost?.stop();
});

const post = async (path: string, headers: Record<string, string>, body = "{}") => {
  const response = await fetch(`${actorHost.node.url}${path}`, { method: "POST", body, headers });
  await response.arrayBuffer();
  return response.status;
};
const signed = async (path: string, body = "{}") => {
  const timestamp = String(Date.now());
  return {
    [signatureHeaders.timestamp]: timestamp,
    [signatureHeaders.signature]: await hmacSigner(secret).sign(signedMessage(path, timestamp, body)),
  };
};
const accessLine = (traceId: string) =>
  capture.records().find((line) => line.msg === "request" && line.trace_id === traceId);

test("an unsigned request with a sampled traceparent leaves no span; a signed one continues the caller's trace", async () => {
  const tracing = actorHost.node.tracing;
  if (!tracing) throw new Error("tracing is off");
  // Every write that starts a trace is recorded, so only the signature check can keep the refused ones out.
  sampleWrites({ ratio: 1 });
  const refused: string[] = [];
  for (const path of [actorHostPingPath, actorHostPaths.ask, actorHostPaths.receive]) {
    const traceId = hex(16);
    refused.push(traceId);
    // Unsigned, and signed with another secret: both refused before any span starts.
    expect(await post(path, { traceparent: `00-${traceId}-${hex(8)}-01` })).toBe(401);
    const forged = { ...(await signed(path)), [signatureHeaders.signature]: "0".repeat(64) };
    expect(await post(path, { ...forged, traceparent: `00-${traceId}-${hex(8)}-01` })).toBe(401);
  }
  const before = tracing.store.count();
  // Nor does a refused request that starts a trace of its own, which the policy would record.
  expect(await post(actorHostPingPath, {})).toBe(401);

  const traceId = hex(16);
  const callerSpanId = hex(8);
  expect(
    await post(actorHostPingPath, {
      ...(await signed(actorHostPingPath)),
      traceparent: `00-${traceId}-${callerSpanId}-01`,
    }),
  ).toBe(200);
  await tracing.flush();

  expect(refused.filter((id) => tracing.store.trace(id).length > 0)).toEqual([]);
  const spans = tracing.store.trace(traceId);
  expect(spans.map((span) => [span.kind, span.attributes["http.route"], span.parentSpanId])).toEqual([
    ["SERVER", actorHostPingPath, callerSpanId],
  ]);
  // The signed ping's span is the only one added since the refused requests.
  expect(tracing.store.count()).toBe(before + 1);
  // A refused request is still logged, under the caller's trace id; a signed one (at debug) under its span.
  expect(accessLine(refused[0] as string)).toMatchObject({ status: 401, route: actorHostPingPath });
  expect(accessLine(traceId)).toMatchObject({ status: 200, span_id: spans[0]?.spanId });
}, 60_000);
