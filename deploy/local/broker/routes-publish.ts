// HTTP routes that accept messages: /v2/publish, /v2/enqueue and /v2/batch.
import type { Batcher } from "./batcher.ts";
import type { ResolvedOptions } from "./config.ts";
import type { Sql } from "./db.ts";
import { HttpError, json, readBody } from "./http-util.ts";
import { buildMessage, destinationFrom, validDestination, validHeader, validQueueName } from "./ingest.ts";
import type { Accepted } from "./store-messages.ts";
import type { NewMessage } from "./types.ts";

export interface BrokerContext {
  sql: Sql;
  options: ResolvedOptions;
  /**
   * Stores messages durably (group-committed) and resolves after the commit; it also starts them or tells the
   * dispatcher about them (index.ts).
   */
  ingest: Batcher<NewMessage, Accepted>;
  /** Tells the dispatcher that messages may have become due (a DLQ retry, a queue resumed or widened). */
  wake: () => void;
  callerIp: (req: Request) => string | null;
}

const asResult = (a: Accepted) => (a.deduplicated ? a : { messageId: a.messageId, url: a.url });

/**
 * POST /v2/publish/{destination} (prefix `/v2/publish/`) and POST /v2/enqueue/{queue}/{destination}
 * (prefix `/v2/enqueue/{queue}/` as it appears in the raw URL).
 */
export async function publish(
  req: Request,
  ctx: BrokerContext,
  queueName: string | null,
  prefix: string,
): Promise<Response> {
  if (queueName !== null) validQueueName(queueName);
  const destination = destinationFrom(req.url, prefix);
  const body = await readBody(req, ctx.options.maxBodyBytes);
  const message = await buildMessage(
    { destination, headers: req.headers, body, queueName, callerIp: ctx.callerIp(req) },
    ctx.options,
  );
  const [accepted] = await ctx.ingest.submit([message]);
  if (!accepted) throw new HttpError(500, "message was not stored");
  return json(asResult(accepted), accepted.deduplicated ? 202 : 201);
}

interface BatchItem {
  destination?: unknown;
  headers?: unknown;
  body?: unknown;
  queue?: unknown;
}

/** POST /v2/batch: a JSON array of {destination, headers, body, queue?}; all stored, or none. */
export async function batch(req: Request, ctx: BrokerContext): Promise<Response> {
  const raw = await readBody(req, ctx.options.maxBatchBytes);
  let items: unknown;
  try {
    items = JSON.parse(new TextDecoder().decode(raw));
  } catch {
    throw new HttpError(400, "batch body must be a JSON array");
  }
  if (!Array.isArray(items) || items.length === 0)
    throw new HttpError(400, "batch body must be a non-empty array");
  const callerIp = ctx.callerIp(req);
  const encoder = new TextEncoder();
  const messages: NewMessage[] = [];
  for (const [index, item] of (items as BatchItem[]).entries()) {
    const at = (text: string) => new HttpError(400, `batch item ${index}: ${text}`);
    if (typeof item !== "object" || item === null) throw at("must be an object");
    if (typeof item.destination !== "string") throw at("destination must be a URL string");
    const headers = item.headers ?? {};
    if (typeof headers !== "object" || headers === null || Array.isArray(headers))
      throw at("headers must be an object");
    if (item.body !== undefined && item.body !== null && typeof item.body !== "string") {
      throw at("body must be a string");
    }
    const queueName = item.queue === undefined || item.queue === null ? null : String(item.queue);
    try {
      // A header value is text; a number is taken as its digits, anything else (an object, null) is refused
      // rather than sent as "[object Object]".
      const pairs = Object.entries(headers).map(([k, v]) => {
        if (typeof v !== "string" && !(typeof v === "number" && Number.isFinite(v)))
          throw new HttpError(400, `header ${JSON.stringify(k)} must be a string`);
        return validHeader(k, String(v));
      });
      messages.push(
        await buildMessage(
          {
            destination: validDestination(item.destination),
            headers: pairs,
            body: encoder.encode((item.body as string | undefined) ?? ""),
            queueName: queueName === null ? null : validQueueName(queueName),
            callerIp,
          },
          ctx.options,
        ),
      );
    } catch (error) {
      if (error instanceof HttpError)
        throw new HttpError(error.status, `batch item ${index}: ${error.message}`);
      throw error;
    }
  }
  const accepted = await ctx.ingest.submit(messages);
  return json(accepted.map(asResult), 201);
}
