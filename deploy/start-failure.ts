// Why a node could not start, in one line that names what failed and what to check; then exit code 78 or 1.
import process from "node:process";
import { inspect } from "node:util";
import type { Config } from "../shared/config/index.ts";
import { isEdgewiseError } from "../shared/errors/index.ts";
import { maskSecrets } from "../shared/telemetry/log/redact.ts";

interface ErrorFacts {
  message: string;
  code?: string;
  address?: string;
  port?: number;
  syscall?: string;
  /** The name a failed DNS lookup asked for (ENOTFOUND, EAI_AGAIN: no address or port yet). */
  hostname?: string;
}

/**
 * The embedded PGlite's file system (Emscripten) throws `ErrnoError { errno }`, with no message and WASI's errno
 * numbers (EACCES 2, EDQUOT 19, EIO 29, ENOENT 44, ENOSPC 51, EPERM 63, EROFS 69), not the kernel's.
 */
const wasiErrnos: Record<number, string> = {
  2: "EACCES",
  19: "EDQUOT",
  29: "EIO",
  44: "ENOENT",
  51: "ENOSPC",
  63: "EPERM",
  69: "EROFS",
};

function factsOf(error: unknown): ErrorFacts {
  if (typeof error !== "object" || error === null) return { message: String(error) };
  const { message, code, address, port, syscall, name, errno, hostname } = error as Record<string, unknown>;
  const wasiCode = name === "ErrnoError" && typeof errno === "number" ? wasiErrnos[errno] : undefined;
  const knownCode = typeof code === "string" ? code : wasiCode;
  return {
    message:
      typeof message === "string"
        ? message
        : `${typeof name === "string" ? name : "error"}${knownCode ? ` ${knownCode}` : ""}`,
    ...(knownCode ? { code: knownCode } : {}),
    ...(typeof address === "string" ? { address } : {}),
    ...(typeof port === "number" ? { port } : {}),
    ...(typeof syscall === "string" ? { syscall } : {}),
    ...(typeof hostname === "string" ? { hostname } : {}),
  };
}

/** What a failure to write the data dir says, by the code of the error (the OS's, SQLite's, or PGlite's). */
const dataDirFailures: Record<string, string> = {
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EIO: "I/O error",
  SQLITE_FULL: "no space left on the device",
  SQLITE_CANTOPEN: "a database file could not be opened or created",
  SQLITE_READONLY: "a database file is read-only",
  SQLITE_IOERR: "I/O error",
};

/** host:port of a URL, never its user or password; undefined when it is not a URL with a host. */
function endpointOf(
  url: string | undefined,
  defaultPort: number,
): { host: string; port: number } | undefined {
  if (!url) return undefined;
  try {
    const parsed = new URL(url.split(",")[0] as string);
    if (!parsed.hostname) return undefined;
    return { host: parsed.hostname, port: Number(parsed.port || defaultPort) };
  } catch {
    return undefined;
  }
}

const unreachable = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ECONNRESET",
]);

/** The setting that chose the port a process listens on: a node's `PORT`, the broker's `QSTASH_PORT`. */
export interface ListenSetting {
  variable: string;
  port: number | string | undefined;
}

/**
 * The line to print for an error that stopped `startNode`. Postgres and Redis are named when the error is about
 * their address; connection strings are never printed whole (they may hold a password). A busy port is named with
 * the variable that sets it (`listen`, a node's `PORT` unless told).
 */
export function startFailureLine(
  error: unknown,
  config: Partial<Config>,
  listen: ListenSetting = { variable: "PORT", port: config.PORT },
): string {
  return withoutSettings(describeFailure(error, config, listen), config);
}

/** Settings an error may quote whole (a URL that does not parse): each is named by its variable instead. */
const quotedSettings = [
  "DATABASE_URL",
  "REDIS_URL",
  "UPSTASH_REDIS_REST_URL",
  "QSTASH_URL",
  "JWT_JWKS_URL",
] as const;

/**
 * The line with every configured connection string replaced by its variable's name, then masked as a log line is:
 * a URL that fails to parse is quoted whole by some runtimes' errors (Deno's `Invalid URL: '…'`), password and all,
 * and a password with an unescaped `/` or `#` is what makes it fail.
 */
function withoutSettings(line: string, config: Partial<Config>): string {
  let out = line;
  for (const name of quotedSettings) {
    const value = (config as Record<string, unknown>)[name];
    if (typeof value === "string" && value.length > 0) out = out.replaceAll(value, `<${name}>`);
  }
  return maskSecrets(out);
}

function describeFailure(error: unknown, config: Partial<Config>, listen: ListenSetting): string {
  const facts = factsOf(error);
  const postgres = endpointOf(config.DATABASE_URL, 5432);
  const redis = endpointOf(config.REDIS_URL, 6379);
  if (facts.code && unreachable.has(facts.code)) {
    // The error names the address it tried; its port tells which dependency that was. A name that does not
    // resolve has no address yet: the name itself tells.
    const unresolved = facts.port === undefined && facts.hostname !== undefined;
    for (const [name, endpoint, variable] of [
      ["Postgres", postgres, "DATABASE_URL"],
      ["Redis", redis, "REDIS_URL"],
    ] as const) {
      if (endpoint && unresolved && endpoint.host === facts.hostname)
        return `cannot reach ${name} at ${endpoint.host}:${endpoint.port} (${facts.code}): the host name does not resolve. Check ${variable}`;
      if (endpoint && facts.port === endpoint.port)
        return `cannot reach ${name} at ${endpoint.host}:${endpoint.port} (${facts.code}): is it running? Check ${variable}`;
    }
    const where = facts.port !== undefined ? ` ${facts.address ?? "?"}:${facts.port}` : "";
    return `cannot reach${where} (${facts.code}): ${facts.message}`;
  }
  if (facts.code === "EADDRINUSE")
    return `port ${listen.port ?? "?"} is in use: stop what holds it, or set ${listen.variable}`;
  if (facts.syscall === "listen")
    return `cannot listen on ${config.HOST ?? "?"}:${listen.port ?? "?"} (${facts.code ?? "error"}): ${facts.message}. Check HOST (an address of this machine, or 0.0.0.0) and ${listen.variable}`;
  const dataDir = facts.code ? dataDirFailures[facts.code] : undefined;
  if (dataDir && config.EDGEWISE_DATA_DIR)
    return `cannot write the data dir ${config.EDGEWISE_DATA_DIR} (${facts.code}: ${dataDir}): free some space, or make it writable, or set EDGEWISE_DATA_DIR`;
  if (facts.code === "PG_TLS") return `${facts.message}. Check sslmode and sslrootcert in DATABASE_URL`;
  if (facts.code === "28P01" || facts.code === "28000")
    return `Postgres refused the login: ${facts.message}. Check the user and password in DATABASE_URL`;
  if (facts.code === "3D000") return `${facts.message}: create it, or name another in DATABASE_URL`;
  return isEdgewiseError(error) ? `${error.code}: ${error.message}` : facts.message;
}

/**
 * Prints `startFailureLine` (and the stack with LOG_LEVEL=debug), then exits: 78 (EX_CONFIG, as for a variable that
 * does not parse) when a setting is what is wrong (`config.invalid` naming the variables: a bad OTLP or sampling
 * value, a gateway without its actor host's queue), else 1 (a port or data dir in use, another actor host, a
 * database it cannot reach).
 */
export function exitOnStartFailure(
  config: Partial<Config>,
  listen?: ListenSetting,
): (error: unknown) => never {
  return (error) => {
    console.error(`[edgewise] could not start: ${startFailureLine(error, config, listen)}`);
    // The stack, with any password masked: an error about a URL may quote it whole (postgres.js's `input`).
    if (config.LOG_LEVEL === "debug") console.error(maskSecrets(inspect(error)));
    process.exit(isEdgewiseError(error) && error.code === "config.invalid" && error.issues?.length ? 78 : 1);
  };
}
