// CLI: `npm run -s token [-- --sub <sub>] [--scope <scope>]... [--ttl <duration>]` prints a JWT signed with JWT_SECRET.
/*
 * For a gateway that prints no token of its own: a Worker (`npm run dev:cf`, whose key is in .dev.vars or a
 * `wrangler secret`), or a node started with a JWT_SECRET you chose. The token carries JWT_ISSUER and JWT_AUDIENCE
 * when they are set, and lasts at most JWT_MAX_LIFETIME, so the gateway with the same settings accepts it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { issueToken } from "../edge/middleware/auth/tokens.ts";
import { exitWithHelp } from "./cli-help.ts";
import { parseConfig, parseDuration } from "../shared/config/index.ts";
import { isEdgewiseError } from "../shared/errors/index.ts";

const jwtSettings = ["JWT_SECRET", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_MAX_LIFETIME"] as const;

/**
 * `wrangler dev`'s variables file, NAME=value a line (dotenv's form, optionally quoted). Read by hand: the four
 * settings above are all this needs, not worth a dotenv dependency.
 */
export function readDevVars(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const found = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!found?.[1] || line.trimStart().startsWith("#")) continue;
    const raw = found[2] ?? "";
    const quoted = /^(["'])(.*)\1$/.exec(raw);
    vars[found[1]] = quoted ? (quoted[2] ?? "") : raw;
  }
  return vars;
}

/** The JWT settings: each from the environment, else from .dev.vars in the repo's root (npm runs scripts there). */
function jwtEnvironment(): Record<string, string | undefined> {
  let devVars: Record<string, string> = {};
  try {
    devVars = readDevVars(readFileSync(join(process.cwd(), ".dev.vars"), "utf8"));
  } catch {
    // No .dev.vars: the environment alone.
  }
  return Object.fromEntries(jwtSettings.map((name) => [name, process.env[name] || devVars[name]]));
}

const usage = "usage: npm run -s token -- [--sub <sub>] [--scope <scope>]... [--ttl <duration, e.g. 1h>]";

/** What `npm run -s token -- --help` prints. */
const help = [
  usage,
  "A JWT signed with JWT_SECRET (from the environment, else .dev.vars in the repo's root), for a Worker or a node",
  "given a key of yours. Defaults: --sub admin, --scope admin (repeat it, or separate scopes with commas), --ttl 1h.",
  "It carries JWT_ISSUER and JWT_AUDIENCE when they are set, and lasts at most JWT_MAX_LIFETIME.",
  "Exit codes: 0 printed; 64 a usage error; 78 JWT_SECRET missing or a JWT_* setting invalid.",
];

function fail(message: string, code: number): never {
  console.error(`[edgewise] no token: ${message}`);
  console.error(usage);
  process.exit(code);
}

const options = {
  sub: { type: "string", default: "admin" },
  scope: { type: "string", multiple: true },
  ttl: { type: "string", default: "1h" },
} as const;

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options });
  } catch (error) {
    fail((error as Error).message, 64);
  }
}

async function main(): Promise<void> {
  exitWithHelp(help);
  const args = parse(process.argv.slice(2));
  let config: ReturnType<typeof parseConfig>;
  try {
    config = parseConfig(jwtEnvironment());
  } catch (error) {
    if (isEdgewiseError(error)) fail(error.message, 78);
    throw error;
  }
  if (!config.JWT_SECRET) fail("JWT_SECRET is not set, in the environment or in .dev.vars", 78);
  const ttlMs = parseDuration(args.values.ttl);
  if (ttlMs === undefined || ttlMs < 1000)
    fail(`--ttl ${args.values.ttl} is not a duration of 1s or more`, 64);
  const scopes = (args.values.scope ?? ["admin"]).flatMap((scope) => scope.split(/[\s,]+/)).filter(Boolean);
  const token = await issueToken({
    sub: args.values.sub,
    scopes,
    // A longer token than JWT_MAX_LIFETIME allows would be refused by the gateway.
    ttlSeconds: Math.floor(Math.min(ttlMs, config.JWT_MAX_LIFETIME ?? Number.POSITIVE_INFINITY) / 1000),
    secret: config.JWT_SECRET,
    ...(config.JWT_ISSUER ? { issuer: config.JWT_ISSUER } : {}),
    ...(config.JWT_AUDIENCE ? { audience: config.JWT_AUDIENCE } : {}),
  });
  console.log(token);
}

if (import.meta.main) await main();
