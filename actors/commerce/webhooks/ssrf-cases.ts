// SSRF cases for checkTarget, as data: the unit tests run them, and a security suite can run them too.
import type { AddressKind } from "./ip.ts";
import type { Resolve, TargetRefusal } from "./ssrf.ts";

export interface SsrfCase {
  url: string;
  /** For names: what the resolver answers; `fails` makes it reject. IP literals never reach the resolver. */
  resolvesTo?: readonly string[] | "fails";
  /** undefined: allowed. Otherwise the refusal, and for `address` the kind of the offending address. */
  refused?: TargetRefusal;
  kind?: AddressKind;
}

const PUBLIC_V4 = "93.184.215.14";
const PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c";

export const ssrfCases: readonly SsrfCase[] = [
  // allowed
  { url: `https://${PUBLIC_V4}/hook` },
  { url: "http://8.8.8.8:8080/x?y=1" },
  { url: "http://172.32.0.1/" },
  { url: "http://100.128.0.1/" },
  { url: "http://[2606:4700:4700::1111]/" },
  { url: "http://[64:ff9b::808:808]/" },
  { url: "https://hooks.example.com/in", resolvesTo: [PUBLIC_V4, PUBLIC_V6] },
  // schemes, credentials, garbage
  { url: "ftp://hooks.example.com/", refused: "scheme" },
  { url: "file:///etc/passwd", refused: "scheme" },
  { url: "gopher://127.0.0.1:6379/_FLUSHALL", refused: "scheme" },
  { url: "javascript:alert(1)", refused: "scheme" },
  { url: "data:text/plain,hi", refused: "scheme" },
  { url: "/relative/path", refused: "invalid_url" },
  { url: "http://[fe80::1%25eth0]/", refused: "invalid_url" },
  { url: "https://user:pass@hooks.example.com/", refused: "credentials" },
  { url: "https://user@hooks.example.com/", refused: "credentials" },
  // IPv4 loopback in every spelling the URL parser accepts
  { url: "http://127.0.0.1/", refused: "address", kind: "loopback" },
  { url: "http://127.255.255.254:8080/", refused: "address", kind: "loopback" },
  { url: "http://127.1/", refused: "address", kind: "loopback" },
  { url: "http://2130706433/", refused: "address", kind: "loopback" },
  { url: "http://0177.0.0.1/", refused: "address", kind: "loopback" },
  { url: "http://017700000001/", refused: "address", kind: "loopback" },
  { url: "http://0x7f.1/", refused: "address", kind: "loopback" },
  { url: "http://0x7f000001/", refused: "address", kind: "loopback" },
  { url: "http://0x7F.0.0.0x1/", refused: "address", kind: "loopback" },
  { url: "http://0x7f.0.0.1/", refused: "address", kind: "loopback" },
  { url: "http://127.000.000.001/", refused: "address", kind: "loopback" },
  { url: "http://127。0。0。1/", refused: "address", kind: "loopback" },
  { url: "http://127.0.0.1%2e/", refused: "address", kind: "loopback" },
  { url: "http://127.0.0.1./", refused: "address", kind: "loopback" },
  { url: "http://%31%32%37.0.0.1/", refused: "address", kind: "loopback" },
  { url: "http://１２７.0.0.1/", refused: "address", kind: "loopback" },
  // other IPv4 ranges
  { url: "http://0/", refused: "address", kind: "unspecified" },
  { url: "http://0.0.0.0:8787/", refused: "address", kind: "unspecified" },
  { url: "http://10.0.0.1/", refused: "address", kind: "private" },
  { url: "http://012.1/", refused: "address", kind: "private" },
  { url: "http://172.16.0.1/", refused: "address", kind: "private" },
  { url: "http://172.31.255.255/", refused: "address", kind: "private" },
  { url: "http://192.168.1.1/", refused: "address", kind: "private" },
  { url: "http://3232235777/", refused: "address", kind: "private" },
  { url: "http://169.254.169.254/latest/meta-data/", refused: "address", kind: "link-local" },
  { url: "http://0xa9fea9fe/", refused: "address", kind: "link-local" },
  { url: "http://100.64.0.1/", refused: "address", kind: "shared" },
  { url: "http://100.127.255.255/", refused: "address", kind: "shared" },
  { url: "http://224.0.0.1/", refused: "address", kind: "multicast" },
  { url: "http://239.255.255.250/", refused: "address", kind: "multicast" },
  { url: "http://255.255.255.255/", refused: "address", kind: "broadcast" },
  { url: "http://240.0.0.1/", refused: "address", kind: "reserved" },
  { url: "http://192.0.2.1/", refused: "address", kind: "reserved" },
  { url: "http://198.18.0.1/", refused: "address", kind: "reserved" },
  // IPv6
  { url: "http://[::1]/", refused: "address", kind: "loopback" },
  { url: "http://[0:0:0:0:0:0:0:1]:8080/", refused: "address", kind: "loopback" },
  { url: "http://[::]/", refused: "address", kind: "unspecified" },
  { url: "http://[::ffff:127.0.0.1]/", refused: "address", kind: "loopback" },
  { url: "http://[::ffff:7f00:1]/", refused: "address", kind: "loopback" },
  { url: "http://[::ffff:169.254.169.254]/", refused: "address", kind: "link-local" },
  { url: "http://[::ffff:10.1.2.3]/", refused: "address", kind: "private" },
  { url: "http://[::127.0.0.1]/", refused: "address", kind: "loopback" },
  { url: "http://[::8.8.8.8]/", refused: "address", kind: "reserved" },
  { url: "http://[64:ff9b::7f00:1]/", refused: "address", kind: "loopback" },
  { url: "http://[2002:7f00:1::]/", refused: "address", kind: "loopback" },
  { url: "http://[2002:a9fe:a9fe::1]/", refused: "address", kind: "link-local" },
  { url: "http://[fe80::1]/", refused: "address", kind: "link-local" },
  { url: "http://[febf:ffff::1]/", refused: "address", kind: "link-local" },
  { url: "http://[fc00::1]/", refused: "address", kind: "private" },
  { url: "http://[fd12:3456:789a::1]/", refused: "address", kind: "private" },
  { url: "http://[ff02::1]/", refused: "address", kind: "multicast" },
  { url: "http://[2001:db8::1]/", refused: "address", kind: "reserved" },
  { url: "http://[100::1]/", refused: "address", kind: "reserved" },
  { url: "http://[4000::1]/", refused: "address", kind: "reserved" },
  // names
  { url: "http://localhost/", refused: "localhost" },
  { url: "http://LOCALHOST:8080/x", refused: "localhost" },
  { url: "http://localhost./", refused: "localhost" },
  { url: "http://api.localhost/", refused: "localhost" },
  { url: "http://internal.example/", resolvesTo: ["10.0.0.5"], refused: "address", kind: "private" },
  {
    url: "http://rebind.example/",
    resolvesTo: [PUBLIC_V4, "127.0.0.1"],
    refused: "address",
    kind: "loopback",
  },
  {
    url: "http://metadata.example/",
    resolvesTo: ["169.254.169.254"],
    refused: "address",
    kind: "link-local",
  },
  { url: "http://v6.example/", resolvesTo: [PUBLIC_V6, "::1"], refused: "address", kind: "loopback" },
  { url: "http://mapped.example/", resolvesTo: ["::ffff:10.0.0.1"], refused: "address", kind: "private" },
  { url: "http://127.0.0.1.nip.example/", resolvesTo: ["127.0.0.1"], refused: "address", kind: "loopback" },
  { url: "http://weird.example/", resolvesTo: ["not-an-ip"], refused: "address" },
  { url: "http://nothing.example/", resolvesTo: [], refused: "unresolved" },
  { url: "http://nxdomain.example/", resolvesTo: "fails", refused: "unresolved" },
];

/** A resolver that answers from the cases' `resolvesTo`, and counts what it was asked. */
export function caseResolver(cases: readonly SsrfCase[] = ssrfCases): Resolve & { asked: string[] } {
  const answers = new Map<string, SsrfCase["resolvesTo"]>();
  for (const entry of cases) {
    if (entry.resolvesTo) answers.set(new URL(entry.url).hostname.toLowerCase(), entry.resolvesTo);
  }
  const asked: string[] = [];
  const resolve = async (hostname: string) => {
    asked.push(hostname);
    const answer = answers.get(hostname);
    if (answer === undefined || answer === "fails") throw new Error(`ENOTFOUND ${hostname}`);
    return answer;
  };
  return Object.assign(resolve, { asked });
}
