// A Durable Object stub call's transient failures (workerd's flags) become 503 unavailable, not a final 500.
import { expect, test } from "bun:test";
import { rpc } from "../../actors/hosts/cloudflare/rpc-errors.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";

/** As workerd's stub throws when the object cannot answer: an Error with its flags set. */
const thrown = (flags: Partial<Record<string, boolean>>) =>
  Object.assign(new Error("workerd: object failed"), flags);

test("a reset, overloaded or retryable object is 503 unavailable; any other throw passes through", async () => {
  for (const flags of [{ durableObjectReset: true }, { overloaded: true }, { retryable: true }]) {
    const error = await rpc(() => Promise.reject(thrown(flags))).catch((caught) => caught);
    expect(error).toBeInstanceOf(EdgewiseError);
    expect({ flags, code: error.code, status: error.status }).toEqual({
      flags,
      code: "unavailable",
      status: 503,
    });
  }
  const plain = new Error("a bug");
  expect(await rpc(() => Promise.reject(plain)).catch((caught) => caught)).toBe(plain);
  expect(await rpc(async () => "answered")).toBe("answered");
});
