// Turning a publish, enqueue or batch item into a message: destination, Upstash-* headers, dedup key.
import { createHash } from "node:crypto";
import { customAlphabet } from "nanoid";
import type { ResolvedOptions } from "./config.ts";
import { HttpError } from "./http-util.ts";
import { parseDelayHeader } from "../../../actors/queue/retry-policy.ts";
import type { NewMessage } from "./types.ts";

const alnum = customAlphabet("0123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", 24);
export const newMessageId = (): string => `msg_${alnum()}`;
export const newDlqId = (): string => `dlq_${alnum()}`;

const METHODS = new Set(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]);
/**
 * Headers a destination must not get from a publisher: the HTTP client sets them itself, or they are hop-by-hop
 * (RFC 9110 §7.6.1; `Proxy-*` concern a proxy on the way, not the destination).
 */
const NOT_FORWARDED = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "proxy-authorization",
  "proxy-authenticate",
  "proxy-connection",
]);
/** QStash features this broker does not implement; publishing still works, the header is ignored (logged once). */
const IGNORED =
  /^upstash-(callback|failure-callback|retry-delay|flow-control|label|redact-fields|cron|schedule-id|header-forward)/;
const warned = new Set<string>();
const QUEUE_NAME = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * The destination from a raw request URL, after `prefix` (e.g. `/v2/publish/`): a full http(s) URL, with its
 * own query string but without our `qstash_token`. Percent-encoded destinations are decoded.
 */
export function destinationFrom(rawUrl: string, prefix: string): string {
  const at = rawUrl.indexOf(prefix);
  let text = at >= 0 ? rawUrl.slice(at + prefix.length) : "";
  if (!/^https?:\/\//i.test(text) && /^https?%3A/i.test(text)) {
    try {
      text = decodeURIComponent(text);
    } catch {
      // left as is; validated below
    }
  }
  return validDestination(withoutToken(text));
}

/**
 * The URL without its `qstash_token` parameters, the rest of the query byte for byte: the destination, and the
 * signature's `sub`, are the URL as published (re-encoding it broke receivers that verify against their own URL).
 */
function withoutToken(text: string): string {
  const queryAt = text.indexOf("?");
  if (queryAt < 0) return text;
  const parts = text.slice(queryAt + 1).split("&");
  const kept = parts.filter((part) => !isToken(part));
  if (kept.length === parts.length) return text;
  return text.slice(0, queryAt) + (kept.length > 0 ? `?${kept.join("&")}` : "");
}

/** Whether a query part names `qstash_token`, as URLSearchParams (which authorize reads it with) decodes names. */
function isToken(part: string): boolean {
  const name = (part.split("=", 1)[0] ?? "").replaceAll("+", " ");
  try {
    return decodeURIComponent(name) === "qstash_token";
  } catch {
    return false;
  }
}

export function validDestination(text: string): string {
  // No control characters: HTTP cannot send them, and Postgres text cannot store NUL.
  if (/[^\x20-\x7e\x80-\uffff]/.test(text))
    throw new HttpError(400, "invalid destination: control character");
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new HttpError(400, `invalid destination: ${JSON.stringify(text.slice(0, 200))} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new HttpError(400, "invalid destination: only http and https URLs are supported");
  }
  if (!/^https?:\/\/[^/?#]/i.test(text)) throw new HttpError(400, "invalid destination: missing host");
  return text;
}

/** RFC 9110: a field name is a token; a value holds visible ASCII, spaces, tabs and obs-text (Latin-1) only. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * A header from a JSON batch item, checked as an HTTP parser checks one: fetch refuses a newline or a character
 * above U+00FF when the message is delivered, and Postgres refuses NUL when it is stored.
 */
export function validHeader(name: string, value: string): [string, string] {
  if (!TOKEN.test(name))
    throw new HttpError(400, `invalid header name ${JSON.stringify(name.slice(0, 100))}`);
  if (!FIELD_VALUE.test(value)) {
    throw new HttpError(
      400,
      `invalid value for header ${name}: control characters or characters above U+00FF`,
    );
  }
  return [name, value];
}

export function validQueueName(name: string): string {
  if (!QUEUE_NAME.test(name)) throw new HttpError(400, "invalid queue name: use 1-128 of A-Z a-z 0-9 . _ -");
  return name;
}

export interface IngestInput {
  destination: string;
  /** Request headers; names are compared case-insensitively. */
  headers: Iterable<[string, string]>;
  body: Uint8Array;
  queueName: string | null;
  callerIp: string | null;
}

/**
 * The content-based deduplication key: what QStash hashes (its deduplication page), the destination, the body, and
 * the headers (Content-Type and the forwarded ones), the latter by lower-case name, in name order.
 */
function contentKey(url: string, headers: ReadonlyMap<string, string>, body: Uint8Array): string {
  const named = [...headers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // JSON holds no raw newline, so the newline ends the prefix unambiguously.
  const hash = createHash("sha256")
    .update(`${JSON.stringify([url, named])}\n`)
    .update(body);
  return `content:${hash.digest("hex")}`;
}

const formatDays = (ms: number) => (ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : `${ms} ms`);

/** Builds a message from the Upstash-* headers; a malformed header is a 400. */
export async function buildMessage(input: IngestInput, options: ResolvedOptions): Promise<NewMessage> {
  if (input.body.byteLength > options.maxBodyBytes) {
    throw new HttpError(413, `message body exceeds the limit of ${options.maxBodyBytes} bytes`);
  }
  // A Map, not an object: a forwarded name is the caller's, and `forward["__proto__"] = value` would drop it.
  const forward = new Map<string, string>();
  const upstash = new Map<string, string>();
  for (const [rawName, value] of input.headers) {
    const name = rawName.toLowerCase();
    if (name.startsWith("upstash-forward-")) {
      const target = name.slice("upstash-forward-".length);
      if (target && !NOT_FORWARDED.has(target)) forward.set(target, value);
    } else if (name === "content-type") {
      forward.set("content-type", value);
    } else if (name.startsWith("upstash-")) {
      upstash.set(name, value);
      const feature = IGNORED.exec(name)?.[1];
      if (feature && !warned.has(feature)) {
        warned.add(feature);
        options.log(`${rawName} is not supported by this broker and is ignored`);
      }
    }
  }
  const now = Date.now();
  const method = (upstash.get("upstash-method") ?? "POST").toUpperCase();
  // The value is not repeated back: any length, any bytes a header may carry; the error says what is taken.
  if (!METHODS.has(method))
    throw new HttpError(400, `invalid Upstash-Method: use one of ${[...METHODS].join(", ")}`);

  let maxRetries = options.defaultRetries;
  const retriesText = upstash.get("upstash-retries");
  if (retriesText !== undefined) {
    if (!/^\d+$/.test(retriesText.trim()))
      throw new HttpError(400, "invalid Upstash-Retries: not a whole number");
    maxRetries = Number(retriesText.trim());
    if (maxRetries > options.maxRetries) {
      throw new HttpError(400, `invalid Upstash-Retries: at most ${options.maxRetries}`);
    }
  }

  let timeoutMs = options.defaultTimeoutMs;
  const timeoutText = upstash.get("upstash-timeout");
  if (timeoutText !== undefined) {
    const parsed = parseDelayHeader(timeoutText);
    if (parsed === undefined || parsed <= 0)
      throw new HttpError(400, "invalid Upstash-Timeout: use e.g. 30s or 5m");
    timeoutMs = Math.min(parsed, 2 ** 31 - 1);
  }

  let dueAt = now;
  let notBefore: number | null = null;
  const notBeforeText = upstash.get("upstash-not-before");
  const delayText = upstash.get("upstash-delay");
  const tooFar = (header: string) =>
    new HttpError(
      400,
      `invalid ${header}: more than ${formatDays(options.maxDelayMs)} away (the maximum delay)`,
    );
  if (notBeforeText !== undefined) {
    if (!/^\d+$/.test(notBeforeText.trim()))
      throw new HttpError(400, "invalid Upstash-Not-Before: unix seconds");
    notBefore = Number(notBeforeText.trim()) * 1000;
    if (notBefore - now > options.maxDelayMs) throw tooFar("Upstash-Not-Before");
    dueAt = now + Math.max(0, Math.round((notBefore - now) * options.timeScale));
  } else if (delayText !== undefined) {
    const delay = parseDelayHeader(delayText);
    if (delay === undefined) throw new HttpError(400, "invalid Upstash-Delay: use e.g. 10s, 5m, 2h or 1d");
    if (delay > options.maxDelayMs) throw tooFar("Upstash-Delay");
    dueAt = now + Math.round(delay * options.timeScale);
    // As QStash reports a delayed message: the time it may be delivered from (the time scale aside).
    notBefore = now + delay;
  }

  let dedupKey: string | null = null;
  const dedupId = upstash.get("upstash-deduplication-id");
  if (dedupId !== undefined && dedupId !== "") dedupKey = `id:${dedupId}`;
  else if (upstash.get("upstash-content-based-deduplication")?.toLowerCase() === "true") {
    dedupKey = contentKey(input.destination, forward, input.body);
  }

  return {
    id: newMessageId(),
    url: input.destination,
    method,
    // Own data properties, `__proto__` included, which JSON (the stored jsonb) and `new Headers` both keep.
    headers: Object.fromEntries(forward),
    body: input.body,
    queueName: input.queueName,
    maxRetries,
    timeoutMs,
    dueAt,
    notBefore,
    createdAt: now,
    callerIp: input.callerIp,
    dedupKey,
  };
}
