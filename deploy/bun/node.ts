// One self-hosted Edgewise node on Bun: the portable composition with Bun.serve, bun:sqlite and TCP Redis.
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { tcpRedis } from "../../edge/middleware/rate-limit/redis-tcp-bun.ts";
import { type NodeOptions, startNode as startPortableNode } from "../node.ts";
import { bunServe } from "./serve.ts";

export type { EdgewiseNode } from "../node.ts";

export function startNode(options: Omit<NodeOptions, "serve" | "platform" | "openActorDb" | "tcpRedis">) {
  return startPortableNode({
    ...options,
    serve: bunServe,
    platform: "bun",
    openActorDb: openBunSqlite,
    tcpRedis: (url) => tcpRedis({ url }),
  });
}
