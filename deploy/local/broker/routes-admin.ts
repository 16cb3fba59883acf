// HTTP routes that read and manage state: messages, dead letters, queues, events and signing keys.
import { countParam, empty, HttpError, intParam, json, listParam, readBody } from "./http-util.ts";
import { newMessageId, validQueueName } from "./ingest.ts";
import { renderDlq, renderEvent, renderMessage } from "./render.ts";
import type { BrokerContext } from "./routes-publish.ts";
import { type DlqFilter, deleteDlq, getDlq, listDlq, retryDlq } from "./store-dlq.ts";
import { type EventFilter, listEvents, parseEventCursor } from "./store-events.ts";
import { type CancelFilter, cancelMessages, getMessage } from "./store-messages.ts";
import { deleteQueue, listQueues, setPaused, upsertQueue } from "./store-queues.ts";

/** Filters QStash has and this broker does not: refused with 400, never ignored. */
const UNSUPPORTED = ["label", "flowControlKey", "scheduleId", "topicName", "urlGroup", "host", "path"];
/** QStash's name for the publisher's IP, and its deprecated spelling. */
const CALLER_IP = ["callerIp", "callerIP"];

function refuseUnsupported(url: URL, also: readonly string[] = []): void {
  for (const name of [...UNSUPPORTED, ...also]) {
    if (url.searchParams.has(name))
      throw new HttpError(400, `filter ${name} is not supported by this broker`);
  }
}

/** Query parameters of the bulk cancel, and of the DLQ's bulk delete and retry. */
const CANCEL_PARAMS = [
  "messageIds",
  "url",
  "queueName",
  "fromDate",
  "toDate",
  ...CALLER_IP,
  "count",
  "cursor",
];
const DLQ_PARAMS = [
  "dlqIds",
  "dlqId",
  "messageId",
  "messageIds",
  "url",
  "queueName",
  "responseStatus",
  "fromDate",
  "toDate",
  ...CALLER_IP,
  "order",
  "count",
  "cursor",
];

/**
 * For an action on every message a filter selects: a parameter it does not know, or a filter given empty
 * (`messageIds=`), is a 400. Ignored, either would widen the action, up to every message.
 */
function refuseUnknown(url: URL, known: readonly string[]): void {
  for (const [name, value] of url.searchParams) {
    if (name === "qstash_token") continue;
    if (!known.includes(name) && !UNSUPPORTED.includes(name))
      throw new HttpError(400, `unknown filter ${name}`);
    if (value.split(",").every((v) => v.trim() === "")) throw new HttpError(400, `filter ${name} is empty`);
  }
}

const callerIps = (url: URL) => listParam(url, "callerIp") ?? listParam(url, "callerIP");

const cursorOf = (url: URL) => intParam(url, "cursor");
const renderCursor = (cursor: number | undefined) => (cursor === undefined ? {} : { cursor: String(cursor) });

/** The filters the DLQ and the event log share: destination URL, queue and time range. */
function withRangeFilters<
  F extends { urls?: string[]; queueNames?: string[]; fromDate?: number; toDate?: number },
>(url: URL, f: F): F {
  const urls = listParam(url, "url", false);
  if (urls) f.urls = urls;
  const queueNames = listParam(url, "queueName");
  if (queueNames) f.queueNames = queueNames;
  const fromDate = intParam(url, "fromDate");
  if (fromDate !== undefined) f.fromDate = fromDate;
  const toDate = intParam(url, "toDate");
  if (toDate !== undefined) f.toDate = toDate;
  return f;
}

/** The DLQ's filters: the shared ones, and its numeric cursor. */
function withListFilters<F extends Parameters<typeof withRangeFilters>[1] & { cursor?: number }>(
  url: URL,
  f: F,
): F {
  withRangeFilters(url, f);
  const cursor = cursorOf(url);
  if (cursor !== undefined) f.cursor = cursor;
  return f;
}

function dlqFilter(url: URL): DlqFilter {
  refuseUnsupported(url);
  const ips = callerIps(url);
  const statuses = listParam(url, "responseStatus")?.map(Number);
  // An HTTP status: the column is an int, which refuses (as a 500) anything past 2^31.
  if (statuses?.some((s) => !Number.isInteger(s) || s < 0 || s > 999))
    throw new HttpError(400, "responseStatus must be an HTTP status, an integer from 0 to 999");
  const messageIds = listParam(url, "messageId") ?? listParam(url, "messageIds");
  const f: DlqFilter = {
    count: countParam(url, 100, 100),
    latestFirst: url.searchParams.get("order") === "latestFirst",
  };
  const dlqIds = listParam(url, "dlqIds") ?? listParam(url, "dlqId");
  if (dlqIds) f.dlqIds = dlqIds;
  if (messageIds) f.messageIds = messageIds;
  if (statuses) f.responseStatuses = statuses;
  if (ips) f.callerIps = ips;
  return withListFilters(url, f);
}

const notFound = (what: string) => new HttpError(404, `${what} not found`);

export async function messagesRoute(
  req: Request,
  url: URL,
  ctx: BrokerContext,
  id?: string,
): Promise<Response> {
  if (id !== undefined && req.method === "GET") {
    const row = await getMessage(ctx.sql, id);
    if (!row) throw notFound("message");
    return json(renderMessage(row));
  }
  if (req.method !== "DELETE") throw new HttpError(405, "method not allowed");
  if (id !== undefined) {
    const cancelled = await cancelMessages(ctx.sql, { messageIds: [id] });
    if (cancelled === 0) throw notFound("message");
    return json({ cancelled });
  }
  refuseUnknown(url, CANCEL_PARAMS);
  // As in QStash: message ids select alone, other filters are ignored. `count` is accepted and, as QStash now
  // does (the SDK's doc), ignored: every matching message is cancelled.
  const messageIds = listParam(url, "messageIds");
  if (messageIds) return json({ cancelled: await cancelMessages(ctx.sql, { messageIds }) });
  refuseUnsupported(url);
  intParam(url, "count");
  const ips = callerIps(url);
  const filter = withRangeFilters<CancelFilter>(url, ips ? { callerIps: ips } : {});
  return json({ cancelled: await cancelMessages(ctx.sql, filter) });
}

export async function dlqRoute(
  req: Request,
  url: URL,
  ctx: BrokerContext,
  rest: string[],
): Promise<Response> {
  const [first, second] = rest;
  // `retry` is an action, never a DLQ id (those are `dlq_…`): another method is 405, not "dlq message not found".
  if (first === "retry" && req.method !== "POST") throw new HttpError(405, "method not allowed");
  if (first === "retry") {
    if (second === undefined) refuseUnknown(url, DLQ_PARAMS);
    const filter = second ? { count: 1, dlqIds: [second] } : dlqFilter(url);
    const result = await retryDlq(ctx.sql, filter, newMessageId);
    if (result.messageIds.length > 0) ctx.wake();
    const responses = result.messageIds.map((messageId) => ({ messageId }));
    return json({ responses, ...renderCursor(result.cursor) });
  }
  if (first !== undefined && second === undefined) {
    const dlqId = first; // the router decoded it
    if (req.method === "GET") {
      const row = await getDlq(ctx.sql, dlqId);
      if (!row) throw notFound("dlq message");
      return json(renderDlq(row));
    }
    if (req.method === "DELETE") {
      const { deleted } = await deleteDlq(ctx.sql, { count: 1, dlqIds: [dlqId] });
      if (deleted === 0) throw notFound("dlq message");
      return json({ deleted });
    }
    throw new HttpError(405, "method not allowed");
  }
  if (first !== undefined) throw notFound("route");
  if (req.method === "GET") {
    const { rows, cursor } = await listDlq(ctx.sql, dlqFilter(url));
    return json({ messages: rows.map(renderDlq), ...renderCursor(cursor) });
  }
  if (req.method === "DELETE") {
    refuseUnknown(url, DLQ_PARAMS);
    const { deleted, cursor } = await deleteDlq(ctx.sql, dlqFilter(url));
    return json({ deleted, ...renderCursor(cursor) });
  }
  throw new HttpError(405, "method not allowed");
}

export async function queuesRoute(req: Request, ctx: BrokerContext, rest: string[]): Promise<Response> {
  const [name, action] = rest;
  if (name === undefined) {
    if (req.method === "GET") return json(await listQueues(ctx.sql));
    if (req.method !== "POST") throw new HttpError(405, "method not allowed");
    let body: { queueName?: unknown; parallelism?: unknown; paused?: unknown };
    try {
      body = JSON.parse(new TextDecoder().decode(await readBody(req, 64 * 1024)));
    } catch {
      throw new HttpError(400, "body must be JSON: {queueName, parallelism, paused}");
    }
    if (typeof body !== "object" || body === null || Array.isArray(body))
      throw new HttpError(400, "body must be a JSON object: {queueName, parallelism, paused}");
    if (typeof body.queueName !== "string") throw new HttpError(400, "queueName is required");
    if (body.paused !== undefined && typeof body.paused !== "boolean")
      throw new HttpError(400, "paused must be true or false");
    const parallelism = body.parallelism ?? 1;
    if (
      typeof parallelism !== "number" ||
      !Number.isInteger(parallelism) ||
      parallelism < 1 ||
      parallelism > 1000
    ) {
      throw new HttpError(400, "parallelism must be an integer from 1 to 1000");
    }
    await upsertQueue(ctx.sql, validQueueName(body.queueName), parallelism, body.paused === true);
    ctx.wake();
    return empty();
  }
  if (action === "pause" || action === "resume") {
    if (req.method !== "POST") throw new HttpError(405, "method not allowed");
    if (!(await setPaused(ctx.sql, name, action === "pause"))) throw notFound("queue");
    if (action === "resume") ctx.wake();
    return empty();
  }
  if (action !== undefined) throw notFound("route");
  if (req.method === "GET") {
    const [queue] = await listQueues(ctx.sql, name);
    if (!queue) throw notFound("queue");
    return json(queue);
  }
  if (req.method === "DELETE") {
    if (!(await deleteQueue(ctx.sql, name))) throw notFound("queue");
    return empty();
  }
  throw new HttpError(405, "method not allowed");
}

export async function eventsRoute(req: Request, url: URL, ctx: BrokerContext): Promise<Response> {
  if (req.method !== "GET") throw new HttpError(405, "method not allowed");
  refuseUnsupported(url, CALLER_IP);
  const f: EventFilter = { count: countParam(url, 100, 1000) };
  const messageIds = listParam(url, "messageIds") ?? listParam(url, "messageId");
  if (messageIds) f.messageIds = messageIds;
  const states = listParam(url, "state");
  if (states) {
    f.states = states
      .map((s) => s.toUpperCase())
      .flatMap((s) =>
        s === "IN_PROGRESS" ? ["ACTIVE", "RETRY", "ERROR"] : s === "CANCELLED" ? ["CANCELED"] : [s],
      );
  }
  withRangeFilters(url, f);
  // The event log's cursor is `<time>.<n>`, not the DLQ's number.
  const cursorText = url.searchParams.get("cursor");
  if (cursorText) {
    const cursor = parseEventCursor(cursorText);
    if (!cursor) throw new HttpError(400, "invalid cursor");
    f.cursor = cursor;
  }
  const { rows, cursor: next } = await listEvents(ctx.sql, f);
  return json({ events: rows.map(renderEvent), ...(next === undefined ? {} : { cursor: next }) });
}

export function keysRoute(req: Request, ctx: BrokerContext): Response {
  if (req.method !== "GET") throw new HttpError(405, "method not allowed");
  return json({ current: ctx.options.currentSigningKey, next: ctx.options.nextSigningKey });
}
