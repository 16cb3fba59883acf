// The signed delivery endpoint: the broker pushes a message here; it reaches the actor's inbox, and 2xx means committed.
import { Receiver } from "@upstash/qstash";
import { Hono } from "hono";
import type { Envelope } from "../../shared/envelope/index.ts";
import { EdgewiseError, problemContentType, toEdgewiseError, toProblem } from "../../shared/errors/index.ts";
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

export function deliveryRoutes(options: DeliveryOptions): Hono {
  const receiver = new Receiver({
    currentSigningKey: options.currentSigningKey,
    nextSigningKey: options.nextSigningKey,
  });
  const app = new Hono();

  app.post("/_edgewise/deliver/:type/:key", async (c) => {
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
      return problem(c.req.path, new EdgewiseError("unauthorized", "missing or invalid Upstash-Signature"));
    }
    try {
      const envelope = JSON.parse(body) as Envelope;
      const address = { type: c.req.param("type"), key: c.req.param("key") };
      if (typeof envelope !== "object" || envelope === null || envelope.target !== formatAddress(address)) {
        throw new EdgewiseError("envelope.invalid", "the envelope's target does not match the delivery URL");
      }
      // `receive` validates the envelope (once) and refuses a bad one with envelope.invalid, hence 489.
      const outcome = await options.actors.receive(envelope);
      return c.json({ duplicate: outcome.duplicate });
    } catch (thrown) {
      const error =
        thrown instanceof SyntaxError
          ? new EdgewiseError("envelope.invalid", "body is not JSON")
          : toEdgewiseError(thrown);
      if (poison.has(String(error.code))) {
        return problem(c.req.path, error, 489, { "Upstash-NonRetryable-Error": "true" });
      }
      // Anything else may pass: a 5xx makes the broker retry with backoff.
      return problem(c.req.path, error, error.status >= 500 ? error.status : 503);
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
