// CLI: `npx bun deploy/local/broker/main.ts` runs the QStash-compatible broker, configured from the environment.
import { openBunSqlite } from "../../../actors/hosts/local/sqlite-bun.ts";
import { type DataDirLock, lockDataDir } from "../../data-dir-lock.ts";
import { exitOnStartFailure } from "../../start-failure.ts";
import { stopOnSignals } from "../../shutdown.ts";
import { parseConfig } from "../../../shared/config/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { mtlsFetch, watchTlsFiles } from "../../tls.ts";
import {
  DEV_CURRENT_SIGNING_KEY,
  DEV_NEXT_SIGNING_KEY,
  DEV_PORT,
  DEV_TOKEN,
  defaultDeliveryConcurrency,
  startBroker,
} from "./index.ts";

function number(name: string, fallback: number, check: (n: number) => boolean): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || !check(value)) {
    throw new EdgewiseError("config.invalid", `${name} is not valid (got ${JSON.stringify(text)})`);
  }
  return value;
}

const env = (name: string) => (process.env[name] === "" ? undefined : process.env[name]);

// The node's rule for this setting (shared/config), so both read it alike.
const { EDGEWISE_PGLITE_SYNC: pgliteSync } = parseConfig({
  EDGEWISE_PGLITE_SYNC: env("EDGEWISE_PGLITE_SYNC"),
});
const token = env("QSTASH_TOKEN");
// Delivering to actor hosts that require mutual TLS: the broker's own certificate (its role CA is the identity
// the actor host admits), and the CA of the hosts it delivers to. Reloaded when the files change.
const [certFile, keyFile, caFile] = [env("TLS_CERT_FILE"), env("TLS_KEY_FILE"), env("TLS_CA_FILE")];
if ((certFile === undefined) !== (keyFile === undefined)) {
  throw new EdgewiseError("config.invalid", "TLS_CERT_FILE and TLS_KEY_FILE go together");
}
const tls =
  certFile && keyFile
    ? watchTlsFiles(
        { cert: certFile, key: keyFile, ...(caFile ? { ca: caFile } : {}) },
        { onError: (error) => console.warn("[broker] tls: a rotated certificate was not applied:", error) },
      )
    : undefined;
const dataDir = env("EDGEWISE_DATA_DIR") ?? "./.edgewise";
// Why it could not start, in one line (the stack with LOG_LEVEL=debug), as the node says it; exit code 1.
const failed = exitOnStartFailure({
  DATABASE_URL: env("DATABASE_URL"),
  LOG_LEVEL: env("LOG_LEVEL") === "debug" ? "debug" : "info",
});
// On PGlite, one process at a time on the data dir's embedded Postgres (a node on the same dir included). Kept
// referenced until the broker stops: a collected connection would close, and its lock go with it.
let pgliteLock: DataDirLock | undefined;
try {
  pgliteLock = env("DATABASE_URL")
    ? undefined
    : lockDataDir(dataDir, "pglite", (path) => openBunSqlite(path, "NORMAL"));
} catch (error) {
  failed(error);
}
const broker = await startBroker({
  port: number("QSTASH_PORT", DEV_PORT, (n) => Number.isInteger(n) && n >= 0 && n <= 65535),
  hostname: env("QSTASH_HOST") ?? "127.0.0.1",
  databaseUrl: env("DATABASE_URL"),
  schema: env("QSTASH_DB_SCHEMA"),
  dataDir,
  pgliteSync,
  token,
  currentSigningKey: env("QSTASH_CURRENT_SIGNING_KEY"),
  nextSigningKey: env("QSTASH_NEXT_SIGNING_KEY"),
  timeScale: number("QSTASH_TIME_SCALE", 1, (n) => n > 0),
  deliveryConcurrency: number(
    "QSTASH_DELIVERY_CONCURRENCY",
    defaultDeliveryConcurrency(!env("DATABASE_URL")),
    (n) => Number.isInteger(n) && n > 0 && n <= 4096,
  ),
  ...(tls ? { fetch: mtlsFetch(tls) } : {}),
}).catch(failed);

// Only the public development defaults are printed; a token or key given by the user never is.
const shown = (value: string, fallback: string) => (value === fallback ? value : "(as configured)");
const store = process.env.DATABASE_URL ? "Postgres (DATABASE_URL)" : "embedded PGlite";
console.log(
  [
    `QStash-compatible broker running at ${broker.url} (${store})`,
    `QSTASH_URL=${broker.url}`,
    `QSTASH_TOKEN=${shown(broker.token, DEV_TOKEN)}`,
    `QSTASH_CURRENT_SIGNING_KEY=${shown(broker.currentSigningKey, DEV_CURRENT_SIGNING_KEY)}`,
    `QSTASH_NEXT_SIGNING_KEY=${shown(broker.nextSigningKey, DEV_NEXT_SIGNING_KEY)}`,
    ...(broker.recovered > 0
      ? [`Recovered ${broker.recovered} in-flight message(s); they will be redelivered.`]
      : []),
  ].join("\n"),
);

stopOnSignals(async () => {
  await broker.stop();
  pgliteLock?.release();
  tls?.close();
});
