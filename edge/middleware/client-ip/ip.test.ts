// Address parsing, canonical form and CIDR matching, IPv4 and IPv6.
import { describe, expect, test } from "bun:test";
import { cidrMatcher, parseCidr } from "./cidr.ts";
import { canonicalIp } from "../../../shared/net/ip.ts";

describe("canonicalIp", () => {
  test.each([
    ["1.2.3.4", "1.2.3.4"],
    [" 10.0.0.1 ", "10.0.0.1"],
    ["::ffff:1.2.3.4", "1.2.3.4"],
    ["::FFFF:7f00:1", "127.0.0.1"],
    ["0:0:0:0:0:ffff:c000:0280", "192.0.2.128"],
    ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["::", "::"],
    ["::1", "::1"],
    ["fe80::1%eth0", "fe80::1"],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
  ])("%p → %p", (input, expected) => {
    expect(canonicalIp(input)).toBe(expected);
  });

  test.each([
    "",
    "unknown",
    "_hidden",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3.-4",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    "12345::",
    "1.2.3.4::",
    "::ffff:1.2.3.256",
    "g::1",
  ])("refuses %p", (input) => {
    expect(canonicalIp(input)).toBeUndefined();
  });
});

describe("CIDR matching", () => {
  test("IPv4 ranges, including non-octet prefixes", () => {
    const trusted = cidrMatcher(["10.0.0.0/8", "192.168.1.128/25", "203.0.113.7"]);
    expect(trusted("10.255.1.2")).toBe(true);
    expect(trusted("11.0.0.1")).toBe(false);
    expect(trusted("192.168.1.128")).toBe(true);
    expect(trusted("192.168.1.255")).toBe(true);
    expect(trusted("192.168.1.127")).toBe(false);
    expect(trusted("203.0.113.7")).toBe(true);
    expect(trusted("203.0.113.8")).toBe(false);
  });

  test("IPv6 ranges", () => {
    const trusted = cidrMatcher(["2001:db8::/32", "fd00:1:2:3::/64", "::1"]);
    expect(trusted("2001:db8:ffff::1")).toBe(true);
    expect(trusted("2001:db9::1")).toBe(false);
    expect(trusted("fd00:1:2:3:ffff::1")).toBe(true);
    expect(trusted("fd00:1:2:4::1")).toBe(false);
    expect(trusted("::1")).toBe(true);
    expect(trusted("::2")).toBe(false);
  });

  test("IPv4-mapped peers match IPv4 ranges, and mapped ranges match IPv4 peers", () => {
    expect(cidrMatcher(["127.0.0.0/8"])("::ffff:127.0.0.1")).toBe(true);
    expect(cidrMatcher(["::ffff:10.0.0.0/104"])("10.9.9.9")).toBe(true);
    expect(cidrMatcher(["::ffff:10.0.0.0/104"])("11.0.0.1")).toBe(false);
  });

  test("families never cross", () => {
    expect(cidrMatcher(["0.0.0.0/8"])("::1")).toBe(false);
    expect(cidrMatcher(["::/8"])("0.1.2.3")).toBe(false);
    expect(cidrMatcher(["0.0.0.0/8", "::/8"])("::1")).toBe(true);
  });

  test("host bits past the prefix are ignored", () => {
    expect(cidrMatcher(["10.1.2.3/8"])("10.200.0.1")).toBe(true);
  });

  test("non-addresses never match", () => {
    expect(cidrMatcher(["10.0.0.0/8", "fc00::/7"])("unknown")).toBe(false);
    expect(cidrMatcher([])("1.2.3.4")).toBe(false);
  });

  test("the widest private ranges are proxies' networks; a range wider than them is refused", () => {
    expect(cidrMatcher(["10.0.0.0/8", "fc00::/7"])("fd12::1")).toBe(true);
    for (const entry of [
      "0.0.0.0/0",
      "::/0",
      "::ffff:0:0/96",
      "128.0.0.0/1",
      "0.0.0.0/7",
      "2000::/3",
      "fc00::/6",
    ]) {
      expect(() => cidrMatcher([entry])).toThrow(/TRUSTED_PROXIES: ".*" is wider than any proxy fleet/);
    }
  });

  test.each(["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8/8", "10.0.0.0/x", "proxy.internal", ""])(
    "a bad entry %p is a configuration error",
    (entry) => {
      expect(parseCidr(entry)).toBeUndefined();
      expect(() => cidrMatcher([entry])).toThrow(/TRUSTED_PROXIES/);
    },
  );
});
