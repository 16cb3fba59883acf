// isLoopbackHost: the one rule for "only this machine reaches it" (a node's listening line, the broker's token, JWKS).
import { expect, test } from "bun:test";
import { isLoopbackHost } from "./ip.ts";

test("localhost, 127.0.0.0/8 and ::1 in any spelling are loopback; nothing else is", () => {
  for (const host of [
    "localhost",
    "LOCALHOST",
    "127.0.0.1",
    "127.1.2.3",
    "::1",
    "[::1]",
    "::ffff:127.0.0.1",
    "0:0:0:0:0:0:0:1",
  ])
    expect([host, isLoopbackHost(host)]).toEqual([host, true]);
  for (const host of [
    "0.0.0.0",
    "::",
    "10.1.2.3",
    "127.0.0.1.nip.io",
    "localhost.example",
    "128.0.0.1",
    "::2",
    "",
  ])
    expect([host, isLoopbackHost(host)]).toEqual([host, false]);
});
