// The signed delivery endpoint: the broker pushes a message here; it reaches the actor's inbox, and 2xx means committed.
import { Receiver } from "@upstash/qstash";
import { type Context, Hono } from "hono";
import type { Envelope } from "../../shared/envelope/index.ts";
import { backoffMs } from "../../actors/queue/retry-policy.ts";
import { publishedAtHeader } from "../../actors/queue/qstash-transport.ts";
import { EdgewiseError, problemContentType, toEdgewiseError, toProblem } from "../../shared/errors/index.ts";
import { errorFields, type Logger, traceIdFromTraceparent } from "../../shared/telemetry/log/index.ts";
import {
  activeContext,
  ageMs,
  contextFromTraceparent,
  creationLink,
  droppedSpan,
  inSpan,
  hasSpan,
  sampledOut,
  SpanKind,
  SpanStatusCode,
  trace,
  tracer,
  withContext,
} from "../../shared/telemetry/trace/index.ts";
import { keepWrite } from "../../shared/telemetry/trace/sampling.ts";
import type { GatewayEnv } from "../env.ts";
import { type ActorHost, formatAddress } from "../../actors/runtime/index.ts";

export interface DeliveryOptions {
  actors: ActorHost;
  currentSigningKey: string;
  nextSigningKey: string;
  /**
   * The public base URL the broker was told to deliver to; the signature covers the full URL. A function
   * when it is known only later (a node learns it once its port is bound).
   */
  publicUrl: string | (() => string);
  /** Accepted clock skew when checking the signature's `nbf`/`exp`, in seconds. */
  clockToleranceSeconds?: number;
  /** Observes each delivery once answered (metrics). Must not throw. */
  onDelivery?: (record: DeliveryRecord) => void;
  /**
   * Where a failed delivery is logged when the request has no logger of its own (`c.var.log`, set by the request-id
   * middleware): a delivery handed in process by an embedded broker skips the gateway's middleware.
   */
  logger?: Logger;
  /** Told of each delivery refused for its signature (security events). Must return at once and not throw. */
  onSignatureFailure?: (
    failure: { target: string; reason: "missing" | "invalid" },
    c: Context<GatewayEnv>,
  ) => void;
}

export interface DeliveryRecord {
  /**
   * The target actor type from the URL, once the signature verified; `_unverified` before, so an unsigned
   * caller cannot mint label values.
   */
  targetType: string;
  status: number;
  /** `processed`, `duplicate`, `rejected` (489: dead-lettered at once), `unauthorized`, `failed` (retried). */
  outcome: "processed" | "duplicate" | "rejected" | "unauthorized" | "failed";
  /** `Upstash-Retried`: earlier attempts of this message (0 on the first). */
  retried: number;
  durationMs: number;
}

/** Errors that will fail the same way on every retry: the broker should dead-letter them at once. */
const poison = new Set([
  "envelope.invalid",
  "message.invalid",
  "message.unknown_type",
  "actor.unknown_type",
  "actor.invalid_key",
  "state.invalid",
  "state.migration_failed",
  // A webhook URL the SSRF guard refuses (private, loopback, bad scheme) stays refused on every attempt.
  "webhooks.target_refused",
]);

export function deliveryRoutes(options: DeliveryOptions): Hono<GatewayEnv> {
  const receiver = new Receiver({
    currentSigningKey: options.currentSigningKey,
    nextSigningKey: options.nextSigningKey,
    // Left unset, the SDK reads QSTASH_DEV from the environment and, when it is on, verifies with `qstash dev`'s
    // public keys instead of these: a stray variable would let anyone sign a delivery.
    devMode: false,
  });
  const app = new Hono<GatewayEnv>();

  const { onDelivery } = options;
  app.post("/_edgewise/deliver/:type/:key", async (c) => {
    const started = onDelivery ? performance.now() : 0;
    // The trace the delivery belongs to, for its log lines: no span is active here (a delivery gets no SERVER span,
    // and one handed in process none of the gateway's middleware), so the envelope's and the delivery span's ids.
    const traced: DeliveryTrace = {};
    const answer = (response: Response, outcome: DeliveryRecord["outcome"], verified: boolean): Response => {
      // The access line is written after this route returns, outside the delivery's span: it names the same trace.
      if (verified && c.var.log?.isEnabled("info")) c.set("log", c.var.log.child(traceFields(traced)));
      onDelivery?.({
        targetType: verified ? c.req.param("type") : "_unverified",
        status: response.status,
        outcome,
        retried: Number(c.req.header("upstash-retried")) || 0,
        durationMs: performance.now() - started,
      });
      return response;
    };
    const body = await c.req.text();
    const signature = c.req.header("upstash-signature");
    const base = typeof options.publicUrl === "function" ? options.publicUrl() : options.publicUrl;
    const url = `${base.replace(/\/+$/, "")}${new URL(c.req.url).pathname}`;
    const verified =
      signature !== undefined &&
      (await receiver
        .verify({ signature, body, url, clockTolerance: options.clockToleranceSeconds ?? 5 })
        .catch(() => false));
    if (!verified) {
      options.onSignatureFailure?.(
        {
          target: `${c.req.param("type")}/${c.req.param("key")}`,
          reason: signature === undefined ? "missing" : "invalid",
        },
        c,
      );
      return answer(
        problem(c.req.path, new EdgewiseError("unauthorized", "missing or invalid Upstash-Signature")),
        "unauthorized",
        false,
      );
    }
    let messageId: unknown;
    try {
      const envelope = JSON.parse(body) as Envelope;
      messageId = envelope?.id;
      // Parsed only if the delivery fails: the hot path keeps just a reference.
      if (typeof envelope?.traceparent === "string") traced.traceparent = envelope.traceparent;
      const address = { type: c.req.param("type"), key: c.req.param("key") };
      if (typeof envelope !== "object" || envelope === null || envelope.target !== formatAddress(address)) {
        throw new EdgewiseError("envelope.invalid", "the envelope's target does not match the delivery URL");
      }
      // `receive` validates the envelope (once) and refuses a bad one with envelope.invalid, hence 489.
      const outcome = await processTraced(
        envelope,
        Number(c.req.header("upstash-retried")) || 0,
        c.req.header(publishedAtHeader),
        () => options.actors.receive(envelope),
        traced,
      );
      return answer(
        c.json({ duplicate: outcome.duplicate }),
        outcome.duplicate ? "duplicate" : "processed",
        true,
      );
    } catch (thrown) {
      const error =
        thrown instanceof SyntaxError
          ? new EdgewiseError("envelope.invalid", "body is not JSON")
          : toEdgewiseError(thrown);
      // Signed, so the address and id are the broker's: safe to log. Retried (5xx) or dead-lettered (489).
      (c.var.log ?? options.logger)?.warn("delivery failed", {
        actor: `${c.req.param("type")}/${c.req.param("key")}`,
        message_id: typeof messageId === "string" ? messageId : undefined,
        // The broker's own id (`msg_…`), which its events API and dead-letter queue are keyed by.
        broker_message_id: c.req.header("upstash-message-id"),
        ...traceFields(traced),
        retried: Number(c.req.header("upstash-retried")) || 0,
        error: errorFields(thrown),
      });
      if (poison.has(String(error.code))) {
        return answer(
          problem(c.req.path, error, 489, { "Upstash-NonRetryable-Error": "true" }),
          "rejected",
          true,
        );
      }
      // Anything else may pass: a 5xx makes the broker retry with backoff, or later when a consumer was told to
      // wait longer (a webhook receiver's Retry-After), which the broker honours as QStash does.
      const retried = Number(c.req.header("upstash-retried")) || 0;
      const wait = longerThanBackoff(error.meta?.retryAfterSeconds, retried);
      const retryAfter = wait === undefined ? undefined : { "Retry-After": String(wait) };
      return answer(
        problem(c.req.path, error, error.status >= 500 ? error.status : 503, retryAfter),
        "failed",
        true,
      );
    }
  });
  return app;
}

function problem(
  path: string,
  error: unknown,
  status?: number,
  headers: Record<string, string> = {},
): Response {
  const body = toProblem(error, path);
  if (status !== undefined) body.status = status;
  return new Response(JSON.stringify(body), {
    status: body.status,
    headers: { "content-type": problemContentType, ...headers },
  });
}

/** The ids a failed delivery's log line names: its trace, and its CONSUMER span when one was recorded. */
interface DeliveryTrace {
  /** The envelope's, until a span of this delivery (recorded or dropped) names its own trace. */
  traceparent?: string;
  traceId?: string;
  spanId?: string;
}

function traceFields(traced: DeliveryTrace): { trace_id?: string; span_id?: string } {
  const traceId = traced.traceId ?? traceIdFromTraceparent(traced.traceparent);
  if (!traceId) return {};
  return traced.spanId ? { trace_id: traceId, span_id: traced.spanId } : { trace_id: traceId };
}

/**
 * The CONSUMER span of one delivery (OTel messaging "process"): a child of the context the envelope carries (the
 * PRODUCER span that created the message), so the trace continues across the queue, and linked to it.
 */
async function processTraced<T extends { duplicate: boolean }>(
  envelope: Envelope,
  retried: number,
  publishedAt: string | undefined,
  work: () => Promise<T>,
  traced: DeliveryTrace,
): Promise<T> {
  const parent = contextFromTraceparent(
    typeof envelope.traceparent === "string" ? envelope.traceparent : undefined,
    typeof envelope.tracestate === "string" ? envelope.tracestate : undefined,
    activeContext(),
  );
  // A message from a trace its first span dropped (the sampled flag off) records nothing here either; the turn it
  // reaches finds the same context in the envelope and follows it. No SDK span is made for it.
  if (sampledOut(parent)) return await work();
  // A message that carries no trace (one published from outside Edgewise) starts one here, as a write: the policy
  // for writes decides. A dropped one runs under an unsampled context, which its turn and the messages that turn
  // sends follow.
  if (!hasSpan(parent) && !keepWrite()) {
    const dropped = droppedSpan();
    traced.traceId = dropped.spanContext().traceId;
    return await withContext(trace.setSpan(parent, dropped), work);
  }
  const link = creationLink({
    ...(typeof envelope.traceparent === "string" ? { traceparent: envelope.traceparent } : {}),
  });
  const span = tracer().startSpan(
    `process ${String(envelope.type)}`,
    { kind: SpanKind.CONSUMER, ...(link ? { links: [link] } : {}) },
    parent,
  );
  if (!span.isRecording()) return await work();
  traced.traceId = span.spanContext().traceId;
  traced.spanId = span.spanContext().spanId;
  const queueMs = typeof envelope.time === "string" ? ageMs(envelope.time) : undefined;
  span.setAttributes({
    "messaging.system": "edgewise",
    "messaging.operation.type": "process",
    "messaging.message.id": String(envelope.id),
    "messaging.destination.name": String(envelope.target),
    "edgewise.message.type": String(envelope.type),
    "edgewise.delivery.retried": retried,
    ...(queueMs !== undefined ? { "edgewise.queue_time_ms": queueMs } : {}),
    ...brokerWait(publishedAt),
  });
  return await inSpan(parent, span, work, (outcome) => {
    span.setAttribute("edgewise.delivery.duplicate", outcome.duplicate);
    span.setStatus({ code: SpanStatusCode.OK });
  });
}

/**
 * How long the message waited in the broker, from the relay's publish (`publishedAtHeader`) to this attempt: its
 * retries' backoffs included. The rest of `edgewise.queue_time_ms`, from the commit, is the relay's lag. Another
 * machine's clock, as the envelope's `time` is: a skew shows as a negative or too long wait, kept as measured.
 */
function brokerWait(publishedAt: string | undefined): { "edgewise.broker_wait_ms"?: number } {
  if (publishedAt === undefined || !/^\d{1,15}$/.test(publishedAt)) return {};
  return { "edgewise.broker_wait_ms": Date.now() - Number(publishedAt) };
}

/**
 * A wait to answer as Retry-After: only one longer than the broker's next backoff. A Retry-After replaces the
 * backoff, so a shorter one (a breaker's "retry in 1 s", a receiver's "1") would spend a message's few retries
 * within seconds and dead-letter it, where the backoff (12 s, 2.5 min, 30 min) rides out an outage.
 */
function longerThanBackoff(seconds: unknown, retried: number): number | undefined {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return undefined;
  return seconds * 1000 > backoffMs(retried + 1, 1) ? Math.ceil(seconds) : undefined;
}
