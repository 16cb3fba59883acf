// The local host's public surface; pick the SQLite driver for your runtime from sqlite-bun.ts or sqlite-node.ts.
export * from "./host.ts";
export * from "./sql.ts";
export * from "./store.ts";
