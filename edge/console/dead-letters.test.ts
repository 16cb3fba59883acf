// A dead letter's target URL as the console shows it: host, port and path readable; userinfo, query values and
// fragment masked, whether or not the URL parses.
import { describe, expect, test } from "bun:test";
import { redacted } from "../../shared/telemetry/log/index.ts";
import { maskedUrl } from "./dead-letters.ts";

describe("maskedUrl", () => {
  test("a URL that parses keeps its host, port and path, and masks its query values and fragment", () => {
    expect(maskedUrl("https://hooks.example.com:8443/in/a@b?email=ops@example.com&flag#f")).toBe(
      `https://hooks.example.com:8443/in/a@b?email=${redacted}&flag#${redacted}`,
    );
  });

  test("a URL that does not parse (a port out of range) is masked the same way, not cut at its last @", () => {
    const shown = maskedUrl("https://hooks.example.com:99999/in?token=t0k3n@x&tenant=acme#fr4gm3nt");
    expect(shown).toBe(`https://hooks.example.com:99999/in?token=${redacted}&tenant=${redacted}#${redacted}`);
  });

  test("a password in a URL that does not parse is masked, whatever it holds", () => {
    for (const text of ["https://u:pa?ss/PLANTED@h:99999/in?x=1", "https://u:pa#PLANTED@h:99999/in"]) {
      const shown = maskedUrl(text);
      expect(shown).not.toContain("PLANTED");
      expect(shown).not.toContain("pa");
    }
  });
});
