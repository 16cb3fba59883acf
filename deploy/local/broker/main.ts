// CLI: `npx bun deploy/local/broker/main.ts` runs the QStash-compatible broker, configured from the environment.
import { X509Certificate } from "node:crypto";
import { openBunSqlite } from "../../../actors/hosts/local/sqlite-bun.ts";
import { reportTightened, tightenDataDir } from "../../data-dir-files.ts";
import { type DataDirLock, lockDataDir } from "../../data-dir-lock.ts";
import { portBindable } from "../../node-port.ts";
import { exitOnStartFailure } from "../../start-failure.ts";
import { stopOnSignals } from "../../shutdown.ts";
import { exitWithHelp } from "../../cli-help.ts";
import { parseConfig } from "../../../shared/config/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { isLoopbackHost } from "../../../shared/net/ip.ts";
import { mtlsFetch, type TlsMaterial, type TlsPaths, tlsSummary, watchTlsFiles } from "../../tls.ts";
import {
  DEV_CURRENT_SIGNING_KEY,
  DEV_NEXT_SIGNING_KEY,
  DEV_PORT,
  DEV_TOKEN,
  defaultDeliveryConcurrency,
  startBroker,
} from "./index.ts";
import { isDevSigningKey } from "./config.ts";

/** A bad setting: `config.invalid` naming it, which stops the broker with exit code 78, as a node does. */
function settingError(name: string, message: string): EdgewiseError {
  return new EdgewiseError("config.invalid", message, { issues: [{ path: name, message }] });
}

function number(name: string, fallback: number, check: (n: number) => boolean): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || !check(value)) {
    throw settingError(name, `${name} is not valid (got ${JSON.stringify(text)})`);
  }
  return value;
}

/** The extended key usage of a certificate that may serve TLS (id-kp-serverAuth). */
const serverAuth = "1.3.6.1.5.5.7.3.1";

exitWithHelp([
  "usage: npm run broker",
  "The QStash-compatible broker alone, configured from the environment (deploy/local/broker/README.md lists it all):",
  "  QSTASH_PORT (8080; 0 picks a free port), QSTASH_HOST (127.0.0.1)",
  "  DATABASE_URL (else PGlite in EDGEWISE_DATA_DIR, ./.edgewise), QSTASH_DB_SCHEMA, EDGEWISE_PGLITE_SYNC (FULL)",
  "  QSTASH_TOKEN, QSTASH_CURRENT_SIGNING_KEY, QSTASH_NEXT_SIGNING_KEY (qstash dev's public ones, for loopback)",
  "  QSTASH_PREVIOUS_TOKEN (during a rotation of QSTASH_TOKEN: the old token, still accepted until unset)",
  "  QSTASH_TIME_SCALE (1), QSTASH_DELIVERY_CONCURRENCY (256 with DATABASE_URL, else 64)",
  "  EDGEWISE_BROKER_EVENT_RETENTION (7d), EDGEWISE_BROKER_DLQ_RETENTION (30d)",
  "  TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE (mutual TLS to actor hosts); QSTASH_TLS_CERT_FILE, QSTASH_TLS_KEY_FILE",
  "  (its API over HTTPS); LOG_LEVEL (debug adds a failed start's stack)",
  "It prints the four QSTASH_* values a node needs. A bad setting stops it with exit code 78.",
]);

const env = (name: string) => (process.env[name] === "" ? undefined : process.env[name]);

const dataDir = env("EDGEWISE_DATA_DIR") ?? "./.edgewise";
// Why it could not start, in one line (the stack with LOG_LEVEL=debug), as the node says it; exit code 78 for a
// setting, 1 otherwise.
// A busy port is the broker's own, QSTASH_PORT, not a node's PORT.
const failed: (error: unknown) => never = exitOnStartFailure(
  {
    DATABASE_URL: env("DATABASE_URL"),
    LOG_LEVEL: env("LOG_LEVEL") === "debug" ? "debug" : "info",
  },
  { variable: "QSTASH_PORT", port: env("QSTASH_PORT") ?? DEV_PORT },
);

/** The settings, read and checked before anything starts: a bad one stops the broker with one line. */
function readSettings() {
  // The node's rules for these settings (shared/config), so both read them alike.
  const {
    EDGEWISE_PGLITE_SYNC: pgliteSync,
    EDGEWISE_BROKER_EVENT_RETENTION: eventRetentionMs,
    EDGEWISE_BROKER_DLQ_RETENTION: dlqRetentionMs,
  } = parseConfig({
    EDGEWISE_PGLITE_SYNC: env("EDGEWISE_PGLITE_SYNC"),
    EDGEWISE_BROKER_EVENT_RETENTION: env("EDGEWISE_BROKER_EVENT_RETENTION"),
    EDGEWISE_BROKER_DLQ_RETENTION: env("EDGEWISE_BROKER_DLQ_RETENTION"),
    DATABASE_URL: env("DATABASE_URL"),
    // Only checked here (an obviously weak key is refused, as the receivers refuse it); read below.
    QSTASH_CURRENT_SIGNING_KEY: env("QSTASH_CURRENT_SIGNING_KEY"),
    QSTASH_NEXT_SIGNING_KEY: env("QSTASH_NEXT_SIGNING_KEY"),
  });
  // Delivering to actor hosts that require mutual TLS: the broker's own certificate (its role CA is the identity
  // the actor host admits), and the CA of the hosts it delivers to. Reloaded when the files change.
  const [certFile, keyFile, caFile] = [env("TLS_CERT_FILE"), env("TLS_KEY_FILE"), env("TLS_CA_FILE")];
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw settingError(
      certFile ? "TLS_KEY_FILE" : "TLS_CERT_FILE",
      "TLS_CERT_FILE and TLS_KEY_FILE go together",
    );
  }
  // As on a node: the CA is for mutual TLS, and alone it would be ignored, which no one setting it means.
  if (caFile !== undefined && certFile === undefined) {
    throw settingError(
      "TLS_CERT_FILE",
      "TLS_CA_FILE (mutual TLS) needs TLS_CERT_FILE and TLS_KEY_FILE, the broker's client certificate",
    );
  }
  // Serving the API over HTTPS: a server certificate of its own, not the client certificate above (another usage, and
  // the names of the broker's address). Nodes trust its CA with QSTASH_CA_FILE. Reloaded when the files change.
  const [serverCert, serverKey] = [env("QSTASH_TLS_CERT_FILE"), env("QSTASH_TLS_KEY_FILE")];
  if ((serverCert === undefined) !== (serverKey === undefined)) {
    throw settingError(
      serverCert ? "QSTASH_TLS_KEY_FILE" : "QSTASH_TLS_CERT_FILE",
      "QSTASH_TLS_CERT_FILE and QSTASH_TLS_KEY_FILE go together",
    );
  }
  // The embedded PGlite keeps the broker's tables in public: a schema asked for there would be ignored.
  if (env("QSTASH_DB_SCHEMA") !== undefined && env("DATABASE_URL") === undefined) {
    throw settingError(
      "QSTASH_DB_SCHEMA",
      "QSTASH_DB_SCHEMA needs DATABASE_URL: the embedded PGlite keeps the broker's tables in its public schema",
    );
  }
  // The qstash dev token is public (Upstash's docs): on a broker reachable from other machines it would let anyone
  // publish, and the broker signs and delivers what they publish, with its broker-role certificate, so an actor
  // host's mutual TLS and signature checks admit it. Beyond loopback, a token of one's own is required.
  const host = env("QSTASH_HOST") ?? "127.0.0.1";
  const token = env("QSTASH_TOKEN");
  if (!isLoopbackHost(host) && (token === undefined || token === DEV_TOKEN)) {
    throw settingError(
      "QSTASH_TOKEN",
      `QSTASH_HOST ${host} is reachable beyond this machine: set QSTASH_TOKEN to a secret of your own (the default is qstash dev's public token, with which anyone could publish)`,
    );
  }
  const previousToken = env("QSTASH_PREVIOUS_TOKEN");
  if (previousToken !== undefined && token === undefined) {
    throw settingError(
      "QSTASH_PREVIOUS_TOKEN",
      "QSTASH_PREVIOUS_TOKEN is accepted beside QSTASH_TOKEN during a rotation: set QSTASH_TOKEN to the new token",
    );
  }
  if (previousToken !== undefined && (previousToken === token || previousToken === DEV_TOKEN)) {
    throw settingError(
      "QSTASH_PREVIOUS_TOKEN",
      "QSTASH_PREVIOUS_TOKEN must be the token being replaced: not QSTASH_TOKEN itself, nor qstash dev's public one",
    );
  }
  return {
    host,
    token,
    previousToken,
    pgliteSync,
    eventRetentionMs,
    dlqRetentionMs,
    port: number("QSTASH_PORT", DEV_PORT, (n) => Number.isInteger(n) && n >= 0 && n <= 65535),
    timeScale: number("QSTASH_TIME_SCALE", 1, (n) => n > 0),
    deliveryConcurrency: number(
      "QSTASH_DELIVERY_CONCURRENCY",
      defaultDeliveryConcurrency(!env("DATABASE_URL")),
      (n) => Number.isInteger(n) && n > 0 && n <= 4096,
    ),
    tlsFiles:
      certFile && keyFile ? { cert: certFile, key: keyFile, ...(caFile ? { ca: caFile } : {}) } : undefined,
    serverTlsFiles: serverCert && serverKey ? { cert: serverCert, key: serverKey } : undefined,
  };
}

let settings: ReturnType<typeof readSettings>;
try {
  settings = readSettings();
} catch (error) {
  failed(error);
}
const { tlsFiles, serverTlsFiles, token, previousToken } = settings;
const watchOrFail = (paths: TlsPaths | undefined, what: string) => {
  if (!paths) return undefined;
  try {
    return watchTlsFiles(paths, {
      onError: (error) => console.warn(`[broker] tls: a rotated ${what} was not applied:`, error),
    });
  } catch (error) {
    failed(error);
  }
};
const tls = watchOrFail(tlsFiles, "client certificate");
if (tls) {
  // As a node logs it: the line an operator waits for during a CA rotation (SECURITY.md, "Rotating a role CA").
  const applied = (what: string) => (material: TlsMaterial) => {
    const { presents, trusts } = tlsSummary(material);
    console.log(`[broker] tls: certificate files ${what}: presents ${presents}; trusts ${trusts.join(", ")}`);
  };
  applied("loaded")(tls.current());
  tls.onChange(applied("applied"));
}
// The API's own certificate: logged apart, as a listener's, once a rotated one serves every new connection.
const serverTls = watchOrFail(serverTlsFiles, "server certificate");
const serverApplied = (what: string) => (material: TlsMaterial) =>
  console.log(`[broker] https: server certificate ${what}: presents ${tlsSummary(material).presents}`);
if (serverTls) {
  // A client certificate there (broker.pem, for deliveries, instead of broker-server.pem) would be refused by every
  // node at the handshake, with a message about the node: said here instead, by name.
  const usages = new X509Certificate(serverTls.current().cert).keyUsage;
  if (usages !== undefined && !usages.includes(serverAuth)) {
    failed(
      settingError(
        "QSTASH_TLS_CERT_FILE",
        `QSTASH_TLS_CERT_FILE holds a certificate that may not serve TLS (no serverAuth in its extended key usage): a client certificate? npm run certs issues the broker's as broker-server.pem`,
      ),
    );
  }
  serverApplied("loaded")(serverTls.current());
}
// Beyond loopback in plain HTTP, the token and every message body cross the network in clear. Warned, not refused:
// a broker on a private network, or behind a proxy that terminates TLS, may be what its operator chose.
if (!serverTls && !isLoopbackHost(settings.host)) {
  console.warn(
    `[broker] warning: QSTASH_HOST ${settings.host} is reachable beyond this machine over plain HTTP: QSTASH_TOKEN and every message body cross the network in clear. Set QSTASH_TLS_CERT_FILE and QSTASH_TLS_KEY_FILE to serve HTTPS (npm run certs issues broker-server.pem), unless TLS is terminated in front of the broker.`,
  );
}
// Beyond loopback, deliveries signed with qstash dev's public keys can be forged by anyone: an actor host that
// trusts those keys (to accept this broker's deliveries) accepts anyone's. Warned, not refused, as a node is
// (deploy/secrets.ts publicSigningKeysWarning).
const signingKeys = [env("QSTASH_CURRENT_SIGNING_KEY"), env("QSTASH_NEXT_SIGNING_KEY")];
if (!isLoopbackHost(settings.host) && signingKeys.some((key) => key === undefined || isDevSigningKey(key))) {
  console.warn(
    `[broker] warning: QSTASH_HOST ${settings.host} is reachable beyond this machine and its signing keys are qstash dev's public ones: anyone can sign a delivery that an actor host trusting those keys accepts. Set QSTASH_CURRENT_SIGNING_KEY and QSTASH_NEXT_SIGNING_KEY to keys of your own and set the same ones on the actor hosts.`,
  );
}
// A rotation left half done keeps the old token working: said at every start until it is unset.
if (previousToken !== undefined) {
  console.warn(
    "[broker] warning: QSTASH_PREVIOUS_TOKEN is still accepted beside QSTASH_TOKEN (a token rotation under way); once every publisher uses the new token, restart without it to refuse the old one.",
  );
}
// The port first, as a node asks it (deploy/node-port.ts): a start refused for a busy port makes no data dir, lock
// or PGlite files. Found only when the broker listened, a first start left them all behind.
await portBindable(settings.host, settings.port).catch(failed);
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
if (pgliteLock) {
  // As a node does: files an earlier version left readable by others (PGlite's were 0666) made private.
  reportTightened(dataDir, tightenDataDir(dataDir), (message, paths) =>
    console.warn(`[broker] ${message}: ${paths.join(", ")}`),
  );
}
const broker = await startBroker({
  port: settings.port,
  hostname: settings.host,
  databaseUrl: env("DATABASE_URL"),
  schema: env("QSTASH_DB_SCHEMA"),
  dataDir,
  pgliteSync: settings.pgliteSync,
  token,
  previousToken,
  currentSigningKey: env("QSTASH_CURRENT_SIGNING_KEY"),
  nextSigningKey: env("QSTASH_NEXT_SIGNING_KEY"),
  timeScale: settings.timeScale,
  deliveryConcurrency: settings.deliveryConcurrency,
  eventRetentionMs: settings.eventRetentionMs,
  dlqRetentionMs: settings.dlqRetentionMs,
  ...(tls ? { fetch: mtlsFetch(tls) } : {}),
  ...(serverTls ? { tls: { files: serverTls, onApplied: serverApplied("applied") } } : {}),
}).catch(failed);

// Only the public development defaults are printed; a token or key given by the user never is.
const shown = (value: string, fallback: string) => (value === fallback ? value : "(as configured)");
const store = process.env.DATABASE_URL ? "Postgres (DATABASE_URL)" : "embedded PGlite";
// Bound to a wildcard, the URL above is this machine's loopback; other machines use one of its own addresses.
const everyInterface = ["0.0.0.0", "::"].includes(settings.host)
  ? `, listening on every interface (${settings.host})`
  : "";
console.log(
  [
    `QStash-compatible broker running at ${broker.url} (${store})${everyInterface}`,
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
  serverTls?.close();
});
