// One delivery attempt: the signed HTTP request to the destination, and what its answer means.
import type { FetchLike } from "./config.ts";
import { nextAttemptAt } from "../../../actors/queue/retry-policy.ts";
import type { Signer } from "./signing.ts";
import type { MessageRow, Outcome } from "./types.ts";

export interface DeliverContext {
  fetch: FetchLike;
  sign: Signer;
  timeScale: number;
}

const MAX_KEPT_BODY = 64 * 1024;

async function readSome(response: Response): Promise<Uint8Array> {
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < MAX_KEPT_BODY) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, MAX_KEPT_BODY);
}

function errorText(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === "TimeoutError" || error.name === "AbortError") return "timeout: no response in time";
    return error.message || error.name;
  }
  return String(error);
}

/**
 * The signed request of one attempt. It may throw (a header value fetch refuses, stored by an earlier version):
 * deliverOnce counts that as a failed attempt, so the message is retried and dead-lettered, not left active.
 */
async function attempt(message: MessageRow, ctx: DeliverContext): Promise<RequestInit> {
  const body = new Uint8Array(message.body);
  const headers = new Headers(message.headers);
  headers.set("upstash-message-id", message.id);
  headers.set("upstash-retried", String(message.attempts - 1));
  headers.set("user-agent", "Upstash-QStash");
  if (message.queue_name) headers.set("upstash-queue-name", message.queue_name);
  const withBody = message.method !== "GET" && message.method !== "HEAD";
  // As on the wire: a receiver can check the size from the header instead of counting the stream (Hono's
  // bodyLimit reads and re-wraps a body without one, which cost a twentieth of an in-process delivery).
  if (withBody) headers.set("content-length", String(body.byteLength));
  // The body claim covers what is sent: nothing, for GET and HEAD, whatever the message holds.
  headers.set("upstash-signature", await ctx.sign(message.url, withBody ? body : new Uint8Array(0)));
  return {
    method: message.method,
    headers,
    ...(withBody ? { body } : {}),
    redirect: "manual",
    signal: AbortSignal.timeout(message.timeout_ms),
  };
}

/** Delivers once. Never throws: every result, network errors included, becomes an Outcome. */
export async function deliverOnce(message: MessageRow, ctx: DeliverContext): Promise<Outcome> {
  let response: Response;
  try {
    response = await ctx.fetch(message.url, await attempt(message, ctx));
  } catch (error) {
    return failure(message, null, errorText(error), null, ctx);
  }
  const status = response.status;
  if (status >= 200 && status < 300) {
    // A success's body is never kept: release it without reading it.
    await response.body?.cancel().catch(() => {});
    return { kind: "delivered", message, status };
  }
  const responseBody = await readSome(response).catch(() => new Uint8Array(0));
  const error = `destination answered ${status}`;
  if (status === 489 && response.headers.get("upstash-nonretryable-error")?.toLowerCase() === "true") {
    return {
      kind: "failed",
      message,
      status,
      error: `${error} (Upstash-NonRetryable-Error)`,
      responseHeaders: Object.fromEntries(response.headers),
      responseBody,
    };
  }
  return failure(message, status, error, { response, responseBody }, ctx);
}

function failure(
  message: MessageRow,
  status: number | null,
  error: string,
  answer: { response: Response; responseBody: Uint8Array } | null,
  ctx: DeliverContext,
): Outcome {
  const retried = message.attempts - 1;
  if (retried < message.max_retries) {
    const now = Date.now();
    const dueAt = nextAttemptAt(
      retried + 1,
      answer?.response.headers.get("retry-after") ?? null,
      now,
      ctx.timeScale,
    );
    return { kind: "retry", message, status, error, dueAt };
  }
  return {
    kind: "failed",
    message,
    status,
    error: `${error}; gave up after ${retried} ${retried === 1 ? "retry" : "retries"}`,
    responseHeaders: answer ? Object.fromEntries(answer.response.headers) : null,
    responseBody: answer?.responseBody ?? null,
  };
}
