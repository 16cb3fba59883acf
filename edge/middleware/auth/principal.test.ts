// Scope and object-level authorization: 401 anonymous, 403 missing scope or someone else's object.
import { describe, expect, test } from "bun:test";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { type Principal, requireOwner, requireScope } from "./principal.ts";

const caller = (sub: string, ...scopes: string[]): Principal => ({
  sub,
  scopes: new Set(scopes),
  via: "jwt",
});
const codeOf = (run: () => unknown) => {
  try {
    run();
    return "allowed";
  } catch (error) {
    return (error as EdgewiseError).code;
  }
};

describe("authorization", () => {
  test("scopes: anonymous is 401, a missing scope 403, admin implies every scope", () => {
    expect(codeOf(() => requireScope(undefined, "orders:read"))).toBe("unauthorized");
    expect(codeOf(() => requireScope(caller("a", "orders:read"), "orders:write"))).toBe("forbidden");
    expect(codeOf(() => requireScope(caller("a", "orders:read"), "orders:read"))).toBe("allowed");
    expect(codeOf(() => requireScope(caller("root", "admin"), "webhooks:admin"))).toBe("allowed");
  });

  test("objects: another customer's object is 403; one's own and admin's are allowed", () => {
    expect(codeOf(() => requireOwner(caller("alice", "orders:read"), "bob"))).toBe("forbidden");
    expect(codeOf(() => requireOwner(caller("alice", "orders:read"), "alice"))).toBe("allowed");
    expect(codeOf(() => requireOwner(caller("ops", "admin"), "bob"))).toBe("allowed");
    expect(new EdgewiseError("forbidden", "x").status).toBe(403);
  });
});
