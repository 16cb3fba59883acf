// clientIp() in process: the peer per runtime, and forwarding headers believed only from trusted proxies.
import { describe, expect, test } from "bun:test";
import { Hono } from "hono";
import type { GatewayEnv } from "../../env.ts";
import { forwardedHops, resolveClientIp, xForwardedForHops } from "./forwarded.ts";
import { type ClientIpOptions, clientIp } from "./index.ts";

function appWith(options: ClientIpOptions) {
  const app = new Hono<GatewayEnv>();
  app.use(clientIp(options));
  app.get("/", (c) => c.text(c.var.clientIp));
  return app;
}

async function seen(options: ClientIpOptions, headers: Record<string, string>, remoteAddress?: string) {
  const app = appWith(options);
  const res = await app.request("/", { headers }, remoteAddress === undefined ? {} : { remoteAddress });
  return res.text();
}

const bun = (trustedProxies: string[] = []): ClientIpOptions => ({ platform: "bun", trustedProxies });

describe("Bun and Deno: the socket's peer", () => {
  test("the peer address, normalized", async () => {
    expect(await seen(bun(), {}, "203.0.113.9")).toBe("203.0.113.9");
    expect(await seen(bun(), {}, "::ffff:203.0.113.9")).toBe("203.0.113.9");
    expect(await seen({ platform: "deno", trustedProxies: [] }, {}, "2001:DB8:0::7")).toBe("2001:db8::7");
  });

  test("no peer reported: `unknown`", async () => {
    expect(await seen(bun(), {})).toBe("unknown");
  });

  test("CF-Connecting-IP is a client's header off Workers, and ignored", async () => {
    expect(await seen(bun(["10.0.0.0/8"]), { "cf-connecting-ip": "1.1.1.1" }, "198.51.100.4")).toBe(
      "198.51.100.4",
    );
  });
});

describe("spoofing", () => {
  test("X-Forwarded-For from an untrusted peer is ignored", async () => {
    for (const xff of ["1.1.1.1", "10.0.0.1", "1.1.1.1, 10.0.0.2", "garbage"]) {
      expect(await seen(bun(["10.0.0.0/8"]), { "x-forwarded-for": xff }, "198.51.100.4")).toBe(
        "198.51.100.4",
      );
    }
  });

  test("Forwarded from an untrusted peer is ignored", async () => {
    const options: ClientIpOptions = { ...bun(["10.0.0.0/8"]), forwardedHeader: "forwarded" };
    expect(await seen(options, { forwarded: "for=1.1.1.1" }, "198.51.100.4")).toBe("198.51.100.4");
  });

  test("without trusted proxies no header is ever read", async () => {
    expect(await seen(bun(), { "x-forwarded-for": "1.1.1.1" }, "10.0.0.1")).toBe("10.0.0.1");
  });

  test("a trusted proxy: the rightmost untrusted hop, whatever the client prepended", async () => {
    const options = bun(["10.0.0.0/8", "fd00::/8"]);
    expect(await seen(options, { "x-forwarded-for": "203.0.113.5" }, "10.0.0.1")).toBe("203.0.113.5");
    // The client sent `X-Forwarded-For: 1.1.1.1`; the proxy appended the address it saw.
    expect(await seen(options, { "x-forwarded-for": "1.1.1.1, 203.0.113.5" }, "10.0.0.1")).toBe(
      "203.0.113.5",
    );
    // Two proxies deep, one of them on IPv6.
    expect(await seen(options, { "x-forwarded-for": "1.1.1.1, 203.0.113.5, fd00::2" }, "10.0.0.1")).toBe(
      "203.0.113.5",
    );
    // The client pretends to be a trusted proxy itself: its own address is still the one the proxy appended.
    expect(await seen(options, { "x-forwarded-for": "10.9.9.9, 203.0.113.5" }, "10.0.0.1")).toBe(
      "203.0.113.5",
    );
  });

  test("a trusted proxy: mapped, bracketed and ported hops are normalized", async () => {
    const options = bun(["10.0.0.0/8"]);
    expect(await seen(options, { "x-forwarded-for": "203.0.113.5:51234" }, "::ffff:10.0.0.1")).toBe(
      "203.0.113.5",
    );
    expect(await seen(options, { "x-forwarded-for": "[2001:db8::5]:443" }, "10.0.0.1")).toBe("2001:db8::5");
    expect(await seen(options, { "x-forwarded-for": "::ffff:203.0.113.5" }, "10.0.0.1")).toBe("203.0.113.5");
  });

  test("a trusted proxy with junk or no header: the proxy's own address, never the junk", async () => {
    const options = bun(["10.0.0.0/8"]);
    expect(await seen(options, {}, "10.0.0.1")).toBe("10.0.0.1");
    expect(await seen(options, { "x-forwarded-for": "1.1.1.1, unknown" }, "10.0.0.1")).toBe("10.0.0.1");
    expect(await seen(options, { "x-forwarded-for": "" }, "10.0.0.1")).toBe("10.0.0.1");
  });

  test("Forwarded (RFC 7239) from a trusted proxy", async () => {
    const options: ClientIpOptions = { ...bun(["10.0.0.0/8"]), forwardedHeader: "forwarded" };
    const header = 'for=1.1.1.1;proto=https, for="[2001:db8:cafe::17]:4711";by=10.0.0.1';
    expect(await seen(options, { forwarded: header }, "10.0.0.1")).toBe("2001:db8:cafe::17");
    // The proxy writes Forwarded; a client's X-Forwarded-For passes through and is ignored.
    expect(
      await seen(options, { forwarded: "for=203.0.113.5", "x-forwarded-for": "1.1.1.1" }, "10.0.0.1"),
    ).toBe("203.0.113.5");
    expect(await seen(options, { forwarded: 'for="_hidden"' }, "10.0.0.1")).toBe("10.0.0.1");
  });
});

describe("Workers: CF-Connecting-IP", () => {
  const workers = (trustedProxies: string[] = []): ClientIpOptions => ({
    platform: "workers",
    trustedProxies,
  });

  test("Cloudflare's header is the peer; a binding is not", async () => {
    expect(await seen(workers(), { "cf-connecting-ip": "2001:db8::9" }, "10.0.0.1")).toBe("2001:db8::9");
    expect(await seen(workers(), { "cf-connecting-ip": "203.0.113.5", "x-forwarded-for": "1.1.1.1" })).toBe(
      "203.0.113.5",
    );
  });

  test("a trusted proxy in front of Cloudflare: its X-Forwarded-For is believed", async () => {
    const headers = { "cf-connecting-ip": "10.0.0.1", "x-forwarded-for": "1.1.1.1, 203.0.113.5, 10.0.0.1" };
    expect(await seen(workers(["10.0.0.0/8"]), headers)).toBe("203.0.113.5");
  });
});

describe("the client's scheme (clientProto): the connection's, or a trusted proxy's word", () => {
  async function scheme(
    options: ClientIpOptions,
    headers: Record<string, string>,
    remoteAddress: string,
    url = "http://edge.test/",
  ) {
    const app = new Hono<GatewayEnv>();
    app.use(clientIp(options));
    app.get("/", (c) => c.text(String(c.var.clientProto)));
    return (await app.request(url, { headers }, { remoteAddress })).text();
  }
  const https = { "x-forwarded-proto": "https" };

  test("X-Forwarded-Proto from a trusted proxy; from anyone else, or with no trusted proxies, ignored", async () => {
    expect(await scheme(bun(["10.0.0.0/8"]), https, "10.0.0.1")).toBe("https");
    expect(await scheme(bun(["10.0.0.0/8"]), https, "::ffff:10.0.0.1")).toBe("https");
    expect(await scheme(bun(["10.0.0.0/8"]), https, "203.0.113.9")).toBe("http");
    expect(await scheme(bun(), https, "10.0.0.1")).toBe("http");
    // The proxy's last word (its own, when it appends), either way; junk leaves the connection's.
    expect(await scheme(bun(["10.0.0.0/8"]), { "x-forwarded-proto": "https, http" }, "10.0.0.1")).toBe(
      "http",
    );
    expect(await scheme(bun(["10.0.0.0/8"]), { "x-forwarded-proto": "gopher" }, "10.0.0.1")).toBe("http");
    expect(await scheme(bun(["10.0.0.0/8"]), { "x-forwarded-proto": "http" }, "10.0.0.1", "https://e/")).toBe(
      "http",
    );
  });

  test("the connection's own scheme without a header", async () => {
    expect(await scheme(bun(["10.0.0.0/8"]), {}, "10.0.0.1", "https://edge.test/")).toBe("https");
    expect(await scheme(bun(), https, "203.0.113.9", "https://edge.test/")).toBe("https");
  });

  test("with Forwarded, its last element's proto=, and X-Forwarded-Proto is not read", async () => {
    const options: ClientIpOptions = { ...bun(["10.0.0.0/8"]), forwardedHeader: "forwarded" };
    const header = 'for=1.1.1.1;proto=http, for=203.0.113.5;proto="HTTPS"';
    expect(await scheme(options, { forwarded: header }, "10.0.0.1")).toBe("https");
    expect(await scheme(options, { forwarded: header }, "203.0.113.9")).toBe("http");
    expect(await scheme(options, { forwarded: "for=203.0.113.5", ...https }, "10.0.0.1")).toBe("http");
  });

  test("Workers: Cloudflare's URL, or a trusted proxy's word", async () => {
    const workers: ClientIpOptions = { platform: "workers", trustedProxies: ["10.0.0.0/8"] };
    expect(await scheme(workers, { "cf-connecting-ip": "203.0.113.5", ...https }, "", "http://e/")).toBe(
      "http",
    );
    expect(await scheme(workers, { "cf-connecting-ip": "10.0.0.1", ...https }, "", "http://e/")).toBe(
      "https",
    );
    expect(await scheme(workers, { "cf-connecting-ip": "203.0.113.5" }, "", "https://e/")).toBe("https");
  });
});

describe("resolveClientIp", () => {
  const trusted = (address: string) => address.startsWith("10.");

  test("all hops trusted: the leftmost", () => {
    expect(resolveClientIp("10.0.0.1", ["10.0.0.3", "10.0.0.2"], trusted)).toBe("10.0.0.3");
  });

  test("an unreadable peer is kept as is and no header is believed", () => {
    expect(resolveClientIp("unix:/tmp/socket", ["1.1.1.1"], trusted)).toBe("unix:/tmp/socket");
    expect(resolveClientIp(undefined, ["1.1.1.1"], trusted)).toBeUndefined();
  });

  test("hop parsing", () => {
    expect(xForwardedForHops(" 1.1.1.1 ,[::1]:80, 2.2.2.2:8080")).toEqual(["1.1.1.1", "::1", "2.2.2.2"]);
    expect(forwardedHops('for=1.1.1.1, proto=https, For="[::1]:80";by=x, for="a,b"')).toEqual([
      "1.1.1.1",
      "unknown",
      "::1",
      "a,b",
    ]);
  });
});
