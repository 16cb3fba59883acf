// Creating subscriptions: body validation, the SSRF check at creation, ids and secrets; deleting them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { isSubscriptionId } from "./messages.ts";
import { caseResolver } from "./ssrf-cases.ts";
import { createSubscription, deleteSubscription } from "./subscriptions.ts";
import { testStore } from "./test-support.ts";
import { edgewiseRejection } from "../../../test/support/errors.ts";

let db: Awaited<ReturnType<typeof testStore>>;
beforeAll(async () => {
  db = await testStore("subscriptions");
});
afterAll(() => db.close());

describe("createSubscription", () => {
  const guarded = () => ({ store: db.store, policy: { resolve: caseResolver() } });

  test("returns the id, the URL, the events and the secret, shown this once", async () => {
    const created = await createSubscription(guarded(), {
      url: "https://hooks.example.com/in",
      events: ["order.confirmed", "order.cancelled", "order.confirmed"],
    });
    expect(isSubscriptionId(created.id)).toBe(true);
    expect(created).toMatchObject({
      url: "https://hooks.example.com/in",
      events: ["order.confirmed", "order.cancelled"],
    });
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(await db.store.getSubscription(created.id)).toMatchObject({
      secret: created.secret,
      deletedAt: null,
    });
  });

  test("a bad body is request.invalid with the field's path", async () => {
    const cases: Array<[unknown, string]> = [
      [{ url: "https://hooks.example.com/", events: [] }, "events"],
      [{ url: "https://hooks.example.com/", events: ["order.placed"] }, "events.0"],
      [{ url: "not a url", events: ["order.confirmed"] }, "url"],
      [{ events: ["order.confirmed"] }, "url"],
      [{ url: "https://hooks.example.com/", events: ["order.confirmed"], secret: "mine" }, "secret"],
      [{ url: `https://hooks.example.com/${"x".repeat(2048)}`, events: ["order.confirmed"] }, "url"],
      // Stored as sent: a NUL would reach Postgres, which refuses it in text (it was a 500).
      [{ url: "https://hooks.example.com/\u0000", events: ["order.confirmed"] }, "url"],
      [{ url: "https://hooks.example.com/a\tb", events: ["order.confirmed"] }, "url"],
    ];
    for (const [body, path] of cases) {
      const error = await edgewiseRejection(createSubscription(guarded(), body));
      expect(error).toMatchObject({ code: "request.invalid", status: 400 });
      expect(error.issues?.[0]?.path).toBe(path);
    }
  });

  test("a URL the guard refuses is refused at creation, unless allowPrivate", async () => {
    for (const url of [
      "http://169.254.169.254/latest/meta-data/",
      "http://[::1]:8080/",
      "http://localhost/",
      "http://internal.example/",
      "ftp://hooks.example.com/",
    ]) {
      const error = await edgewiseRejection(
        createSubscription(guarded(), { url, events: ["order.confirmed"] }),
      );
      expect(error).toMatchObject({ code: "request.invalid", issues: [{ path: "url" }] });
      // Worded as the gateway words every other invalid body.
      expect(error.message).toStartWith("body is invalid (url: ");
    }
    const dev = { store: db.store, policy: { resolve: caseResolver(), allowPrivate: true } };
    expect(
      await createSubscription(dev, { url: "http://127.0.0.1:9/", events: ["order.rejected"] }),
    ).toMatchObject({
      url: "http://127.0.0.1:9/",
    });
    const ftp = await edgewiseRejection(
      createSubscription(dev, { url: "ftp://127.0.0.1/", events: ["order.rejected"] }),
    );
    expect(ftp.code).toBe("request.invalid");
  });
});

describe("deleteSubscription", () => {
  test("deletes once it exists; unknown and malformed ids are not_found", async () => {
    const policy = { resolve: caseResolver(), allowPrivate: true };
    const created = await createSubscription(
      { store: db.store, policy },
      { url: "http://127.0.0.1:9/", events: ["order.confirmed"] },
    );
    await deleteSubscription(db.store, created.id);
    expect((await db.store.listSubscriptions()).map((s) => s.id)).not.toContain(created.id);
    for (const id of ["whsub_zzzzzzzzzzzzzzzz", "outbound", "'; drop table webhook_subscriptions; --"]) {
      expect((await edgewiseRejection(deleteSubscription(db.store, id))).code).toBe("not_found");
    }
  });
});
