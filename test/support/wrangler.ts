// Starting `wrangler dev` from tests and benches: a free port, the one command line, and the JSON lines it relays.
import { join, resolve } from "node:path";
import { restartablePort } from "./ports.ts";

const root = resolve(import.meta.dir, "../..");

/** A port nobody listens on now (another process may still take it before it is bound: retry then). */
export function freePort(): number {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = server.port as number;
  server.stop(true);
  return port;
}

export interface WranglerDevOptions {
  /** A wrangler.toml relative to the repo root; the root one when absent. */
  config?: string;
  port?: number;
  persistTo: string;
  /** `--var NAME:value` pairs (for tests only: production secrets go through `wrangler secret put`). */
  vars?: Record<string, string>;
  extra?: string[];
}

/** `wrangler dev` on 127.0.0.1, with its own inspector port and state dir, and no interactive session. */
export function wranglerDev(options: WranglerDevOptions): string[] {
  return [
    join(root, "node_modules/.bin/wrangler"),
    "dev",
    ...(options.config ? ["-c", options.config] : []),
    "--ip",
    "127.0.0.1",
    // Ports outside the kernel's ephemeral range (ports.ts): wrangler binds them seconds after they are picked, and
    // a port from that range may become an outgoing connection's local port meanwhile (then wrangler cannot start).
    "--port",
    String(options.port ?? restartablePort()),
    "--inspector-port",
    String(restartablePort()),
    "--persist-to",
    options.persistTo,
    ...Object.entries(options.vars ?? {}).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
    "--show-interactive-dev-session=false",
    ...(options.extra ?? []),
  ];
}

/** The environment wrangler needs in tests: no metrics, no colours, CI mode. */
export const wranglerEnv = { CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" };

/**
 * wrangler dev renders a console.warn or console.error call for a terminal: colours and a `▲ [WARNING]` or
 * `✘ [ERROR]` mark before what the Worker wrote (Workers Logs keeps the call's text and its level instead).
 */
const colour = new RegExp(`${String.fromCharCode(27)}\\[[\\d;]*m`, "g");
const unmarked = (line: string) =>
  line
    .replace(colour, "")
    .trim()
    .replace(/^[✘▲] \[(?:ERROR|WARNING)\] /u, "");

/** The JSON records among a process's output lines; any other line is left out (wrangler's own, say). */
export function wranglerRecords(output: string): Array<Record<string, unknown>> {
  return output
    .split("\n")
    .map(unmarked)
    .filter((line) => line.startsWith("{"))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}
