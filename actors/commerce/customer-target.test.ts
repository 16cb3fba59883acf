// The console's description of a customer's billing and loyalty targets: the customerId, decoded from its key.
import { describe, expect, test } from "bun:test";
import { customerKey } from "./customer-key.ts";
import { describeCustomerTarget } from "./customer-target.ts";

describe("describeCustomerTarget", () => {
  test("names the customer of an encoded key, and of a plain one, quoted", () => {
    for (const customerId of ["café ", "auth0|5f1c", "😀🎉", "~u.YQ", "alice"]) {
      const key = customerKey(customerId);
      expect(describeCustomerTarget({ type: "loyalty", key })).toEqual({
        label: `loyalty of customer ${JSON.stringify(customerId)}`,
      });
      expect(describeCustomerTarget({ type: "billing", key })?.label).toBe(
        `billing of customer ${JSON.stringify(customerId)}`,
      );
    }
  });

  test("other targets, and a key no customer has, are left to others", () => {
    expect(describeCustomerTarget({ type: "order", key: "~u.YQ" })).toBeUndefined();
    expect(describeCustomerTarget({ type: "webhooks", key: "whsub_0123456789abcdef" })).toBeUndefined();
    expect(describeCustomerTarget({ type: "loyalty", key: "~u.a" })).toBeUndefined();
  });
});
