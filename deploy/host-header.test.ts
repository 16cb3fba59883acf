// isAuthority: the Host headers a Deno node serves, and those it refuses before they can move a request's path.
import { describe, expect, test } from "bun:test";
import { isAuthority } from "./host-header.ts";

describe("isAuthority", () => {
  test.each([
    "127.0.0.1:8080",
    "127.0.0.1",
    "localhost",
    "localhost:",
    "[::1]:8080",
    "[::ffff:127.0.0.1]",
    "example.com",
    "API.Example.com:443",
    "xn--bcher-kva.example",
    "a_b-c~d!$&'()*+,;=",
    "ex%41mple.com",
    "b%C3%BCcher.example",
    "host:0",
    "host:65535",
  ])("serves %p", (host) => {
    expect(isAuthority(host)).toBe(true);
  });

  test.each([
    "x/_edgewise",
    "x?a=",
    "x#frag",
    "x/openapi.json?",
    "user@x",
    "x\\y",
    "x y",
    "x\ty",
    "x\u0001y",
    "x\u007fy",
    "x%2F_edgewise",
    "x%2f",
    "x%3Fa",
    "x%23",
    "x%40y",
    "x%5Cy",
    "x%20y",
    "x%00",
    "x%25",
    "x%3A1",
    "x%",
    "x%4",
    "x%GG",
    "",
    ":80",
    "x:abc",
    "x:65536",
    "x:123456",
    "x:1:2",
    "[::1",
    "::1",
    "[v1.x]",
    "[::1]x",
    "x<y>",
    "a, b",
    "é.example",
  ])("refuses %p", (host) => {
    expect(isAuthority(host)).toBe(false);
  });

  // Authorities by the grammar that a URL parser refuses: request.url built from one could not be parsed.
  test.each([
    "999.1.1.1",
    "1.2.3.256",
    "1.2.3.4.5",
    "4294967296",
    "a.1",
    "1.08",
    "[ffff]",
    "[1.2.3.4]",
    "[:::]",
    "%80",
    "a%80b",
    "%C3",
    "%ED%A0%80",
    "xn--a",
    "xn--a.com",
  ])("refuses %p, which a URL parser refuses", (host) => {
    expect(URL.canParse(`http://${host}/`)).toBe(false);
    expect(isAuthority(host)).toBe(false);
  });

  test("a long Host is refused in linear time (no backtracking over its characters)", () => {
    const started = performance.now();
    expect(isAuthority(`${"a".repeat(100_000)}/`)).toBe(false);
    expect(isAuthority(`${"%41a".repeat(25_000)}%2F`)).toBe(false);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});
