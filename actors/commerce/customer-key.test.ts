// A customer's actor key: plain ids stay themselves, any other id gets a reversible URL-safe key, never a shared one.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { assertValidKey } from "../runtime/address.ts";
import { SystemAccounts } from "./billing/schema.ts";
import { CustomerId, customerIdOfKey, customerKey, reservedCustomerPrefix } from "./customer-key.ts";

describe("customerKey", () => {
  test("a URL-safe id is its own key, so existing customers keep theirs", () => {
    for (const id of ["alice", "c-42", "cust_9.x", "~tilde", "A".repeat(128)])
      expect(customerKey(id)).toBe(id);
  });

  test("ids an actor key cannot carry get a valid key that decodes back", () => {
    for (const id of ["auth0|5f1c0a", "ada@example.com", "zoë", "a b", ".", "..", "日本", "~u.x", "🚀"]) {
      const key = customerKey(id);
      expect(key.startsWith("~u.")).toBe(true);
      assertValidKey(key);
      expect(customerIdOfKey(key)).toBe(id);
    }
  });

  test("no two ids share a key: an id that looks like an encoded key is encoded again", () => {
    const looksEncoded = customerKey("auth0|5f1c0a");
    expect(customerKey(looksEncoded)).not.toBe(looksEncoded);
    expect(customerIdOfKey(customerKey(looksEncoded))).toBe(looksEncoded);
  });
});

describe("CustomerId", () => {
  const ok = (id: string) => v.safeParse(CustomerId, id).success;
  test("any text of 1-128 characters whose key fits, without control characters", () => {
    expect(ok("auth0|5f1c0a")).toBe(true);
    expect(ok("x".repeat(128))).toBe(true);
    expect(ok("é".repeat(94))).toBe(true); // 188 bytes of UTF-8: its key is 254 characters
    expect(ok("")).toBe(false);
    expect(ok("x".repeat(129))).toBe(false);
    expect(ok("é".repeat(95))).toBe(false); // 190 bytes: its key would pass 256
    expect(ok("a\nb")).toBe(false);
    expect(ok("a\u0000b")).toBe(false);
  });

  test("billing's system accounts are no customer's", () => {
    for (const account of Object.values(SystemAccounts)) {
      expect(account.startsWith(reservedCustomerPrefix)).toBe(true);
      expect(ok(account)).toBe(false);
    }
  });
});
