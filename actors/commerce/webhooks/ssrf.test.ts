// The SSRF guard against its case table, the URL parser's IPv4 normalization, and the resolver port.
import { describe, expect, test } from "bun:test";
import { resolveWithNodeDns } from "./dns-resolver.ts";
import { classifyAddress } from "./ip.ts";
import { caseResolver, ssrfCases } from "./ssrf-cases.ts";
import { checkTarget, isPermanentRefusal } from "./ssrf.ts";

describe("checkTarget", () => {
  test.each(ssrfCases.map((entry) => [entry.url, entry] as const))("%s", async (_url, entry) => {
    const resolve = caseResolver();
    const result = await checkTarget(entry.url, { resolve });
    if (entry.refused === undefined) {
      expect(result).toMatchObject({ allowed: true });
    } else {
      expect(result).toMatchObject({ allowed: false, reason: entry.refused });
      if (!result.allowed) expect(result.kind).toBe(entry.kind);
    }
    // IP literals are decided without DNS; names go through the injected resolver.
    if (entry.resolvesTo === undefined) expect(resolve.asked).toEqual([]);
  });

  test("a name's refusal says the kind of address, not the address: the check is no map of inside names", async () => {
    const resolve = async () => ["10.20.30.40", "93.184.216.34"];
    const result = await checkTarget("https://billing.internal.example/hook", { resolve });
    expect(result).toMatchObject({
      allowed: false,
      reason: "address",
      kind: "private",
      address: "10.20.30.40",
    });
    if (!result.allowed) {
      expect(result.message).toBe("billing.internal.example resolves to a private address");
      expect(result.message).not.toContain("10.20");
    }
    // A literal is what the caller sent, so naming it tells them nothing new.
    const literal = await checkTarget("http://10.20.30.40/", { resolve });
    if (!literal.allowed) expect(literal.message).toBe("10.20.30.40 is a private address");
  });

  test("the WHATWG URL parser normalizes every IPv4 spelling to dotted decimal before the guard sees it", () => {
    const spellings = [
      "2130706433",
      "0177.0.0.1",
      "0x7f.1",
      "127.1",
      "0x7f000001",
      "017700000001",
      "127.0.0.1.",
    ];
    for (const host of spellings) expect(new URL(`http://${host}/`).hostname).toBe("127.0.0.1");
    expect(new URL("http://[::ffff:127.0.0.1]/").hostname).toBe("[::ffff:7f00:1]");
    expect(new URL("http://0/").hostname).toBe("0.0.0.0");
    // Out-of-range numeric hosts are not hosts at all.
    expect(() => new URL("http://4294967296/")).toThrow();
    expect(() => new URL("http://256.0.0.1/")).toThrow();
  });

  test("allowPrivate skips the address checks, but not the scheme or credentials checks", async () => {
    const resolve = caseResolver();
    const policy = { allowPrivate: true, resolve };
    for (const url of [
      "http://127.0.0.1:1234/",
      "http://localhost/",
      "http://[::1]/",
      "http://nxdomain.example/",
    ]) {
      expect(await checkTarget(url, policy)).toMatchObject({ allowed: true });
    }
    expect(await checkTarget("ftp://127.0.0.1/", policy)).toMatchObject({ allowed: false, reason: "scheme" });
    expect(await checkTarget("http://a:b@127.0.0.1/", policy)).toMatchObject({
      allowed: false,
      reason: "credentials",
    });
    expect(resolve.asked).toEqual([]);
  });

  test("allowAddresses lets exactly those addresses through, and a name resolving to them keeps its answer", async () => {
    const resolve = async (hostname: string) =>
      ({ "hooks.rebind.test": ["127.0.0.1"], "mixed.rebind.test": ["127.0.0.1", "127.0.0.2"] })[hostname] ??
      [];
    const policy = { resolve, allowAddresses: ["127.0.0.1", "0:0::1"] };
    expect(await checkTarget("http://hooks.rebind.test:8080/", policy)).toMatchObject({
      allowed: true,
      addresses: ["127.0.0.1"],
    });
    expect(await checkTarget("http://[::1]/", policy)).toMatchObject({ allowed: true, addresses: ["[::1]"] });
    // Any other address still refuses the name, and localhost stays refused by name.
    expect(await checkTarget("http://mixed.rebind.test/", policy)).toMatchObject({
      allowed: false,
      reason: "address",
      address: "127.0.0.2",
    });
    expect(await checkTarget("http://localhost/", policy)).toMatchObject({
      allowed: false,
      reason: "localhost",
    });
  });

  test("only an unresolved name may be worth retrying", () => {
    expect(isPermanentRefusal("unresolved")).toBe(false);
    for (const reason of ["invalid_url", "scheme", "credentials", "localhost", "address"] as const) {
      expect(isPermanentRefusal(reason)).toBe(true);
    }
  });

  test("classifyAddress parses resolver output strictly", () => {
    expect(classifyAddress("8.8.8.8")).toBe("public");
    expect(classifyAddress("2001:4860:4860::8888")).toBe("public");
    expect(classifyAddress("::ffff:8.8.8.8")).toBe("public");
    expect(classifyAddress("fe80::1%eth0")).toBeUndefined();
    expect(classifyAddress("010.0.0.1")).toBeUndefined();
    expect(classifyAddress("1.2.3")).toBeUndefined();
    expect(classifyAddress("1::2::3")).toBeUndefined();
    expect(classifyAddress("1:2:3:4:5:6:7:8:9")).toBeUndefined();
    expect(classifyAddress("1.2.3.4::")).toBeUndefined();
  });

  test("the node:dns resolver port resolves localhost to loopback, which the guard refuses", async () => {
    const addresses = await resolveWithNodeDns("localhost");
    expect(addresses.length).toBeGreaterThan(0);
    for (const address of addresses) expect(classifyAddress(address)).toBe("loopback");
  });
});
