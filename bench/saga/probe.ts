// In-process timestamps of each saga step: wraps the node's delivery targets (the actor host and the consumers).
import type { Envelope } from "../../shared/envelope/index.ts";
import type { MessageConsumer, TurnOutcome } from "../../actors/runtime/index.ts";
import type { LocalActorHost } from "../../actors/hosts/local/index.ts";
import type { referenceSystem } from "../../deploy/reference.ts";

/** performance.now() of the steps of one order; `start`: the delivery reached its target, `end`: it committed. */
export interface Steps {
  /** OrderPlaced reached the first of the order's skus, and the last sku committed its reservation. */
  inventoryStart?: number;
  inventoryEnd?: number;
  /** The order's last StockReserved reached it (its turn sends PaymentRequested). */
  reservedStart?: number;
  reservedEnd?: number;
  /** PaymentRequested reached billing, and billing's Postgres transaction committed. */
  billingStart?: number;
  billingEnd?: number;
  /** PaymentCaptured reached the order, and its turn (status `confirmed`, OrderConfirmed published) committed. */
  capturedStart?: number;
  capturedEnd?: number;
}

export class Probe {
  readonly steps = new Map<string, Steps>();
  /** Deliveries answered, by `target type:message type`. */
  readonly deliveries = new Map<string, number>();
  /** Called when an order's PaymentCaptured turn committed (the order is `confirmed`, or cancelled if asked). */
  onCaptured: ((orderId: string, at: number) => void) | undefined;

  private of(orderId: string): Steps {
    let steps = this.steps.get(orderId);
    if (!steps) {
      steps = {};
      this.steps.set(orderId, steps);
    }
    return steps;
  }

  resetCounts(): void {
    this.deliveries.clear();
  }

  private observe(envelope: Envelope, outcome: Promise<TurnOutcome>): Promise<TurnOutcome> {
    const start = performance.now();
    const target = typeof envelope.target === "string" ? envelope.target : "";
    const targetType = target.slice(0, target.indexOf("/"));
    const countKey = `${targetType}:${envelope.type}`;
    const data = envelope.data as { orderId?: unknown } | undefined;
    const orderId = typeof data?.orderId === "string" ? data.orderId : undefined;
    const step = orderId === undefined ? undefined : this.stepOf(targetType, envelope.type);
    if (orderId !== undefined && step) {
      const steps = this.of(orderId);
      if (step === "inventory") steps.inventoryStart ??= start;
      else if (step === "reserved") steps.reservedStart = start;
      else if (step === "billing") steps.billingStart ??= start;
      else steps.capturedStart ??= start;
    }
    return outcome.then((result) => {
      const end = performance.now();
      this.deliveries.set(countKey, (this.deliveries.get(countKey) ?? 0) + 1);
      if (orderId !== undefined && step) {
        const steps = this.of(orderId);
        if (step === "inventory") steps.inventoryEnd = end;
        else if (step === "reserved") steps.reservedEnd = end;
        else if (step === "billing") steps.billingEnd ??= end;
        else if (steps.capturedEnd === undefined) {
          steps.capturedEnd = end;
          this.onCaptured?.(orderId, end);
        }
      }
      return result;
    });
  }

  private stepOf(
    targetType: string,
    type: string,
  ): "inventory" | "reserved" | "billing" | "captured" | undefined {
    if (targetType === "inventory" && type === "OrderPlaced") return "inventory";
    if (targetType === "order" && type === "StockReserved") return "reserved";
    if (targetType === "billing" && type === "PaymentRequested") return "billing";
    if (targetType === "order" && type === "PaymentCaptured") return "captured";
    return undefined;
  }

  /** Wraps the host's `receive`, which the delivery route calls for every actor delivery. */
  wrapHost(host: LocalActorHost): void {
    const receive = host.receive.bind(host);
    host.receive = (envelope: Envelope) => this.observe(envelope, receive(envelope));
  }

  /** Wraps the consumers (billing, projector, activity, cache, webhooks) of the reference system's extension. */
  wrapSystem(system: ReturnType<typeof referenceSystem>): ReturnType<typeof referenceSystem> {
    const extend = system.extend;
    const wrapped = async (context: Parameters<typeof extend>[0]) => {
      const extension = await extend(context);
      return {
        ...extension,
        consumers: (extension.consumers ?? []).map(
          (consumer): MessageConsumer => ({
            type: consumer.type,
            receive: (envelope: Envelope) => this.observe(envelope, consumer.receive(envelope)),
          }),
        ),
      };
    };
    // The extender's own properties (its config check and the schemas its start reads markers of) go with it:
    // without `schemas`, the node would check the commerce stores' markers in a transaction of their own.
    return {
      ...system,
      extend: Object.assign(wrapped, { checkConfig: extend.checkConfig, schemas: extend.schemas }),
    };
  }
}
