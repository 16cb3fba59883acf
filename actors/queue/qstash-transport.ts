// The QStash transport: publishes relayed messages through `@upstash/qstash`'s batch API, one delivery per target.
import { Client } from "@upstash/qstash";
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
    this.batchSize = options.batchSize ?? 100;
  }

  async send(envelopes: Envelope[]): Promise<void> {
    // The relay expands events into one targeted delivery per subscriber. One still without a target has no
    // subscriber (or the host has no subscription registry): there is nobody to deliver it to.
    const deliveries = envelopes.filter((envelope) => envelope.target !== undefined);
    for (let start = 0; start < deliveries.length; start += this.batchSize) {
      const chunk = deliveries.slice(start, start + this.batchSize);
      const results = await this.client.batch(
        chunk.map((envelope) => {
          return {
            url: this.options.deliveryUrl(parseAddress(envelope.target as string)),
            body: JSON.stringify(envelope),
            headers: { "content-type": "application/cloudevents+json" },
            deduplicationId: deduplicationId(envelope),
            retries: this.options.retries ?? 3,
          };
        }),
      );
      const failed = results.filter((result) => "error" in (result as object));
      if (failed.length > 0) {
        throw new EdgewiseError("internal", `broker refused ${failed.length} of ${chunk.length} messages`, {
          meta: { first: failed[0] },
        });
      }
    }
  }
}
