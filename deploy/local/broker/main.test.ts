// `npm run broker` refuses a bad setting before it starts: one line naming it, exit code 78, as a node does.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../../../test/broker/helpers.ts";
import { startProcess } from "../../../test/e2e/process.ts";
import { issueCert, makeCa } from "../certs/openssl.ts";

const dataDir = mkdtempSync(join(tmpdir(), "edgewise-broker-cli-"));
const schemas: string[] = [];
afterAll(async () => {
  rmSync(dataDir, { recursive: true, force: true });
  for (const schema of schemas) await dropSchema(schema);
});

async function start(settings: Record<string, string>) {
  const child = Bun.spawn([process.execPath, join(import.meta.dir, "main.ts")], {
    env: { ...process.env, DATABASE_URL: "", EDGEWISE_DATA_DIR: dataDir, QSTASH_PORT: "0", ...settings },
    stdout: "pipe",
    stderr: "pipe",
  });
  // A broker that starts when it should have refused would run until killed: end it, so the test fails, not hangs.
  const started = setTimeout(() => child.kill(), 15_000);
  void child.exited.then(() => clearTimeout(started));
  const [code, stdout, stderr] = await Promise.all([
    child.exited,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  return { code, stdout, lines: stderr.trim().split("\n") };
}

describe("the broker's CLI settings", () => {
  test.each([
    [{ TLS_CA_FILE: "/nonexistent/ca.pem" }, "TLS_CA_FILE (mutual TLS) needs TLS_CERT_FILE and TLS_KEY_FILE"],
    [{ TLS_CERT_FILE: "/nonexistent/cert.pem" }, "TLS_CERT_FILE and TLS_KEY_FILE go together"],
    [
      { QSTASH_TLS_CERT_FILE: "/nonexistent/cert.pem" },
      "QSTASH_TLS_CERT_FILE and QSTASH_TLS_KEY_FILE go together",
    ],
    [{ QSTASH_PORT: "eighty" }, 'QSTASH_PORT is not valid (got "eighty")'],
    [{ QSTASH_TIME_SCALE: "0" }, 'QSTASH_TIME_SCALE is not valid (got "0")'],
    [{ EDGEWISE_PGLITE_SYNC: "SOMETIMES" }, "EDGEWISE_PGLITE_SYNC must be FULL or NORMAL"],
    [{ DATABASE_URL: "postgres://app:ab/cd#ef@127.0.0.1:5432/db" }, "DATABASE_URL is not a valid URL"],
    // README: QSTASH_DB_SCHEMA is only with DATABASE_URL, refused on PGlite. It was refused, but late (exit 1, after
    // taking the data dir's lock) and by startBroker's option names ("schema needs databaseUrl").
    [{ QSTASH_DB_SCHEMA: "queue" }, "QSTASH_DB_SCHEMA needs DATABASE_URL"],
    // Its retentions are read as a node reads them (they were not read at all: 7 days of events whatever was set).
    [{ EDGEWISE_BROKER_EVENT_RETENTION: "a week" }, "EDGEWISE_BROKER_EVENT_RETENTION"],
    [{ EDGEWISE_BROKER_DLQ_RETENTION: "1h" }, "EDGEWISE_BROKER_DLQ_RETENTION must be at least 1d"],
    // The receivers refuse an obviously weak key (shared/config): the broker signed with it all the same.
    [{ QSTASH_CURRENT_SIGNING_KEY: "sig_current" }, "QSTASH_CURRENT_SIGNING_KEY is too weak to sign with"],
    [{ QSTASH_NEXT_SIGNING_KEY: "a" }, "QSTASH_NEXT_SIGNING_KEY is too weak to sign with"],
  ])("%p is refused with one line and exit code 78", async (settings, reason) => {
    const { code, stdout, lines } = await start(settings);
    expect(code).toBe(78);
    expect(lines[0]).toStartWith("[edgewise] could not start: config.invalid:");
    expect(lines.join("\n")).toContain(reason);
    // Refused before it listened or opened anything: no broker line, no stack.
    expect(stdout).not.toContain("broker running");
    expect(lines.join("\n")).not.toContain("    at ");
  });

  // The qstash dev token is public: a broker reachable beyond this machine with it lets anyone publish, and the
  // broker signs and delivers what they publish (over its broker-role certificate, past an actor host's mutual TLS).
  test.each([
    [{ QSTASH_HOST: "0.0.0.0" }],
    [{ QSTASH_HOST: "::" }],
    [
      {
        QSTASH_HOST: "10.1.2.3",
        QSTASH_TOKEN: "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=",
      },
    ],
  ])(
    "listening beyond loopback with the public dev token (%p) is refused with exit code 78",
    async (settings) => {
      const { code, stdout, lines } = await start(settings);
      expect(code).toBe(78);
      expect(lines[0]).toStartWith("[edgewise] could not start: config.invalid:");
      expect(lines.join("\n")).toContain("QSTASH_TOKEN");
      expect(stdout).not.toContain("broker running");
    },
  );

  test("a busy port names the port and QSTASH_PORT, the broker's setting, not a node's PORT, and makes no data dir", async () => {
    const holder = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("taken") });
    const firstStart = join(dataDir, "busy-port", "new", ".edgewise");
    try {
      const { code, stdout, lines } = await start({
        QSTASH_PORT: String(holder.port),
        EDGEWISE_DATA_DIR: firstStart,
      });
      expect(code).toBe(1);
      expect(stdout).not.toContain("broker running");
      expect(lines[0]).toBe(
        `[edgewise] could not start: port ${holder.port} is in use: stop what holds it, or set QSTASH_PORT`,
      );
      // The port is tried before the data dir is made: nothing of it, nor its parents, is left behind.
      expect(existsSync(join(dataDir, "busy-port"))).toBe(false);
    } finally {
      holder.stop(true);
    }
  });

  test("a client certificate as the API's (QSTASH_TLS_CERT_FILE=broker.pem) is refused by name, exit code 78", async () => {
    const ca = makeCa({
      cert: join(dataDir, "ca.pem"),
      key: join(dataDir, "ca.key"),
      commonName: "Edgewise broker CA",
    });
    const client = issueCert({
      cert: join(dataDir, "broker.pem"),
      key: join(dataDir, "broker.key"),
      ca,
      commonName: "edgewise broker",
      usage: ["clientAuth"],
    });
    const { code, stdout, lines } = await start({
      QSTASH_TLS_CERT_FILE: client.cert,
      QSTASH_TLS_KEY_FILE: client.key,
    });
    expect(code).toBe(78);
    expect(lines[0]).toStartWith("[edgewise] could not start: config.invalid: QSTASH_TLS_CERT_FILE");
    expect(stdout).not.toContain("broker running");
  });
});

// Beyond loopback in plain HTTP, the token and every message cross the network in clear: warned, not refused (a
// private network, or TLS terminated in front of the broker, may be the operator's choice). With its own server
// certificate the broker serves HTTPS, and says nothing.
describe("the broker's API beyond loopback", () => {
  const running = async (settings: Record<string, string>, whileUp?: (url: string) => Promise<void>) => {
    const schema = uniqueSchema("broker_cli");
    schemas.push(schema);
    const broker = await startProcess([process.execPath, join(import.meta.dir, "main.ts")], {
      cwd: import.meta.dir,
      pattern: /QSTASH_URL=(\S+)/,
      env: {
        DATABASE_URL: TEST_DATABASE_URL,
        QSTASH_DB_SCHEMA: schema,
        QSTASH_PORT: "0",
        QSTASH_HOST: "0.0.0.0",
        QSTASH_TOKEN: crypto.randomUUID(),
        ...settings,
      },
      timeoutMs: 15_000,
    });
    try {
      await whileUp?.(broker.match);
    } finally {
      await broker.kill("SIGTERM");
    }
    return { url: broker.match, output: broker.output() };
  };

  test("over plain HTTP it starts, and warns that the token and messages cross the network in clear", async () => {
    const { url, output } = await running({});
    expect(url).toStartWith("http://");
    expect(output).toContain("QSTASH_HOST 0.0.0.0 is reachable beyond this machine over plain HTTP");
    expect(output).toContain("QSTASH_TLS_CERT_FILE");
  });

  // The printed QSTASH_URL is what a user pastes into a node: a wildcard bind address (0.0.0.0, ::) is no address
  // to dial, and an IPv6 one needs brackets in a URL.
  test.each(["0.0.0.0", "::"])(
    "bound to every interface (%p), the printed QSTASH_URL is one this machine can call, and says what it listens on",
    async (host) => {
      const { url, output } = await running({ QSTASH_HOST: host }, async (printed) => {
        const health = await fetch(new URL("/healthz", printed));
        expect(health.status).toBe(200);
      });
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(output).toContain(`listening on every interface (${host})`);
    },
  );

  test("bound to an IPv6 address, the printed QSTASH_URL has it in brackets", async () => {
    const { url } = await running({ QSTASH_HOST: "::1" }, async (printed) => {
      expect((await fetch(new URL("/healthz", printed))).status).toBe(200);
    });
    expect(url).toMatch(/^http:\/\/\[::1\]:\d+$/);
  });

  // qstash dev's signing keys are public: beyond loopback, anyone could sign a delivery that an actor host trusting
  // them accepts. Before, the broker started without a word about it.
  const publicKeys = "its signing keys are qstash dev's public ones";
  test.each([
    [{}],
    [{ QSTASH_CURRENT_SIGNING_KEY: `sig_${crypto.randomUUID()}` }],
    [{ QSTASH_CURRENT_SIGNING_KEY: "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r" }],
  ])("with a public signing key (%p) it warns once, naming the settings", async (settings) => {
    const { output } = await running(settings);
    expect(output.split(publicKeys).length - 1).toBe(1);
    expect(output).toContain("[broker] warning: QSTASH_HOST 0.0.0.0 is reachable beyond this machine");
    expect(output).toContain("Set QSTASH_CURRENT_SIGNING_KEY and QSTASH_NEXT_SIGNING_KEY");
  });

  test("with signing keys of its own, or on loopback with the public ones, it does not warn about them", async () => {
    const own = await running({
      QSTASH_CURRENT_SIGNING_KEY: `sig_${crypto.randomUUID()}`,
      QSTASH_NEXT_SIGNING_KEY: `sig_${crypto.randomUUID()}`,
    });
    expect(own.output).toContain("QSTASH_URL=");
    expect(own.output).not.toContain(publicKeys);
    const loopback = await running({ QSTASH_HOST: "127.0.0.1" });
    expect(loopback.output).toContain("QSTASH_URL=");
    expect(loopback.output).not.toContain(publicKeys);
  });

  test("with QSTASH_TLS_CERT_FILE it serves https, and does not warn", async () => {
    const ca = makeCa({
      cert: join(dataDir, "ca2.pem"),
      key: join(dataDir, "ca2.key"),
      commonName: "Edgewise broker CA",
    });
    const server = issueCert({
      cert: join(dataDir, "broker-server.pem"),
      key: join(dataDir, "broker-server.key"),
      ca,
      commonName: "edgewise broker-server",
      sans: ["IP:127.0.0.1"],
      usage: ["serverAuth"],
    });
    const { url, output } = await running({
      QSTASH_TLS_CERT_FILE: server.cert,
      QSTASH_TLS_KEY_FILE: server.key,
    });
    expect(url).toStartWith("https://");
    expect(output).toContain("[broker] https: server certificate loaded: presents edgewise broker-server");
    expect(output).not.toContain("plain HTTP");
  });
});
