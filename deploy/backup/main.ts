// CLI: `npm run backup -- [--out <file>] [--online --url <node> [--timeout <d>]]` and `npm run restore -- <file>`, on EDGEWISE_DATA_DIR.
import process from "node:process";
import { parseArgs } from "node:util";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { parseDuration } from "../../shared/config/index.ts";
import { isLoopbackHost } from "../../shared/net/ip.ts";
import { isEdgewiseError } from "../../shared/errors/index.ts";
import { exitWithHelp } from "../cli-help.ts";
import { requestedSchema } from "../local/broker/search-path.ts";
import { backup } from "./backup.ts";
import { defaultTimeoutMs, onlineBackup } from "./online-client.ts";
import { restore } from "./restore.ts";
import { ArchiveError } from "./manifest.ts";

/** Exit codes: 0 done; 1 refused or failed (in use, exists, not empty); 64 usage (EX_USAGE); 65 bad archive (EX_DATAERR). */
const exitCodes = { refused: 1, usage: 64, badArchive: 65 } as const;

const env = (name: string) => (process.env[name] === "" ? undefined : process.env[name]);
const openDb = (path: string) => openBunSqlite(path, "NORMAL");

const synopsis = [
  "usage: npm run backup -- [--data-dir <dir>] [--out <file>]",
  "       EDGEWISE_TOKEN=<admin token> npm run backup -- --online --url <node> [--out <file>] [--timeout <duration>]",
  "       npm run restore -- <file> [--data-dir <dir>]",
];

const help = [
  ...synopsis,
  "",
  "backup: a stopped node's data dir as one gzipped tar with a manifest of checksums, written 0600 and checked against",
  "its manifest before it is kept; refused while a node or broker runs on it. With DATABASE_URL, pg_dump the node's",
  'schema too (deploy/README.md, "Backup and restore").',
  "--online: the same archive from a running node on embedded Postgres, checked the same way before it is kept.",
  "restore: the archive into a missing or empty data dir, every file checked against the manifest first; the node's",
  "first start on it clears its read cache's keys in Redis (newer than the backup).",
  "npm runs both in the repo's root: relative paths are taken from there.",
  "",
  "  --data-dir <dir>     the node's data dir (default EDGEWISE_DATA_DIR, else ./.edgewise)",
  "  --out <file>         the archive to write, never overwritten (default edgewise-backup-<time>.tar.gz)",
  "  --online             back up a running node on embedded defaults through its POST /v1/backup",
  "  --url <node>         the running node's base URL (with --online)",
  `  --timeout <duration> with --online, the longest the node may send nothing (500ms, 30s, 5m; default ${defaultTimeoutMs / 60_000}m):`,
  "                       it packs the whole archive before its answer starts, so allow for a large data dir;",
  "                       past it the request is aborted, nothing is written, and the exit code is 1",
  "  -h, --help           this text",
  "",
  "exit codes: 0 done; 1 refused or failed; 64 usage; 65 a bad archive (deploy/README.md, Backup and restore)",
];

function usage(message: string): never {
  console.error([message, ...synopsis].join("\n"));
  process.exit(exitCodes.usage);
}

function parse(args: string[]) {
  try {
    return parseArgs({
      args,
      options: {
        "data-dir": { type: "string" },
        out: { type: "string" },
        online: { type: "boolean" },
        url: { type: "string" },
        timeout: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
    });
  } catch (error) {
    usage((error as Error).message);
  }
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  exitWithHelp(help, rest);
  const parsed = parse(rest);
  if (parsed.values.help || command === "--help" || command === "-h") {
    console.log(help.join("\n"));
    return;
  }
  const dataDir = parsed.values["data-dir"] ?? env("EDGEWISE_DATA_DIR") ?? "./.edgewise";
  if (command === "backup") {
    if (parsed.positionals.length > 0) usage(`unexpected argument ${parsed.positionals[0]}`);
    const out =
      parsed.values.out ?? `edgewise-backup-${new Date().toISOString().replace(/[:.]/g, "-")}.tar.gz`;
    if (parsed.values.online) {
      await backupOnline(parsed.values, out);
      return;
    }
    if (parsed.values.url) usage("--url is for --online");
    if (parsed.values.timeout) usage("--timeout is for --online");
    const databaseUrl = env("DATABASE_URL");
    const manifest = await backup({ dataDir, out, openDb, databaseUrl });
    const files = manifest.entries.filter((entry) => entry.type === "file").length;
    console.log(
      `[backup] ${dataDir} → ${out} (${files} files, checked, mode 0600); it holds secrets: store it as you store them`,
    );
    if (manifest.postgres === "external") console.log(dumpReminder(databaseUrl));
    return;
  }
  if (command === "restore") {
    if (parsed.values.online || parsed.values.url || parsed.values.timeout)
      usage("--online, --url and --timeout are for backup");
    const [archive, extra] = parsed.positionals;
    if (!archive) usage("name the archive to restore");
    if (extra) usage(`unexpected argument ${extra}`);
    if (parsed.values.out) usage("--out is for backup");
    const manifest = await restore({ archive, dataDir, openDb });
    const { version, commit } = manifest.edgewise;
    const build = commit ? `${version} ${commit.slice(0, 12)}` : version;
    console.log(`[restore] ${archive} (taken ${manifest.createdAt}, Edgewise ${build}) → ${dataDir}`);
    console.log(
      "[restore] the node's first start on it clears its read cache's keys in the Redis its config names (<REDIS_KEY_PREFIX>read:{*), newer than the backup",
    );
    console.log(
      `[restore] everything else is as it was at ${manifest.createdAt}: API keys revoked since then are valid again, webhook subscriptions deleted since then are back, and secrets rotated since then are the old ones; revoke, delete and rotate them again once the node runs (deploy/README.md, Backup and restore)`,
    );
    if (manifest.postgres === "external") {
      console.log(
        "[restore] the node kept its Postgres elsewhere (DATABASE_URL): restore the dump taken with this backup before starting it",
      );
    }
    return;
  }
  usage(command ? `unknown command ${command}` : "backup or restore?");
}

/**
 * What the operator must still do for a node on DATABASE_URL: pg_dump its schema. Names the schema the URL asks for,
 * never the URL itself (it may hold a password); pg_dump (libpq) refuses the URL parameters postgres.js takes.
 * Without DATABASE_URL here (the data dir told: no pglite/), the schema is the one the node's own DATABASE_URL names.
 */
function dumpReminder(databaseUrl: string | undefined): string {
  const schema = databaseUrl === undefined ? undefined : requestedSchema(databaseUrl);
  const name =
    schema === undefined ? undefined : /^[a-z_][a-z0-9_$]*$/.test(schema) ? schema : `'"${schema}"'`;
  const which = name
    ? `schema ${name}`
    : databaseUrl === undefined
      ? "the schema the node's DATABASE_URL names"
      : "the schema the role's search_path gives, public unless set";
  return [
    `[backup] ${databaseUrl === undefined ? "the data dir has no pglite/: the node kept its Postgres elsewhere (DATABASE_URL), and" : "DATABASE_URL is set:"} this archive holds the data dir only, not the node's Postgres tables (${which}).`,
    `[backup] Dump that schema now, before the node starts again: pg_dump --format=custom --schema=${name ?? "<schema>"} --file=<dump> "<DATABASE_URL without the parameters libpq refuses, such as search_path= and prepare=>" (deploy/README.md, Backup and restore)`,
  ].join("\n");
}

/** An http:// URL to another machine: the admin token goes out, and the archive comes back, as plain text. */
function crossesNetworkInClear(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" && !isLoopbackHost(parsed.hostname);
  } catch {
    return false; // refused as a bad URL by the request itself
  }
}

/** Said before the request: the token has gone by the time any answer could be judged. */
const plainHttpWarning = (url: string) =>
  `[backup] warning: ${new URL(url).origin} is plain http to another machine: EDGEWISE_TOKEN (an admin credential) and the archive (every secret of the node) cross the network unencrypted; reach the node over https:// (a proxy that terminates TLS), or run the command on the node's machine against http://127.0.0.1`;

/** `--online`: the running node at --url streams its archive; the admin token comes from EDGEWISE_TOKEN. */
async function backupOnline(
  values: { url?: string; "data-dir"?: string; timeout?: string },
  out: string,
): Promise<void> {
  if (!values.url) usage("--online needs --url <node>");
  if (values["data-dir"]) usage("--data-dir is the node's own with --online");
  const timeoutMs = values.timeout === undefined ? defaultTimeoutMs : parseDuration(values.timeout);
  // setTimeout fires at once past 2^31 - 1 ms (about 24 days).
  if (!timeoutMs || timeoutMs > 2 ** 31 - 1)
    usage(`--timeout takes a duration above zero and below 24d, e.g. 30s or 5m (not ${values.timeout})`);
  const token = env("EDGEWISE_TOKEN");
  if (!token) usage("--online needs an admin token in EDGEWISE_TOKEN (never on the command line)");
  if (crossesNetworkInClear(values.url)) console.error(plainHttpWarning(values.url));
  const manifest = await onlineBackup({ url: values.url, token, out, timeoutMs });
  const files = manifest.entries.filter((entry) => entry.type === "file").length;
  console.log(
    `[backup] ${values.url} (taken ${manifest.createdAt}) → ${out} (${files} files, checked, mode 0600); it holds secrets: store it as you store them`,
  );
}

try {
  await main();
} catch (error) {
  if (error instanceof ArchiveError) {
    console.error(
      `[restore] refused: the archive is corrupt or incomplete: ${error.message}; nothing was changed`,
    );
    process.exit(exitCodes.badArchive);
  }
  const message = isEdgewiseError(error) ? error.message : String((error as Error)?.message ?? error);
  console.error(`[${process.argv[2] ?? "backup"}] refused: ${message}`);
  process.exit(exitCodes.refused);
}
