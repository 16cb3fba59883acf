// The QStash transport: publishes relayed messages through `@upstash/qstash`'s batch API, one delivery per target.
import { Client, QstashError } from "@upstash/qstash";
import type { Envelope } from "../../shared/envelope/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { type ActorAddress, parseAddress } from "../runtime/address.ts";
import type { Transport } from "../runtime/transport.ts";
import { rateLimitError, rateLimitWaitMs } from "./qstash-rate-limit.ts";

export interface QStashTransportOptions {
  /** The broker: Upstash QStash, or the local broker in deploy/local/broker. */
  baseUrl: string;
  token: string;
  /** Where the broker delivers a message for an actor, e.g. `${PUBLIC_URL}/_edgewise/deliver/type/key`. */
  deliveryUrl: (target: ActorAddress) => string;
  /** Retries the broker makes before dead-lettering. Default 3 (QStash's default). */
  retries?: number;
  /** Messages per `/v2/batch` request. */
  batchSize?: number;
  /**
   * How the broker's API is called. Default: the global fetch. A node gives one that trusts the CA of a self-hosted
   * broker's certificate (QSTASH_CA_FILE, deploy/tls.ts `caFetch`).
   */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /**
   * Told each answer that moves `rateLimitedUntil`: a 429's reset (ms since the epoch), or undefined for a publish
   * the queue took. On Workers, every relay of an isolate tells one `QueueLimit` (actors/hosts/cloudflare/queue-limit.ts).
   */
  onRateLimit?: (until: number | undefined) => void;
}

/**
 * When the relay handed a message to the broker (ms since the epoch), on each delivery: the broker forwards it as a
 * header. Not signed (QStash's signature covers the URL and body only), so it is read only as a span's attribute.
 */
export const publishedAtHeader = "edgewise-published-at";

export const deliveryPath = (target: ActorAddress): string =>
  `/_edgewise/deliver/${encodeURIComponent(target.type)}/${encodeURIComponent(target.key)}`;

/**
 * The broker keeps one copy per (message, target, deployment): a relay retry of the same batch is not enqueued
 * twice. `deployment` tags where the message is delivered (`deploymentTag` of the delivery URL's origin): ids are
 * deterministic where they must be (an order's id from its caller and `Idempotency-Key`, billing's replies), so two
 * deployments publishing to one QStash account (staging and production, say) had their messages taken for each
 * other's repeats, and the second one's was dropped: its order stayed pending for good.
 */
export const deduplicationId = (envelope: Envelope, deployment: string): string =>
  `${envelope.id}.${envelope.target ?? "topic"}.${deployment}`;

/** A short tag of a delivery origin (the first 12 hex digits of its SHA-256), for `deduplicationId`. */
export async function deploymentTag(origin: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(origin));
  return [...new Uint8Array(digest).slice(0, 6)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

export class QStashTransport implements Transport {
  private readonly client: Client;
  private readonly batchSize: number;
  /** `deploymentTag` per delivery origin; a deployment delivers to one or two (a split one's actor host). */
  private readonly tags = new Map<string, string>();
  /** The reset of the last 429 (see `rateLimitedUntil`), cleared by a publish the queue takes. */
  private limitedUntil: number | undefined;

  constructor(private readonly options: QStashTransportOptions) {
    // The relay owns retries and backoff; the SDK's own retry loop would hide failures from it. Left unset, devMode
    // follows QSTASH_DEV in the environment, and when on, the SDK ignores this URL and token, downloads the
    // closed-source `qstash dev` binary and publishes to it: the queue is always the one configured here.
    this.client = new Client({
      baseUrl: options.baseUrl,
      token: options.token,
      retry: false,
      devMode: false,
    });
    // Always ours, with the runtime's fetch unless a node gives its own (a private CA to trust): the SDK's HttpClient
    // prints a line of plain text to the console for each failed call, among the node's JSON log lines, and the relay
    // already logs the failure it is thrown.
    this.client.http = brokerRequester(
      this.client.http,
      options.fetch ?? ((input, init) => fetch(input, init)),
      options,
    );
    this.batchSize = options.batchSize ?? 100;
  }

  async send(envelopes: Envelope[]): Promise<void> {
    try {
      if (await this.publish(envelopes)) {
        this.limitedUntil = undefined;
        this.options.onRateLimit?.(undefined);
      }
    } catch (error) {
      const wait = rateLimitWaitMs(error, Date.now());
      if (wait !== undefined) {
        this.limitedUntil = Date.now() + wait;
        this.options.onRateLimit?.(this.limitedUntil);
      }
      throw error;
    }
  }

  /** While the queue's last answer to a publish was a 429 whose reset is ahead: that reset, in ms since the epoch. */
  rateLimitedUntil(): number | undefined {
    return this.limitedUntil !== undefined && this.limitedUntil > Date.now() ? this.limitedUntil : undefined;
  }

  /** Whether anything went to the queue (an envelope without a target has nobody to go to). */
  private async publish(envelopes: Envelope[]): Promise<boolean> {
    // The relay expands events into one targeted delivery per subscriber. One still without a target has no
    // subscriber (or the host has no subscription registry): there is nobody to deliver it to.
    const targeted = envelopes
      .filter((envelope) => envelope.target !== undefined)
      .map((envelope) => ({
        envelope,
        url: this.options.deliveryUrl(parseAddress(envelope.target as string)),
      }));
    for (const { url } of targeted) if (!this.tags.has(originOf(url))) await this.learnTag(originOf(url));
    const publishedAt = String(Date.now());
    const deliveries = targeted.map(({ envelope, url }) => ({
      url,
      body: JSON.stringify(envelope),
      // Forwarded to the delivery (Upstash-Forward-*): its span tells the broker's wait from the relay's lag.
      headers: { "content-type": "application/cloudevents+json", [publishedAtHeader]: publishedAt },
      deduplicationId: deduplicationId(envelope, this.tags.get(originOf(url)) as string),
      retries: this.options.retries ?? 3,
    }));
    for (const chunk of batches(deliveries, this.batchSize, batchBodyBytes)) {
      const results = await this.client.batch(chunk);
      const failed = results.filter((result) => "error" in (result as object));
      if (failed.length > 0) {
        throw new EdgewiseError("internal", `broker refused ${failed.length} of ${chunk.length} messages`, {
          meta: { first: failed[0] },
        });
      }
    }
    return deliveries.length > 0;
  }

  /** A 429's reset, as the SDK's rate-limit error carries it: the relay waits that long before the next send. */
  retryAfterMs(error: unknown): number | undefined {
    return rateLimitWaitMs(error, Date.now());
  }

  private async learnTag(origin: string): Promise<void> {
    const tag = await deploymentTag(origin);
    if (this.tags.size >= 64) this.tags.clear(); // origins come from configuration: a handful at most
    this.tags.set(origin, tag);
  }
}

/** `scheme://host:port` of an absolute URL, without parsing the rest (a delivery URL is built by us). */
const originOf = (url: string): string => {
  const end = url.indexOf("/", url.indexOf("//") + 2);
  return end === -1 ? url : url.slice(0, end);
};

type Requester = Client["http"];
type UpstashRequest = Parameters<Requester["request"]>[0];

/**
 * The SDK's HTTP layer, sending with `send`. @upstash/qstash 2.12 has no fetch option (its HttpClient calls the
 * global fetch, and writes each failure to the console), and Bun's fetch takes the CAs to trust per call (`tls.ca`),
 * so a broker with a certificate from a private CA could not be trusted otherwise. The SDK's public `http` field is its seam: the SDK still turns each
 * message into QStash's headers (those of `http.headers` and its telemetry kept), and only the request is ours. It
 * behaves as the SDK's own HttpClient with `retry: false` and `devMode: false`: one attempt, a 429 thrown as the
 * SDK's rate-limit error for the limit its headers name (`rateLimitError`), and any other non-2xx as a QstashError
 * with the broker's answer.
 */
function brokerRequester(
  sdk: Requester,
  send: NonNullable<QStashTransportOptions["fetch"]>,
  options: QStashTransportOptions,
): Requester {
  const base = options.baseUrl.replace(/\/+$/, "");
  return {
    ...(sdk.headers ? { headers: sdk.headers } : {}),
    ...(sdk.telemetryHeaders ? { telemetryHeaders: sdk.telemetryHeaders } : {}),
    requestStream: () => {
      throw new QstashError("streaming is not used by the QStash transport");
    },
    async request<T>(request: UpstashRequest) {
      const url = new URL([request.baseUrl ?? base, ...request.path].join("/"));
      for (const [key, value] of Object.entries(request.query ?? {})) {
        for (const item of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
          url.searchParams.append(key, item instanceof Date ? String(item.getTime()) : String(item));
        }
      }
      // The SDK's HeadersInit is undici's, which Bun's types do not overlap (the SDK casts it the same way).
      const headers = new Headers(request.headers as HeadersInit);
      if (!headers.has("authorization")) headers.set("authorization", `Bearer ${options.token}`);
      const response = await send(url.toString(), {
        ...(request.method ? { method: request.method } : {}),
        headers,
        ...(request.body === undefined ? {} : { body: request.body }),
      });
      if (response.status === 429) {
        // The SDK reads no body here either: the headers say which limit and when it resets.
        await response.body?.cancel();
        throw rateLimitError(response.headers, Date.now());
      }
      if (response.status < 200 || response.status >= 300) {
        const text = await response.text();
        throw new QstashError(text.length > 0 ? text : `Error: status=${response.status}`, response.status);
      }
      if (request.parseResponseAsJson === false) {
        await response.body?.cancel();
        return undefined as T;
      }
      return (await response.json()) as T;
    },
  } as Requester;
}

/**
 * Bodies per /v2/batch request, at most: a batch of large messages (each may be up to 1 MiB) is split by size too,
 * or eleven of them would be one request over the broker's limit, refused on every retry, and the actor's outbox
 * behind it stuck for good.
 */
export const batchBodyBytes = 4 * 1024 * 1024;

/** Consecutive runs of at most `count` items whose bodies fit `bytes` (bounded above: 3 UTF-8 bytes per UTF-16 unit). */
export function batches<T extends { body: string }>(items: T[], count: number, bytes: number): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const item of items) {
    const itemSize = item.body.length * 3;
    if (current.length > 0 && (current.length >= count || size + itemSize > bytes)) {
      out.push(current);
      current = [];
      size = 0;
    }
    current.push(item);
    size += itemSize;
  }
  if (current.length > 0) out.push(current);
  return out;
}
