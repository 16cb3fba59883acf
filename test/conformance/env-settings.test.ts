// settingFromEnv: a Worker's variable parsed as a node parses it, its default when unset, config.invalid when bad.
import { expect, test } from "bun:test";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { settingFromEnv } from "../../actors/hosts/cloudflare/env-settings.ts";

test("a duration is read in ms, and unset or empty gives the node's default", () => {
  expect(settingFromEnv({ EDGEWISE_TURN_TIMEOUT: "400ms" }, "EDGEWISE_TURN_TIMEOUT")).toBe(400);
  expect(settingFromEnv({ EDGEWISE_INBOX_RETENTION: "2h" }, "EDGEWISE_INBOX_RETENTION")).toBe(7_200_000);
  expect(settingFromEnv({}, "EDGEWISE_TURN_TIMEOUT")).toBe(30_000);
  expect(settingFromEnv({ EDGEWISE_INBOX_RETENTION: "" }, "EDGEWISE_INBOX_RETENTION")).toBe(7 * 86_400_000);
  expect(settingFromEnv({ EDGEWISE_DELIVERY_RETRIES: "1" }, "EDGEWISE_DELIVERY_RETRIES")).toBe(1);
});

const badValues = [
  ["EDGEWISE_TURN_TIMEOUT", "soon", /duration/],
  ["EDGEWISE_TURN_TIMEOUT", "0s", /above 0/],
  ["EDGEWISE_INBOX_RETENTION", "7 days", /duration/],
  ["EDGEWISE_DELIVERY_RETRIES", "lots", /whole number/],
] as const;

for (const [name, value, message] of badValues) {
  test(`${name}=${value} is config.invalid, naming the variable`, () => {
    let error: unknown;
    try {
      settingFromEnv({ [name]: value }, name);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(EdgewiseError);
    expect((error as EdgewiseError).code).toBe("config.invalid");
    expect((error as EdgewiseError).message).toMatch(message);
    expect((error as EdgewiseError).issues?.[0]?.path).toBe(name);
  });
}
