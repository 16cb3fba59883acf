// A real PgBouncer in transaction pooling mode on loopback, in front of the test Postgres, started by the test itself.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "bun:test";
import { createSchema, dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../broker/helpers.ts";
import { restartablePort } from "./ports.ts";

/** Debian's `pgbouncer` package (`.ci/run` installs it); tests that need it skip when it is missing. */
export const pgbouncerBinary: string | undefined = [Bun.which("pgbouncer"), "/usr/sbin/pgbouncer"].find(
  (path): path is string => Boolean(path && existsSync(path)),
);

export interface PgBouncer {
  /** A DATABASE_URL through the pooler, to the test database. */
  url: string;
  /** Everything PgBouncer logged so far. */
  log(): string;
  stop(): Promise<void>;
}

export interface PgBouncerOptions {
  /** Every server connection's search_path (`connect_query`), as an operator would give a pooled deployment. */
  schema?: string;
  /** The server database behind it. Default: the test database. */
  database?: string;
  /** More `[pgbouncer]` settings, e.g. `ignore_startup_parameters = search_path`. */
  settings?: string[];
}

/**
 * pool_mode=transaction: each transaction (or statement outside one) gets whichever server connection is free, so
 * session state (named prepared statements, session advisory locks, SET, LISTEN) does not follow the client.
 * PgBouncer refuses to run as root: as root (CI), it drops to `nobody`.
 */
export async function startPgBouncer(options: PgBouncerOptions = {}): Promise<PgBouncer> {
  if (!pgbouncerBinary) throw new Error("pgbouncer is not installed (apt-get install pgbouncer)");
  const target = new URL(TEST_DATABASE_URL);
  const dir = mkdtempSync(join(tmpdir(), "edgewise-pgbouncer-"));
  const port = restartablePort();
  const server = [
    `host=${target.hostname}`,
    `port=${target.port || 5432}`,
    `dbname=${options.database ?? (target.pathname.slice(1) || "postgres")}`,
    `user=${decodeURIComponent(target.username) || "postgres"}`,
    ...(target.password ? [`password=${decodeURIComponent(target.password)}`] : []),
    ...(options.schema ? [`connect_query='SET search_path TO ${options.schema}'`] : []),
  ].join(" ");
  const config = join(dir, "pgbouncer.ini");
  writeFileSync(
    config,
    [
      "[databases]",
      `edgewise = ${server}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = any",
      "pool_mode = transaction",
      "default_pool_size = 4",
      "max_client_conn = 200",
      ...(options.settings ?? []),
      "",
    ].join("\n"),
    { mode: 0o644 },
  );
  const asRoot = process.getuid?.() === 0;
  const child = Bun.spawn([pgbouncerBinary, ...(asRoot ? ["-u", "nobody"] : []), config], {
    stdout: "pipe",
    stderr: "pipe",
  });
  let output = "";
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    const reader = stream.getReader();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
      output += new TextDecoder().decode(chunk.value);
  };
  void drain(child.stdout);
  void drain(child.stderr);
  const stop = async () => {
    child.kill("SIGTERM");
    await Promise.race([child.exited, Bun.sleep(3_000)]);
    if (child.exitCode === null) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  for (const deadline = Date.now() + 5_000; !output.includes("listening on"); ) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`pgbouncer did not start: ${output}`);
    }
    await Bun.sleep(20);
  }
  return { url: `postgres://postgres@127.0.0.1:${port}/edgewise`, log: () => output, stop };
}

/**
 * For a describe block: a schema of its own, and a PgBouncer that puts every server connection in it (as an
 * operator gives a pooled deployment its schema), made before the block's tests and removed after them.
 */
export function usePooledSchema(name: string): { schema: string; readonly pooler: PgBouncer } {
  const schema = uniqueSchema(name);
  let pooler: PgBouncer | undefined;
  beforeAll(async () => {
    await createSchema(schema);
    pooler = await startPgBouncer({ schema });
  });
  afterAll(async () => {
    await pooler?.stop();
    await dropSchema(schema);
  });
  return {
    schema,
    get pooler() {
      if (!pooler) throw new Error("the pooler is not started");
      return pooler;
    },
  };
}
