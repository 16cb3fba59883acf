// The line a node prints when it cannot start: what failed, what to check, and never a password.
import { describe, expect, test } from "bun:test";
import { EdgewiseError } from "../shared/errors/index.ts";
import { tlsFailure } from "./local/broker/pg-socket.ts";
import { startFailureLine } from "./start-failure.ts";

const config = {
  PORT: 8787,
  DATABASE_URL: "postgres://app:hunter2-secret@db.internal:6543/shop",
  REDIS_URL: "redis://:redis-secret@cache.internal:6380",
};
const netError = (code: string, address: string, port: number) =>
  Object.assign(new Error(`connect ${code} ${address}:${port}`), { code, address, port });

describe("startFailureLine", () => {
  test("names the dependency whose address failed, with host and port only", () => {
    const lines = [
      startFailureLine(netError("ECONNREFUSED", "10.0.0.5", 6543), config),
      startFailureLine(netError("ETIMEDOUT", "10.0.0.6", 6380), config),
      startFailureLine(netError("ECONNREFUSED", "10.0.0.7", 9999), config),
    ];
    expect(lines).toEqual([
      "cannot reach Postgres at db.internal:6543 (ECONNREFUSED): is it running? Check DATABASE_URL",
      "cannot reach Redis at cache.internal:6380 (ETIMEDOUT): is it running? Check REDIS_URL",
      "cannot reach 10.0.0.7:9999 (ECONNREFUSED): connect ECONNREFUSED 10.0.0.7:9999",
    ]);
    for (const line of lines) expect(line).not.toMatch(/secret/);
  });

  test("a host name that does not resolve is named with its dependency, as postgres.js reports it on Bun and Deno", () => {
    // getaddrinfo's error: a code and the name asked for, no address or port (before: "cannot reach (ENOTFOUND): …").
    const dnsError = (code: string, hostname: string) =>
      Object.assign(new Error(`getaddrinfo ${code} ${hostname}`), { code, syscall: "getaddrinfo", hostname });
    expect([
      startFailureLine(dnsError("ENOTFOUND", "db.internal"), config),
      startFailureLine(dnsError("EAI_AGAIN", "cache.internal"), config),
      startFailureLine(dnsError("ENOTFOUND", "elsewhere.internal"), config),
    ]).toEqual([
      "cannot reach Postgres at db.internal:6543 (ENOTFOUND): the host name does not resolve. Check DATABASE_URL",
      "cannot reach Redis at cache.internal:6380 (EAI_AGAIN): the host name does not resolve. Check REDIS_URL",
      "cannot reach (ENOTFOUND): getaddrinfo ENOTFOUND elsewhere.internal",
    ]);
  });

  test("a busy port, TLS, a refused login and a missing database say what to change", () => {
    const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });
    expect(startFailureLine(withCode("listen EADDRINUSE", "EADDRINUSE"), config)).toBe(
      "port 8787 is in use: stop what holds it, or set PORT",
    );
    expect(
      startFailureLine(
        tlsFailure(new Error("unable to verify the first certificate"), "db.internal", 6543),
        config,
      ),
    ).toBe(
      "TLS to Postgres at db.internal:6543 failed: unable to verify the first certificate. Check sslmode and sslrootcert in DATABASE_URL",
    );
    // Another certificate's trouble (the node's own TLS files, say) is not blamed on Postgres.
    expect(startFailureLine(new Error("certificate has expired"), config)).toBe("certificate has expired");
    expect(startFailureLine(withCode('password authentication failed for user "app"', "28P01"), config)).toBe(
      'Postgres refused the login: password authentication failed for user "app". Check the user and password in DATABASE_URL',
    );
    expect(startFailureLine(withCode('database "shop" does not exist', "3D000"), config)).toBe(
      'database "shop" does not exist: create it, or name another in DATABASE_URL',
    );
    expect(
      startFailureLine(new EdgewiseError("config.invalid", "TLS_CERT_FILE and TLS_KEY_FILE go together"), {}),
    ).toBe("config.invalid: TLS_CERT_FILE and TLS_KEY_FILE go together");
  });

  test("a connection string that does not parse is named by its variable, never quoted (Deno's Invalid URL)", () => {
    // A base64 password with an unescaped "/" makes the URL fail to parse; Deno's error then quotes it whole.
    const settings = {
      DATABASE_URL: "postgres://app:Zm9v/YmFyPLANTED+cw==@db.internal:5432/shop",
      REDIS_URL: "redis://default:r3d/isPLANTED@cache.internal:6380",
    };
    const lines = [
      startFailureLine(new TypeError(`Invalid URL: '${settings.DATABASE_URL}'`), settings),
      startFailureLine(new TypeError(`Invalid URL: '${settings.REDIS_URL}'`), settings),
      // The same text in a URL no setting holds (a library's own): masked to the last "@" all the same.
      startFailureLine(new TypeError("Invalid URL: 'postgres://x:pa/ssPLANTED#1@h/db'"), {}),
    ];
    expect(lines.slice(0, 2)).toEqual(["Invalid URL: '<DATABASE_URL>'", "Invalid URL: '<REDIS_URL>'"]);
    for (const line of lines) expect(line).not.toContain("PLANTED");
  });

  test("a URL with a port and a later @ is quoted as it is: only userinfo before the host is a password", () => {
    // An identity provider's address (JWT_JWKS_URL) with a query: its port and path are what the operator checks.
    const jwks = "https://idp.example.com:8443/keys?login_hint=ops@example.com";
    expect(startFailureLine(new Error(`JWKS fetch from ${jwks} failed: 503`), {})).toBe(
      `JWKS fetch from ${jwks} failed: 503`,
    );
  });

  test("a data dir that is full or read-only, or an address it cannot listen on, is named with what to do", () => {
    const at = { ...config, HOST: "10.9.9.9", EDGEWISE_DATA_DIR: "/var/lib/edgewise" };
    // PGlite's file system on a full disk: an Emscripten ErrnoError, no message, WASI's errno 51 (ENOSPC).
    const pgliteFull = Object.assign(Object.create({ name: "ErrnoError" }), { errno: 51 });
    const sqlite = (message: string, code: string) =>
      Object.assign(new Error(message), { name: "SQLiteError", code, errno: 14 });
    const listen = (code: string, message: string) =>
      Object.assign(new Error(message), { code, syscall: "listen" });
    expect([
      startFailureLine(pgliteFull, at),
      startFailureLine(sqlite("unable to open database file", "SQLITE_CANTOPEN"), at),
      startFailureLine(sqlite("database or disk is full", "SQLITE_FULL"), at),
      startFailureLine(listen("EADDRNOTAVAIL", "EADDRNOTAVAIL: address not available, listen"), at),
    ]).toEqual([
      // Before: "[object Object]" and SQLite's bare message, naming neither the dir nor the variable.
      "cannot write the data dir /var/lib/edgewise (ENOSPC: no space left on the device): free some space, or make it writable, or set EDGEWISE_DATA_DIR",
      "cannot write the data dir /var/lib/edgewise (SQLITE_CANTOPEN: a database file could not be opened or created): free some space, or make it writable, or set EDGEWISE_DATA_DIR",
      "cannot write the data dir /var/lib/edgewise (SQLITE_FULL: no space left on the device): free some space, or make it writable, or set EDGEWISE_DATA_DIR",
      "cannot listen on 10.9.9.9:8787 (EADDRNOTAVAIL): EADDRNOTAVAIL: address not available, listen. Check HOST (an address of this machine, or 0.0.0.0) and PORT",
    ]);
  });
});
