// The error model: problem+json rendering, hidden internals, and a brand that survives the wire.
import { describe, expect, test } from "bun:test";
import { EdgewiseError, isEdgewiseError, problemResponse, toEdgewiseError, toProblem } from "./index.ts";

describe("error model", () => {
  test("public errors render their code, status, detail and field issues as problem+json", async () => {
    const error = new EdgewiseError("message.invalid", "Increment message is invalid (by: Invalid type)", {
      issues: [{ path: "by", message: "Invalid type" }],
    });
    const response = problemResponse(error, { instance: "/v1/x" });
    expect(response.status).toBe(422);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(await response.json()).toEqual({
      type: "https://edgewise.dev/problems/message.invalid",
      title: "Message failed its schema",
      status: 422,
      detail: "Increment message is invalid (by: Invalid type)",
      code: "message.invalid",
      instance: "/v1/x",
      errors: [{ path: "by", message: "Invalid type" }],
    });
  });

  test("non-public errors and unknown throwables never leak their message", () => {
    for (const thrown of [
      new Error("password=hunter2"),
      new EdgewiseError("state.invalid", "secret detail"),
      "x",
    ]) {
      const problem = toProblem(thrown);
      expect(problem.status).toBe(500);
      expect(problem.code).toBe("internal");
      expect(JSON.stringify(problem)).not.toContain("hunter2");
      expect(JSON.stringify(problem)).not.toContain("secret detail");
    }
  });

  test("the brand survives JSON, so an error crossing a wire is still recognized with its code", () => {
    const wire = JSON.parse(JSON.stringify(new EdgewiseError("conflict", "taken")));
    expect(isEdgewiseError(wire)).toBe(true);
    const back = toEdgewiseError(wire);
    expect(back).toBeInstanceOf(EdgewiseError);
    expect([back.code, back.status, back.public, back.message]).toEqual(["conflict", 409, true, "taken"]);
    expect(isEdgewiseError(new Error("plain"))).toBe(false);
  });

  test("an unknown code is non-public with status 500 unless told otherwise", () => {
    expect(new EdgewiseError("billing.weird", "x").status).toBe(500);
    expect(new EdgewiseError("billing.weird", "x", { status: 402, public: true }).status).toBe(402);
  });
});
