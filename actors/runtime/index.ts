// The portable actor runtime: define actors, run turns, and the ports that hosts implement.
export * from "./address.ts";
export * from "./consumers.ts";
export * from "./context.ts";
export * from "./define.ts";
export * from "./group-commit.ts";
export * from "./guarded.ts";
export * from "./host.ts";
export * from "./migrate.ts";
export * from "./registry.ts";
export * from "./relay.ts";
export * from "./storage.ts";
export * from "./subscriptions.ts";
export * from "./transport.ts";
export * from "./turn.ts";
