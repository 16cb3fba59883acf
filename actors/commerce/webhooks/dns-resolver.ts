// The DNS port over `node:dns` (Bun and Deno implement it): for entries to inject, never for the core.
import { lookup } from "node:dns/promises";
import type { Resolve } from "./ssrf.ts";

/** Every A and AAAA address of a name, as the system resolver returns them (hosts file included). */
export const resolveWithNodeDns: Resolve = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((entry) => entry.address);
