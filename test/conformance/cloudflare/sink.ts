// A recording transport for the conformance Worker (tests only): a Durable Object that keeps what the relay sent.
import { DurableObject } from "cloudflare:workers";
import type { Envelope } from "../../../shared/envelope/index.ts";
import type { Transport } from "../../../actors/runtime/index.ts";

export class Sink extends DurableObject<unknown> {
  /** In memory on purpose: a restarted host starts with a working transport, like the local host's test. */
  private failing = false;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS sent (seq INTEGER PRIMARY KEY, envelope TEXT NOT NULL)");
  }

  record(envelopes: Envelope[]): void {
    if (this.failing) throw new Error("transport down (test)");
    this.ctx.storage.transactionSync(() => {
      for (const envelope of envelopes) {
        this.ctx.storage.sql.exec("INSERT INTO sent (envelope) VALUES (?)", JSON.stringify(envelope));
      }
    });
  }

  sent(): Envelope[] {
    return this.ctx.storage.sql
      .exec<{ envelope: string }>("SELECT envelope FROM sent ORDER BY seq")
      .toArray()
      .map((row) => JSON.parse(row.envelope) as Envelope);
  }

  setFailing(failing: boolean): void {
    this.failing = failing;
  }
}

/** The transport port over the one Sink object. */
export function sinkTransport(namespace: DurableObjectNamespace<Sink>): Transport {
  return {
    async send(envelopes) {
      await namespace.get(namespace.idFromName("sink")).record(envelopes);
    },
  };
}
