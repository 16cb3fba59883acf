// The QStash transport: publishes relayed messages through `@upstash/qstash`'s batch API, one delivery per target.
import { Client, QstashError } from "@upstash/qstash";
import type { Envelope } from "../../shared/envelope/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { type ActorAddress, parseAddress } from "../runtime/address.ts";
import type { Transport } from "../runtime/transport.ts";

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
   * How the broker's API is called. Default: the SDK's own HTTP client (the global fetch). A node gives one that
   * trusts the CA of a self-hosted broker's certificate (QSTASH_CA_FILE, deploy/tls.ts `caFetch`).
   */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
}

export const deliveryPath = (target: ActorAddress): string =>
  `/_edgewise/deliver/${encodeURIComponent(target.type)}/${encodeURIComponent(target.key)}`;

/** The broker keeps one copy per (message, target): a relay retry of the same batch is not enqueued twice. */
export const deduplicationId = (envelope: Envelope): string => `${envelope.id}.${envelope.target ?? "topic"}`;

export class QStashTransport implements Transport {
  private readonly client: Client;
  private readonly batchSize: number;

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
    // Only for a fetch of the node's own (a private CA to trust): otherwise the SDK's own HTTP client does the calls,
    // as it does against Upstash.
    if (options.fetch) this.client.http = brokerRequester(this.client.http, options.fetch, options);
    this.batchSize = options.batchSize ?? 100;
  }

  async send(envelopes: Envelope[]): Promise<void> {
    // The relay expands events into one targeted delivery per subscriber. One still without a target has no
    // subscriber (or the host has no subscription registry): there is nobody to deliver it to.
    const deliveries = envelopes
      .filter((envelope) => envelope.target !== undefined)
      .map((envelope) => ({
        url: this.options.deliveryUrl(parseAddress(envelope.target as string)),
        body: JSON.stringify(envelope),
        headers: { "content-type": "application/cloudevents+json" },
        deduplicationId: deduplicationId(envelope),
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
  }
}

type Requester = Client["http"];
type UpstashRequest = Parameters<Requester["request"]>[0];

/**
 * The SDK's HTTP layer, sending with `options.fetch`. @upstash/qstash 2.12 has no fetch option (its HttpClient calls
 * the global fetch), and Bun's fetch takes the CAs to trust per call (`tls.ca`), so a broker with a certificate from
 * a private CA could not be trusted otherwise. The SDK's public `http` field is its seam: the SDK still turns each
 * message into QStash's headers (those of `http.headers` and its telemetry kept), and only the request is ours. It
 * behaves as the SDK's own HttpClient with `retry: false` and `devMode: false`: one attempt, and a non-2xx thrown as
 * a QstashError with the broker's answer.
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
