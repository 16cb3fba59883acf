// The Cloudflare host's public surface: actor classes for Durable Objects, and the host that reaches them.
export * from "./actor-object.ts";
export * from "./host.ts";
export * from "./storage.ts";
