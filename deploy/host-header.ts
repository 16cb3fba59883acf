// Whether a Host header is an authority (RFC 3986 host, optional port) a URL parser takes: runtimes build request.url from it unchecked.

/** A percent-encoded byte that decodes to what a reg-name may carry as is (unreserved, sub-delims), or non-ASCII. */
const encoded =
  "%(?:2[146-9A-Ea-e]|3[0-9BbDd]|4[1-9A-Fa-f]|5[0-9AaFf]|6[1-9A-Fa-f]|7[0-9AaEe]|[89A-Fa-f][0-9A-Fa-f])";
const literal = "[A-Za-z0-9\\-._~!$&'()*+,;=]";
/**
 * A reg-name, which an IPv4 address also is; never empty (RFC 9110 4.2.1: an http URI has a host). Runs of literal
 * characters between encoded bytes, so that each character can be matched one way only (no backtracking).
 */
const regName = `(?:${literal}+(?:${encoded}${literal}*)*|(?:${encoded}${literal}*)+)`;
/** A bracketed IPv6 address, loosely: hex digits, colons and dots (for an embedded IPv4) only. */
const ipLiteral = "\\[[0-9A-Fa-f:.]+\\]";
/** Empty, or 0 to 65535 (a URL parser refuses a larger port). */
const port = "(?::(?:\\d{0,4}|[0-5]\\d{4}|6[0-4]\\d{3}|65[0-4]\\d{2}|655[0-2]\\d|6553[0-5]))?";
const authority = new RegExp(`^(?:${ipLiteral}|${regName})${port}$`);

/**
 * True when `host` can stand between `http://` and a request target without changing where the target's path
 * begins or ends: no `/`, `?`, `#`, `@`, `\`, whitespace, control character or other delimiter, and no
 * percent-encoding that decodes to one; and when the URL so built parses. The grammar alone took hosts a URL parser
 * refuses (`999.1.1.1`, `a.1`, `[ffff]`, `%80`, `xn--a`): Deno built request.url from them all the same, and every
 * `new URL(request.url)` behind it threw, a 500 and an error line with its stack for any outsider who sent one (the
 * console with a cookie, a broker delivery). The grammar is checked first: it is what keeps the path in place.
 */
export function isAuthority(host: string): boolean {
  return authority.test(host) && URL.canParse(`http://${host}/`);
}
