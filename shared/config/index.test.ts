// Configuration: defaults, parsing, and errors that name the variable without echoing its value.
import { describe, expect, test } from "bun:test";
import { EdgewiseError } from "../errors/index.ts";
import { parseConfig, parseDuration } from "./index.ts";

describe("configuration", () => {
  test("defaults apply when nothing is set", () => {
    const config = parseConfig({});
    expect(config.PORT).toBe(8787);
    expect(config.EDGEWISE_DATA_DIR).toBe("./.edgewise");
    expect(config.EDGEWISE_INBOX_RETENTION).toBe(7 * 86_400_000);
    expect(config.EDGEWISE_BROKER_EVENT_RETENTION).toBe(7 * 86_400_000);
    expect(parseConfig({ EDGEWISE_BROKER_EVENT_RETENTION: "1d" }).EDGEWISE_BROKER_EVENT_RETENTION).toBe(
      86_400_000,
    );
    expect(config.EDGEWISE_SQLITE_SYNC).toBe("FULL");
    expect(config.EDGEWISE_PGLITE_SYNC).toBe("FULL");
    expect(parseConfig({ EDGEWISE_PGLITE_SYNC: "NORMAL" }).EDGEWISE_PGLITE_SYNC).toBe("NORMAL");
    expect(() => parseConfig({ EDGEWISE_PGLITE_SYNC: "OFF" })).toThrow(
      "EDGEWISE_PGLITE_SYNC must be FULL or NORMAL",
    );
  });

  test("values are parsed and empty strings count as unset", () => {
    const config = parseConfig({ PORT: "9000", EDGEWISE_IDLE_EVICT: "90s", EDGEWISE_DATA_DIR: "" });
    expect(config.PORT).toBe(9000);
    expect(config.EDGEWISE_IDLE_EVICT).toBe(90_000);
    expect(config.EDGEWISE_MAX_ACTORS).toBe(10_000);
    expect(parseConfig({ EDGEWISE_MAX_ACTORS: "500" }).EDGEWISE_MAX_ACTORS).toBe(500);
    expect(() => parseConfig({ EDGEWISE_MAX_ACTORS: "0" })).toThrow("EDGEWISE_MAX_ACTORS must be at least 1");
    expect(config.EDGEWISE_DATA_DIR).toBe("./.edgewise");
  });

  test("every bad variable is reported at once, by name, without echoing its value", () => {
    let caught: unknown;
    try {
      parseConfig({ PORT: "80a80", EDGEWISE_INBOX_RETENTION: "forever", EDGEWISE_SQLITE_SYNC: "sometimes" });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(EdgewiseError);
    const error = caught as EdgewiseError;
    expect(error.code).toBe("config.invalid");
    expect(error.issues?.map((issue) => issue.path).sort()).toEqual([
      "EDGEWISE_INBOX_RETENTION",
      "EDGEWISE_SQLITE_SYNC",
      "PORT",
    ]);
    expect(error.message).toContain("PORT must be a whole number");
    expect(error.message).toContain("EDGEWISE_INBOX_RETENTION must be a duration");
    expect(error.message).not.toContain("80a80");
    expect(() => parseConfig({ PORT: "70000" })).toThrow("PORT must be between 0 and 65535");
  });

  test("durations", () => {
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("1.5s")).toBe(1500);
    expect(parseDuration("2h")).toBe(7_200_000);
    expect(parseDuration("7")).toBeUndefined();
    expect(parseDuration("-1s")).toBeUndefined();
  });
});

describe("broker configuration", () => {
  test("a broker URL needs its token and both signing keys", () => {
    expect(() => parseConfig({ QSTASH_URL: "http://127.0.0.1:8080" })).toThrow(
      "QSTASH_TOKEN, QSTASH_CURRENT_SIGNING_KEY, QSTASH_NEXT_SIGNING_KEY must be too",
    );
    const config = parseConfig({
      QSTASH_URL: "http://127.0.0.1:8080",
      QSTASH_TOKEN: "t",
      QSTASH_CURRENT_SIGNING_KEY: "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r",
      QSTASH_NEXT_SIGNING_KEY: "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs",
    });
    expect(config.QSTASH_URL).toBe("http://127.0.0.1:8080");
  });

  test("QSTASH_CA_FILE needs an https:// QSTASH_URL: with http://, or none, the hop would be plain text", () => {
    const broker = {
      QSTASH_TOKEN: "t",
      QSTASH_CURRENT_SIGNING_KEY: "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r",
      QSTASH_NEXT_SIGNING_KEY: "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs",
      QSTASH_CA_FILE: "/etc/edgewise/broker-ca-bundle.pem",
    };
    expect(() => parseConfig({ ...broker, QSTASH_URL: "http://10.0.0.5:8080" })).toThrow(
      "QSTASH_URL: must be https:// when QSTASH_CA_FILE is set",
    );
    expect(() => parseConfig({ QSTASH_CA_FILE: broker.QSTASH_CA_FILE })).toThrow(
      "QSTASH_CA_FILE: needs QSTASH_URL",
    );
    const config = parseConfig({ ...broker, QSTASH_URL: "https://broker.internal:8080" });
    expect(config.QSTASH_CA_FILE).toBe(broker.QSTASH_CA_FILE);
  });

  test("turn time limit: 30 s by default, a duration above 0", () => {
    expect(parseConfig({}).EDGEWISE_TURN_TIMEOUT).toBe(30_000);
    expect(parseConfig({ EDGEWISE_TURN_TIMEOUT: "500ms" }).EDGEWISE_TURN_TIMEOUT).toBe(500);
    expect(() => parseConfig({ EDGEWISE_TURN_TIMEOUT: "0s" })).toThrow(
      "EDGEWISE_TURN_TIMEOUT must be above 0",
    );
    expect(() => parseConfig({ EDGEWISE_TURN_TIMEOUT: "soon" })).toThrow(
      "EDGEWISE_TURN_TIMEOUT must be a duration",
    );
  });

  test("JWT maximum lifetime: none by default, a duration of at least 1 s", () => {
    expect(parseConfig({}).JWT_MAX_LIFETIME).toBeUndefined();
    expect(parseConfig({ JWT_MAX_LIFETIME: "1h" }).JWT_MAX_LIFETIME).toBe(3_600_000);
    expect(() => parseConfig({ JWT_MAX_LIFETIME: "500ms" })).toThrow("JWT_MAX_LIFETIME must be at least 1s");
    expect(() => parseConfig({ JWT_MAX_LIFETIME: "forever" })).toThrow("JWT_MAX_LIFETIME must be a duration");
  });

  test("broker retries: 3 by default, a whole number up to 20", () => {
    expect(parseConfig({}).EDGEWISE_DELIVERY_RETRIES).toBe(3);
    expect(parseConfig({ EDGEWISE_DELIVERY_RETRIES: "0" }).EDGEWISE_DELIVERY_RETRIES).toBe(0);
    expect(() => parseConfig({ EDGEWISE_DELIVERY_RETRIES: "21" })).toThrow(
      "EDGEWISE_DELIVERY_RETRIES must be at most 20",
    );
    expect(() => parseConfig({ EDGEWISE_DELIVERY_RETRIES: "two" })).toThrow(
      "EDGEWISE_DELIVERY_RETRIES must be a whole number",
    );
  });

  test("the embedded broker's delivery concurrency: unset by default, a whole number from 1 to 4096", () => {
    expect(parseConfig({}).QSTASH_DELIVERY_CONCURRENCY).toBeUndefined();
    expect(parseConfig({ QSTASH_DELIVERY_CONCURRENCY: "32" }).QSTASH_DELIVERY_CONCURRENCY).toBe(32);
    for (const bad of ["0", "4097", "1.5", "-1", "many"]) {
      expect(() => parseConfig({ QSTASH_DELIVERY_CONCURRENCY: bad })).toThrow(
        "QSTASH_DELIVERY_CONCURRENCY must",
      );
    }
  });

  test("URLs are checked", () => {
    expect(() => parseConfig({ DATABASE_URL: "mysql://x" })).toThrow(
      "DATABASE_URL must be a postgres:// URL",
    );
    expect(() => parseConfig({ PUBLIC_URL: "not a url" })).toThrow("PUBLIC_URL must be a URL");
  });

  // A base64 password with a `/` is the usual cause: postgres.js then failed at start with a bare "Invalid URL"
  // (exit 1, no variable named). It is a setting to fix (exit 78), and the message never quotes the password.
  test.each([
    ["DATABASE_URL", "postgres://app:ab/cd#PLANTED@127.0.0.1:5432/db"],
    ["DATABASE_URL", "postgres://app:PLANTED@db host/db"],
    ["REDIS_URL", "redis://default:ab/c#dPLANTED@127.0.0.1:6379"],
    // A bare `%` parses as a URL, but decoding the password fails (postgres.js: a bare "URI error" at start).
    ["DATABASE_URL", "postgres://app:50%offPLANTED@127.0.0.1:5432/db"],
    ["REDIS_URL", "redis://default:50%offPLANTED@127.0.0.1:6379"],
  ])("%s that does not parse as a URL is refused by name, without its password", (name, value) => {
    let message = "";
    try {
      parseConfig({ [name]: value });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(`${name} is not a valid URL`);
    expect(message).toContain("percent-encode");
    expect(message).not.toContain("PLANTED");
  });

  test("connection strings that postgres.js and Redis clients take still pass", () => {
    for (const url of [
      "postgres://app:p%2Fss%23word@127.0.0.1:5432/db?sslmode=verify-full&sslrootcert=system",
      "postgresql://app@h1:5432,h2:5433,h3/db?target_session_attrs=read-write",
      "postgres://app:pw@[::1]:5432/db",
    ]) {
      expect(parseConfig({ DATABASE_URL: url }).DATABASE_URL).toBe(url);
    }
    expect(parseConfig({ REDIS_URL: "rediss://default:p%2Fw@127.0.0.1:6380/0" }).REDIS_URL).toBeDefined();
  });
});

describe("gateway configuration", () => {
  test("rates, sizes and lists", () => {
    const config = parseConfig({
      RATE_LIMIT: "100/10s",
      BODY_LIMIT: "1mb",
      TRUSTED_PROXIES: "10.0.0.0/8, 127.0.0.1",
    });
    expect(config.RATE_LIMIT).toEqual({ limit: 100, windowMs: 10_000 });
    expect(config.BODY_LIMIT).toBe(1_048_576);
    expect(config.TRUSTED_PROXIES).toEqual(["10.0.0.0/8", "127.0.0.1"]);
    expect(parseConfig({}).RATE_LIMIT).toEqual({ limit: 600, windowMs: 60_000 });
  });

  test("TRUSTED_PROXY_HEADER: X-Forwarded-For by default, or Forwarded; nothing else", () => {
    expect(parseConfig({}).TRUSTED_PROXY_HEADER).toBe("x-forwarded-for");
    expect(parseConfig({ TRUSTED_PROXY_HEADER: "Forwarded" }).TRUSTED_PROXY_HEADER).toBe("forwarded");
    expect(() => parseConfig({ TRUSTED_PROXY_HEADER: "x-real-ip" })).toThrow(
      "TRUSTED_PROXY_HEADER must be x-forwarded-for or forwarded",
    );
  });

  test("JWT_JWKS_URL is https, or http to this machine only: keys fetched in clear can be swapped on the way", () => {
    for (const url of [
      "https://idp.example/.well-known/jwks.json",
      "http://127.0.0.1:8080/jwks.json",
      "http://localhost:8080/jwks.json",
      "http://[::1]:8080/jwks.json",
    ])
      expect(parseConfig({ JWT_JWKS_URL: url }).JWT_JWKS_URL).toBe(url);
    for (const url of [
      "http://idp.example/.well-known/jwks.json",
      "http://10.0.0.7/jwks.json",
      "http://127.0.0.1.nip.io/jwks.json",
      "ftp://idp.example/jwks.json",
    ])
      expect(() => parseConfig({ JWT_JWKS_URL: url })).toThrow("JWT_JWKS_URL must be https://");
  });

  test("values that would quietly defeat their setting are refused: a zero timeout, body limit or retention, a typo", () => {
    const refused: [string, string, string][] = [
      ["REQUEST_TIMEOUT", "0s", "REQUEST_TIMEOUT must be at least 100ms"],
      ["REQUEST_TIMEOUT", "20ms", "REQUEST_TIMEOUT must be at least 100ms"],
      ["REQUEST_TIMEOUT", "251s", "REQUEST_TIMEOUT must be at most 250s"],
      ["BODY_LIMIT", "0", "BODY_LIMIT must be at least 1kb"],
      ["BODY_LIMIT", "100", "BODY_LIMIT must be at least 1kb"],
      ["EDGEWISE_INBOX_RETENTION", "0s", "EDGEWISE_INBOX_RETENTION must be at least 1s"],
      ["EDGEWISE_TRACING", "maybe", "EDGEWISE_TRACING must be on or off"],
      ["CORS_ORIGINS", "notanorigin", "CORS_ORIGINS must list origins"],
      ["CORS_ORIGINS", "https://app.example.com/", "CORS_ORIGINS must list origins"],
      ["CORS_ORIGINS", "https://App.example.com", "CORS_ORIGINS must list origins"],
      ["CORS_ORIGINS", "https://a.example, ftp://b.example", "CORS_ORIGINS must list origins"],
    ];
    for (const [name, value, message] of refused)
      expect(() => parseConfig({ [name]: value })).toThrow(message);
    const taken = parseConfig({
      REQUEST_TIMEOUT: "100ms",
      BODY_LIMIT: "1kb",
      EDGEWISE_INBOX_RETENTION: "1s",
      EDGEWISE_TRACING: "OFF",
      CORS_ORIGINS: "https://app.example.com, http://localhost:5173",
    });
    expect(taken).toMatchObject({ REQUEST_TIMEOUT: 100, BODY_LIMIT: 1024, EDGEWISE_INBOX_RETENTION: 1000 });
    expect(taken.CORS_ORIGINS).toEqual(["https://app.example.com", "http://localhost:5173"]);
    expect(parseConfig({ CORS_ORIGINS: "*" }).CORS_ORIGINS).toEqual(["*"]);
  });

  test("bad gateway values are refused by name", () => {
    expect(() => parseConfig({ RATE_LIMIT: "lots" })).toThrow("RATE_LIMIT must be written <count>/<window>");
    expect(() => parseConfig({ JWT_SECRET: "short" })).toThrow("JWT_SECRET must be at least 32 characters");
    expect(() => parseConfig({ UPSTASH_REDIS_REST_URL: "http://127.0.0.1:8079" })).toThrow("go together");
  });
});

describe("mutual TLS configuration", () => {
  const secret = "mtls-gateway-secret-4f8a1c9e2b7d3065";
  test("certificate, key and CA come as a set", () => {
    const config = parseConfig({ TLS_CERT_FILE: "c.pem", TLS_KEY_FILE: "k.pem", TLS_CA_FILE: "ca.pem" });
    expect(config.TLS_CA_FILE).toBe("ca.pem");
    expect(() => parseConfig({ TLS_CERT_FILE: "c.pem" })).toThrow(
      "TLS_CERT_FILE and TLS_KEY_FILE go together",
    );
    expect(() => parseConfig({ TLS_KEY_FILE: "k.pem" })).toThrow(
      "TLS_CERT_FILE and TLS_KEY_FILE go together",
    );
    expect(() => parseConfig({ TLS_CA_FILE: "ca.pem" })).toThrow("needs TLS_CERT_FILE and TLS_KEY_FILE");
  });

  test("a gateway using mutual TLS must reach its actor host over https", () => {
    const tls = {
      TLS_CERT_FILE: "c.pem",
      TLS_KEY_FILE: "k.pem",
      TLS_CA_FILE: "ca.pem",
      ACTOR_HOST_SECRET: secret,
    };
    expect(() => parseConfig({ ...tls, ACTOR_HOST_URL: "http://127.0.0.1:9443" })).toThrow(
      "must be https://",
    );
    expect(parseConfig({ ...tls, ACTOR_HOST_URL: "https://127.0.0.1:9443" }).ACTOR_HOST_URL).toBe(
      "https://127.0.0.1:9443",
    );
    // A client certificate without a CA (the system's roots check the actor host) is presented only over TLS too.
    const { TLS_CA_FILE: _ca, ...withoutCa } = tls;
    expect(() => parseConfig({ ...withoutCa, ACTOR_HOST_URL: "http://127.0.0.1:9443" })).toThrow(
      "ACTOR_HOST_URL: must be https:// when TLS_CERT_FILE is set",
    );
    expect(
      parseConfig({ ...withoutCa, ACTOR_HOST_URL: "https://127.0.0.1:9443" }).TLS_CA_FILE,
    ).toBeUndefined();
  });

  test("ACTOR_HOST_PUBLIC_URL is a gateway's: a URL, and only with ACTOR_HOST_URL", () => {
    const gateway = { ACTOR_HOST_URL: "https://actors.internal:9443", ACTOR_HOST_SECRET: secret };
    expect(parseConfig(gateway).ACTOR_HOST_PUBLIC_URL).toBeUndefined();
    expect(
      parseConfig({ ...gateway, ACTOR_HOST_PUBLIC_URL: "https://actors.example:9443" }).ACTOR_HOST_PUBLIC_URL,
    ).toBe("https://actors.example:9443");
    expect(() => parseConfig({ ...gateway, ACTOR_HOST_PUBLIC_URL: "actors" })).toThrow(
      "ACTOR_HOST_PUBLIC_URL must be a URL",
    );
    expect(() => parseConfig({ ACTOR_HOST_PUBLIC_URL: "https://actors.example:9443" })).toThrow(
      "it needs ACTOR_HOST_URL",
    );
  });

  test("client certificates on Workers: a flag and an optional fingerprint list", () => {
    expect(parseConfig({}).REQUIRE_CLIENT_CERT).toBe(false);
    const config = parseConfig({ REQUIRE_CLIENT_CERT: "1", CLIENT_CERT_FINGERPRINTS: "ab12, cd34" });
    expect(config.REQUIRE_CLIENT_CERT).toBe(true);
    expect(config.CLIENT_CERT_FINGERPRINTS).toEqual(["ab12", "cd34"]);
    expect(() => parseConfig({ REQUIRE_CLIENT_CERT: "yes" })).toThrow("REQUIRE_CLIENT_CERT must be 0 or 1");
  });
});
