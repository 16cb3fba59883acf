// Webhooks, outbound and inbound, on the Standard Webhooks spec: the consumer, the store, the guard, the routes' logic.
export * from "./consumer.ts";
export * from "./delivery.ts";
export * from "./describe.ts";
export * from "./errors.ts";
export * from "./fan-out.ts";
export * from "./inbound.ts";
export * from "./management.ts";
export * from "./ip.ts";
export * from "./messages.ts";
export * from "./post.ts";
export * from "./postgres-store.ts";
export * from "./secret.ts";
export * from "./sign.ts";
export * from "./ssrf.ts";
export * from "./store.ts";
export * from "./subscriptions.ts";
