// The split deployment as an operator runs it: `npm run certs`, then the broker, an actor host and a gateway as
// separate processes on one machine, every internal hop over TLS (mutual TLS to the actor host, HTTPS to the
// broker's API). Shared by the suites that run it.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DEV_CURRENT_SIGNING_KEY, DEV_NEXT_SIGNING_KEY, DEV_TOKEN } from "../../deploy/local/broker/index.ts";
import { TEST_DATABASE_URL } from "../broker/helpers.ts";
import { type Started, startProcess } from "../e2e/process.ts";

export const root = resolve(import.meta.dir, "../..");
const bun = process.execPath;

/** `npm run certs [-- <args>]` into `certs`; returns what it printed. */
export function runCerts(certs: string, args: string[] = []): string {
  const run = Bun.spawnSync([bun, join(root, "deploy/local/certs/main.ts"), ...args, "--out", certs], {
    cwd: root,
  });
  if (run.exitCode !== 0)
    throw new Error(`npm run certs ${args.join(" ")} failed:\n${run.stderr.toString()}`);
  return run.stdout.toString();
}

export interface SplitSettings {
  /** Where the processes' data dirs go. */
  work: string;
  /** The certificates directory (`npm run certs -- --out`). */
  certs: string;
  databaseUrl: string;
  jwtSecret: string;
  actorHostSecret: string;
  /** LOG_LEVEL of every process; default warn. */
  logLevel?: string;
}

/**
 * Settings for a suite's own deployment: a temp dir with its certificates, a database of its own (named in
 * `database`, for the suite to create and drop), and fresh secrets.
 */
export function freshSplitSettings(
  name: string,
  extra: Pick<SplitSettings, "logLevel"> = {},
): { settings: SplitSettings; database: string } {
  const work = mkdtempSync(join(tmpdir(), `edgewise-${name}-`));
  const database = `edgewise_${name.replaceAll("-", "_")}_${crypto.randomUUID().slice(0, 8)}`;
  const settings: SplitSettings = {
    work,
    certs: join(work, "certs"),
    databaseUrl: TEST_DATABASE_URL.replace(/\/[^/]*$/, `/${database}`),
    jwtSecret: crypto.randomUUID() + crypto.randomUUID(),
    actorHostSecret: crypto.randomUUID() + crypto.randomUUID(),
    ...extra,
  };
  return { settings, database };
}

/** One `POST /v1/counters/{key}/increment` by 1 through `base`, as the load of a rotation: its status, 0 if none came. */
export const incrementThrough = (base: string, key: string, token: string): Promise<number> =>
  fetch(`${base}/v1/counters/${key}/increment`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: '{"by":1}',
  }).then(
    (response) => response.status,
    () => 0,
  );

/** A node's queue settings: the broker at `url`, and with `certs`, the broker CA bundle it trusts for https. */
export const queueEnv = (url: string, certs?: string) => ({
  QSTASH_URL: url,
  QSTASH_TOKEN: DEV_TOKEN,
  QSTASH_CURRENT_SIGNING_KEY: DEV_CURRENT_SIGNING_KEY,
  QSTASH_NEXT_SIGNING_KEY: DEV_NEXT_SIGNING_KEY,
  ...(certs ? { QSTASH_CA_FILE: join(certs, "broker-ca-bundle.pem") } : {}),
});

/** The broker's settings: it delivers with its client certificate, and serves its API with its server one. */
export const brokerEnv = (settings: SplitSettings) => ({
  QSTASH_PORT: "0",
  DATABASE_URL: settings.databaseUrl,
  QSTASH_TIME_SCALE: "0.01",
  // The broker delivers to the actor host: its certificate is of the broker role; it trusts the host's CAs.
  TLS_CERT_FILE: join(settings.certs, "broker.pem"),
  TLS_KEY_FILE: join(settings.certs, "broker.key"),
  TLS_CA_FILE: join(settings.certs, "actor-host-ca-bundle.pem"),
  // Its API over https, so the token and the messages the nodes publish are never in clear.
  QSTASH_TLS_CERT_FILE: join(settings.certs, "broker-server.pem"),
  QSTASH_TLS_KEY_FILE: join(settings.certs, "broker-server.key"),
});

export const nodeEnv = (settings: SplitSettings, name: string) => ({
  HOST: "127.0.0.1",
  PORT: "0",
  DATABASE_URL: settings.databaseUrl,
  EDGEWISE_DATA_DIR: join(settings.work, name),
  JWT_SECRET: settings.jwtSecret,
  ACTOR_HOST_SECRET: settings.actorHostSecret,
  RATE_LIMIT: "1000000/60s",
  EDGEWISE_TRACING: "0",
  LOG_LEVEL: settings.logLevel ?? "warn",
});

/** A gateway's TLS settings: its client certificate, and the bundle of actor-host CAs it trusts. */
export const gatewayTls = (certs: string) => ({
  TLS_CERT_FILE: join(certs, "gateway.pem"),
  TLS_KEY_FILE: join(certs, "gateway.key"),
  TLS_CA_FILE: join(certs, "actor-host-ca-bundle.pem"),
});

export interface SplitDeployment {
  broker: Started;
  host: Started;
  gateway: Started;
  /** The started processes, in start order. */
  processes: Started[];
}

/** Starts the broker, then the actor host, then a gateway, with the certificates already in `settings.certs`. */
export async function startSplitDeployment(settings: SplitSettings): Promise<SplitDeployment> {
  const { certs } = settings;
  const processes: Started[] = [];
  try {
    const broker = await startProcess([bun, "deploy/local/broker/main.ts"], {
      cwd: root,
      pattern: /QSTASH_URL=(\S+)/,
      env: brokerEnv(settings),
    });
    processes.push(broker);
    const host = await startProcess([bun, "edge/entries/bun.ts"], {
      cwd: root,
      pattern: /listening on (\S+)/,
      env: {
        ...nodeEnv(settings, "actor-host"),
        ...queueEnv(broker.match, certs),
        // Serves HTTPS, and admits only clients whose certificate a gateway-role or broker-role CA issued.
        TLS_CERT_FILE: join(certs, "actor-host.pem"),
        TLS_KEY_FILE: join(certs, "actor-host.key"),
        TLS_CA_FILE: join(certs, "actor-host-clients-ca.pem"),
      },
    });
    processes.push(host);
    const gateway = await startProcess([bun, "edge/entries/bun.ts"], {
      cwd: root,
      pattern: /listening on (\S+)/,
      env: {
        ...nodeEnv(settings, "gateway"),
        ...queueEnv(broker.match, certs),
        ACTOR_HOST_URL: host.match,
        ...gatewayTls(certs),
      },
    });
    processes.push(gateway);
    return { broker, host, gateway, processes };
  } catch (error) {
    await stopProcesses(processes);
    throw error;
  }
}

/** SIGTERM (each drains), last started first. */
export async function stopProcesses(processes: Started[]): Promise<void> {
  for (const started of [...processes].reverse()) await started.kill("SIGTERM").catch(() => {});
}
