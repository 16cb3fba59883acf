// The admin-audit tests, for a node given later: each admin action, each refusal, a grant refused and a revocation
// kept when its record fails, the log's append-only trigger.
import { expect, test } from "bun:test";
import { signingSecrets } from "../../actors/commerce/webhooks/management.ts";
import type { WebhookSubscription } from "../../actors/commerce/webhooks/store.ts";
import { uniqueName } from "../commerce/client.ts";
import {
  adminEventsAfter,
  type AuditedNode,
  call,
  deadLetter,
  expectRefusedForItsRecord,
  expectStoodUnrecorded,
  failedRecords,
  lastSeq,
  onlyEvent,
  refuseAccountRecords,
  token,
  whileRefused,
} from "./admin-events-cases.ts";

export function adminAuditTests(node: () => AuditedNode): void {
  test("API keys, balances, stock and webhook subscriptions: one admin.* event each, naming who, never a secret", async () => {
    const n = node();
    const root = await token(n, "root");
    const customerId = uniqueName("audit-cust");
    const sku = uniqueName("audit-sku");
    const created = await onlyEvent(
      n,
      "admin.api_key_created",
      () => call(n, "POST", "/v1/api-keys", root, { sub: "ops", scopes: ["admin"], name: "ops key" }),
      201,
      (answer) => [String(answer.body.key), String(answer.body.key).slice(-24), root],
    );
    const key = String(created.answer.body.key);
    const keyId = String(created.answer.body.id);
    expect(created.answer.body.key).toBeString();
    expect(created.data.actor).toEqual({ sub: "root", via: "jwt" });
    expect(created.data.target).toEqual({ subject: `api-keys/${keyId}`, apiKeyId: keyId, sub: "ops" });
    expect(created.data.change).toEqual({ scopes: ["admin"], name: "ops key" });
    // Checked after the answer: the secret in hand, the stored row read again.
    const [again] = await adminEventsAfter(n.sql, "0").then((all) =>
      all.filter((e) => e.envelope.subject === `api-keys/${keyId}`),
    );
    expect(again?.json).not.toContain(key);
    expect(again?.json).not.toContain(key.slice(-20));

    // The money: who set it (an API key, by id), before and after.
    const viaKey = { apiKey: key };
    const funded = await onlyEvent(
      n,
      "admin.account_set",
      () => call(n, "PUT", `/v1/accounts/${customerId}`, viaKey, { balanceCents: 1_000_000 }),
      200,
      () => [key],
    );
    expect(funded.answer.body).toEqual({ customerId, balanceCents: 1_000_000 });
    expect(funded.data.actor).toEqual({ sub: "ops", via: "api-key", apiKeyId: keyId });
    expect(funded.data.target).toEqual({ subject: customerId, customerId });
    expect(funded.data.change).toEqual({ balanceCentsBefore: 0, balanceCentsAfter: 1_000_000 });
    const lowered = await onlyEvent(
      n,
      "admin.account_set",
      () => call(n, "PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 250 }),
      200,
      () => [root],
    );
    expect(lowered.data.change).toEqual({ balanceCentsBefore: 1_000_000, balanceCentsAfter: 250 });

    const stocked = await onlyEvent(
      n,
      "admin.inventory_set",
      () => call(n, "PUT", `/v1/inventory/${sku}`, root, { available: 7, priceCents: 1299 }),
      200,
      () => [root],
    );
    expect(stocked.data.target).toEqual({ subject: sku, sku });
    expect(stocked.data.change).toEqual({ availableAfter: 7, priceCentsAfter: 1299 });

    // A webhook: its secret (and a token in its URL's query) never stored in the event.
    const hook = await onlyEvent(
      n,
      "admin.webhook_subscription_created",
      () =>
        call(n, "POST", "/v1/webhooks/subscriptions", root, {
          url: "http://127.0.0.1:9/hooks?token=query-token-never-logged",
          events: ["order.confirmed"],
        }),
      201,
      (answer) => [String(answer.body.secret), "query-token-never-logged", root],
    );
    const secret = String(hook.answer.body.secret);
    const subscriptionId = String(hook.answer.body.id);
    expect(hook.data.target).toEqual({ subject: `webhooks/${subscriptionId}`, subscriptionId });
    expect(hook.data.change).toEqual({ url: "http://127.0.0.1:9/hooks", events: ["order.confirmed"] });
    expect((await adminEventsAfter(n.sql, "0")).map((e) => e.json).join("")).not.toContain(secret);

    const rotated = await onlyEvent(
      n,
      "admin.webhook_secret_rotated",
      () => call(n, "POST", `/v1/webhooks/subscriptions/${subscriptionId}/rotate-secret`, root, {}),
      200,
      (answer) => [String(answer.body.secret), secret, root],
    );
    const rotatedSecret = String(rotated.answer.body.secret);
    expect(rotatedSecret).toStartWith("whsec_");
    expect(rotated.event.json).not.toContain(rotatedSecret);
    await onlyEvent(
      n,
      "admin.webhook_subscription_deleted",
      () => call(n, "DELETE", `/v1/webhooks/subscriptions/${subscriptionId}`, root),
      204,
      () => [secret, rotatedSecret, root],
    );

    const revoked = await onlyEvent(
      n,
      "admin.api_key_revoked",
      () => call(n, "DELETE", `/v1/api-keys/${keyId}`, root),
      204,
      () => [key, root],
    );
    expect(revoked.data.target).toEqual({ subject: `api-keys/${keyId}`, apiKeyId: keyId });

    // GET /v1/activity shows them to admins: by type, and by the account as subject.
    const byType = await call(n, "GET", "/v1/activity?type=admin.account_set", root);
    expect(byType.status).toBe(200);
    const items = byType.body.items as Array<{ subject: string; type: string }>;
    expect(items.filter((item) => item.subject === customerId)).toHaveLength(2);
    const bySubject = await call(n, "GET", `/v1/activity?subject=${customerId}`, root);
    expect((bySubject.body.items as Array<{ type: string }>).map((item) => item.type)).toEqual([
      "admin.account_set",
      "admin.account_set",
    ]);
    const customer = await token(n, customerId, ["billing:write", "billing:read"]);
    expect((await call(n, "GET", "/v1/activity?type=admin.account_set", customer)).status).toBe(403);
  }, 60_000);

  test("a balance set whose record cannot be written is refused: 503 problem+json, balance and ledger unchanged", async () => {
    const n = node();
    const root = await token(n, "root");
    const customerId = uniqueName("audit-refused");
    await onlyEvent(
      n,
      "admin.account_set",
      () => call(n, "PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 500 }),
      200,
      () => [root],
    );
    const journal = async () => {
      const [row] = await n.sql<{ moves: string }[]>`
        SELECT count(*)::text AS moves FROM billing_transactions WHERE customer_id = ${customerId}`;
      return row?.moves;
    };
    const movesBefore = await journal();
    const before = await lastSeq(n.sql);
    // The log refuses this customer's records (a real error from the real table, on this node's schema only).
    const allow = await refuseAccountRecords(n.sql, customerId);
    let refused: Awaited<ReturnType<typeof call>>;
    try {
      refused = await call(n, "PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 1_000_000 });
    } finally {
      await allow();
    }
    expect(refused.status).toBe(503);
    expect(refused.contentType).toStartWith("application/problem+json");
    expect(refused.body).toMatchObject({ status: 503, title: "Service unavailable" });
    expect(JSON.stringify(refused.body)).not.toContain("refuses this record");
    // Neither the balance nor its journal moved, and nothing was recorded.
    expect((await call(n, "GET", `/v1/accounts/${customerId}`, root)).body).toEqual({
      customerId,
      balanceCents: 500,
    });
    expect(await journal()).toBe(movesBefore);
    expect(await adminEventsAfter(n.sql, before)).toEqual([]);
    // With the log writable again, the same set is made once, and recorded once, from the balance it really replaced.
    const retried = await onlyEvent(
      n,
      "admin.account_set",
      () => call(n, "PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 1_000_000 }),
      200,
      () => [root],
    );
    expect(retried.data.change).toEqual({ balanceCentsBefore: 500, balanceCentsAfter: 1_000_000 });
    expect((await call(n, "GET", `/v1/accounts/${customerId}`, root)).body.balanceCents).toBe(1_000_000);
  }, 30_000);

  test("an API key creation whose record cannot be written is refused: 503, no key left behind, none shown", async () => {
    const n = node();
    const root = await token(n, "root");
    const sub = uniqueName("audit-keyless");
    const keysOf = async () =>
      (await n.sql<{ id: string }[]>`SELECT id FROM edgewise_api_keys WHERE sub = ${sub}`).map(
        (row) => row.id,
      );
    const before = await lastSeq(n.sql);
    const create = () => call(n, "POST", "/v1/api-keys", root, { sub, scopes: ["admin"], name: "refused" });
    // The log refuses the records of keys for this subject (a real error from the real table).
    const refused = await whileRefused(
      n.sql,
      { type: "admin.api_key_created", prefix: sub, path: ["target", "sub"] },
      create,
    );
    expectRefusedForItsRecord(refused);
    expect(refused.body.key).toBeUndefined();
    expect(refused.body.id).toBeUndefined();
    expect(JSON.stringify(refused.body)).not.toContain("ew_");
    // No key row at all: nothing that could authenticate, and nothing recorded.
    expect(await keysOf()).toEqual([]);
    expect(await adminEventsAfter(n.sql, before)).toEqual([]);
    // The retry makes one key, recorded once, and it works.
    const retried = await onlyEvent(n, "admin.api_key_created", create, 201, (answer) => [
      String(answer.body.key),
      root,
    ]);
    expect(await keysOf()).toEqual([String(retried.answer.body.id)]);
    const key = { apiKey: String(retried.answer.body.key) };
    expect((await call(n, "GET", `/v1/activity?subject=${retried.event.envelope.subject}`, key)).status).toBe(
      200,
    );
  }, 30_000);

  test("an API key revocation whose record cannot be written still revokes: 204, the key stops working, warned and counted", async () => {
    const n = node();
    const root = await token(n, "root");
    const issued = await call(n, "POST", "/v1/api-keys", root, {
      sub: uniqueName("audit-leaked"),
      scopes: ["admin"],
    });
    expect(issued.status).toBe(201);
    const keyId = String(issued.body.id);
    const key = { apiKey: String(issued.body.key) };
    const works = async () => (await call(n, "GET", `/v1/activity?subject=api-keys/${keyId}`, key)).status;
    const revokedAt = async () =>
      (
        await n.sql<
          { revoked_at: Date | null }[]
        >`SELECT revoked_at FROM edgewise_api_keys WHERE id = ${keyId}`
      )[0]?.revoked_at;
    expect(await works()).toBe(200);
    const failedBefore = await failedRecords(n, "api_key_revoked");
    const before = await lastSeq(n.sql);
    const revoke = () => call(n, "DELETE", `/v1/api-keys/${keyId}`, root);
    // The log refuses this key's revocation record (a real error from the real table): the revocation holds anyway.
    const answer = await whileRefused(
      n.sql,
      { type: "admin.api_key_revoked", prefix: `api-keys/${keyId}` },
      revoke,
    );
    expect(answer.status).toBe(204);
    // Revoked in the row (not just this node's cache), and the key no longer authenticates.
    expect(await revokedAt()).toBeInstanceOf(Date);
    expect(await works()).toBe(401);
    // No record; the warn line and the failed counter say so.
    expect(await adminEventsAfter(n.sql, before)).toEqual([]);
    await expectStoodUnrecorded(n, answer, "api_key_revoked", `api-keys/${keyId}`, failedBefore, [
      key.apiKey,
      root,
    ]);
    // Revoking again (not an error) writes the record the first one could not.
    const repeated = await onlyEvent(n, "admin.api_key_revoked", revoke, 204, () => [key.apiKey, root]);
    expect(repeated.data.target).toEqual({ subject: `api-keys/${keyId}`, apiKeyId: keyId });
    expect(await works()).toBe(401);
  }, 30_000);

  test("a webhook subscription whose record cannot be written is refused: 503, no subscription, no secret shown", async () => {
    const n = node();
    const root = await token(n, "root");
    const url = `http://127.0.0.1:9/${uniqueName("audit-hookless")}`;
    const rowsOf = async () =>
      (await n.sql<{ id: string }[]>`SELECT id FROM webhook_subscriptions WHERE url = ${url}`).map(
        (row) => row.id,
      );
    const before = await lastSeq(n.sql);
    const subscribe = () =>
      call(n, "POST", "/v1/webhooks/subscriptions", root, { url, events: ["order.confirmed"] });
    const refused = await whileRefused(
      n.sql,
      { type: "admin.webhook_subscription_created", prefix: url, path: ["change", "url"] },
      subscribe,
    );
    expectRefusedForItsRecord(refused);
    expect(refused.body.secret).toBeUndefined();
    expect(JSON.stringify(refused.body)).not.toContain("whsec_");
    expect(await rowsOf()).toEqual([]);
    expect(await adminEventsAfter(n.sql, before)).toEqual([]);
    const retried = await onlyEvent(n, "admin.webhook_subscription_created", subscribe, 201, (answer) => [
      String(answer.body.secret),
      root,
    ]);
    const id = String(retried.answer.body.id);
    expect(await rowsOf()).toEqual([id]);
    expect(retried.data.target).toEqual({ subject: `webhooks/${id}`, subscriptionId: id });
    expect((await call(n, "GET", `/v1/webhooks/subscriptions/${id}`, root)).status).toBe(200);
  }, 30_000);

  /** A new subscription, its secret, and a reader of its stored secrets and deletion. */
  async function subscribed(n: AuditedNode, root: string) {
    const created = await call(n, "POST", "/v1/webhooks/subscriptions", root, {
      url: `http://127.0.0.1:9/${uniqueName("audit-hook")}`,
      events: ["order.confirmed"],
    });
    expect(created.status).toBe(201);
    const id = String(created.body.id);
    const stored = async () => {
      const [row] = await n.sql<
        {
          secret: string;
          previous_secret: string | null;
          previous_secret_expires_at: Date | null;
          deleted_at: Date | null;
        }[]
      >`SELECT secret, previous_secret, previous_secret_expires_at, deleted_at
        FROM webhook_subscriptions WHERE id = ${id}`;
      return row;
    };
    return { id, secret: String(created.body.secret), subject: `webhooks/${id}`, stored };
  }

  test("a secret rotation whose record cannot be written still rotates: 200, the old secret stops signing, warned and counted", async () => {
    const n = node();
    const root = await token(n, "root");
    const { id, secret, subject, stored } = await subscribed(n, root);
    const failedBefore = await failedRecords(n, "webhook_secret_rotated");
    const before = await lastSeq(n.sql);
    // A leaked secret, rotated out at once (no overlap) while the log refuses the rotation's record.
    const answer = await whileRefused(n.sql, { type: "admin.webhook_secret_rotated", prefix: subject }, () =>
      call(n, "POST", `/v1/webhooks/subscriptions/${id}/rotate-secret`, root, { overlapSeconds: 0 }),
    );
    expect(answer.status).toBe(200);
    const fresh = String(answer.body.secret);
    expect(fresh).toStartWith("whsec_");
    expect(fresh).not.toBe(secret);
    expect(answer.body.previousSecretExpiresAt).toBeNull();
    // The stored subscription signs with the new secret only: the old one signs nothing from now on.
    const row = await stored();
    expect(row?.secret).toBe(fresh);
    const signing = signingSecrets(
      {
        secret: row?.secret ?? "",
        previousSecret: row?.previous_secret ?? null,
        previousSecretExpiresAt: row?.previous_secret_expires_at ?? null,
      } as WebhookSubscription,
      Date.now(),
    );
    expect(signing).toEqual([fresh]);
    expect(
      (await call(n, "GET", `/v1/webhooks/subscriptions/${id}`, root)).body.previousSecretExpiresAt,
    ).toBeNull();
    // No record; the warn line and the failed counter say so, never a secret.
    expect(await adminEventsAfter(n.sql, before)).toEqual([]);
    await expectStoodUnrecorded(n, answer, "webhook_secret_rotated", subject, failedBefore, [
      secret,
      fresh,
      root,
    ]);
  }, 30_000);

  test("a subscription deletion whose record cannot be written still deletes: 204, it is gone, warned and counted", async () => {
    const n = node();
    const root = await token(n, "root");
    const { id, secret, subject, stored } = await subscribed(n, root);
    const failedBefore = await failedRecords(n, "webhook_subscription_deleted");
    const before = await lastSeq(n.sql);
    const remove = () => call(n, "DELETE", `/v1/webhooks/subscriptions/${id}`, root);
    const answer = await whileRefused(
      n.sql,
      { type: "admin.webhook_subscription_deleted", prefix: subject },
      remove,
    );
    expect(answer.status).toBe(204);
    // Gone: not shown, not listed, deleted in its row (so no delivery goes to its URL any more).
    expect((await call(n, "GET", `/v1/webhooks/subscriptions/${id}`, root)).status).toBe(404);
    const listed = await call(n, "GET", "/v1/webhooks/subscriptions?limit=100", root);
    expect((listed.body.items as Array<{ id: string }>).map((item) => item.id)).not.toContain(id);
    expect((await stored())?.deleted_at).toBeInstanceOf(Date);
    // No record; the warn line and the failed counter say so.
    expect(await adminEventsAfter(n.sql, before)).toEqual([]);
    await expectStoodUnrecorded(n, answer, "webhook_subscription_deleted", subject, failedBefore, [
      secret,
      root,
    ]);
    // Deleting again (not an error) writes the record the first one could not.
    await onlyEvent(n, "admin.webhook_subscription_deleted", remove, 204, () => [secret, root]);
  }, 30_000);

  test("inventory_set carries the stock and price before and after, from the turn that applied the Put", async () => {
    const n = node();
    const root = await token(n, "root");
    const sku = uniqueName("audit-stock");
    const first = await onlyEvent(
      n,
      "admin.inventory_set",
      () => call(n, "PUT", `/v1/inventory/${sku}`, root, { available: 7, priceCents: 1299 }),
      200,
      () => [root],
    );
    // A sku never set has no values before.
    expect(first.data.change).toEqual({ availableAfter: 7, priceCentsAfter: 1299 });
    const second = await onlyEvent(
      n,
      "admin.inventory_set",
      () => call(n, "PUT", `/v1/inventory/${sku}`, root, { available: 3, priceCents: 1499 }),
      200,
      () => [root],
    );
    expect(second.data.change).toEqual({
      availableBefore: 7,
      priceCentsBefore: 1299,
      availableAfter: 3,
      priceCentsAfter: 1499,
    });

    // Concurrent Puts: whatever order the actor applied them in, each record's before is the after of exactly one
    // other (the one applied just before it), so the records chain from the first value to the last.
    const before = await lastSeq(n.sql);
    const answers = await Promise.all(
      [10, 11, 12, 13, 14].map((available) =>
        call(n, "PUT", `/v1/inventory/${sku}`, root, { available, priceCents: available * 100 }),
      ),
    );
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200]);
    const changes = (await adminEventsAfter(n.sql, before)).map(
      (event) => event.envelope.data.change as Record<string, number>,
    );
    expect(changes).toHaveLength(5);
    const next = new Map(changes.map((change) => [change.availableBefore, change]));
    let at = 3;
    const applied: number[] = [];
    for (let step = 0; step < 5; step++) {
      const change = next.get(at);
      expect(change).toBeDefined();
      expect(change?.priceCentsBefore).toBe(at === 3 ? 1499 : at * 100);
      at = change?.availableAfter ?? -1;
      applied.push(at);
    }
    expect(applied.toSorted()).toEqual([10, 11, 12, 13, 14]);
    const last = await call(n, "GET", `/v1/inventory/${sku}`, root);
    expect(last.body.available).toBe(at);
  }, 30_000);

  test("a refused admin action (401, 403, 400, 404) records nothing", async () => {
    const n = node();
    const root = await token(n, "root");
    const reader = await token(n, "reader", ["orders:read", "inventory:read"]);
    const customer = await token(n, "cust-a", ["billing:write"]);
    const before = await lastSeq(n.sql);
    const refusals: Array<[number, Promise<{ status: number }>]> = [
      [403, call(n, "POST", "/v1/api-keys", reader, { sub: "x", scopes: ["admin"] })],
      [400, call(n, "POST", "/v1/api-keys", root, { sub: "", scopes: ["admin"] })],
      [404, call(n, "DELETE", "/v1/api-keys/ak_doesnotexist0000000000", root)],
      [403, call(n, "DELETE", "/v1/api-keys/ak_doesnotexist0000000000", reader)],
      [403, call(n, "PUT", "/v1/accounts/cust-b", customer, { balanceCents: 1_000_000 })],
      [400, call(n, "PUT", "/v1/accounts/cust-a", root, { balanceCents: -1 })],
      [403, call(n, "PUT", "/v1/inventory/sku-x", reader, { available: 1, priceCents: 1 })],
      [400, call(n, "PUT", "/v1/inventory/sku-x", root, { available: -1, priceCents: 1 })],
      [
        400,
        call(n, "POST", "/v1/webhooks/subscriptions", root, {
          url: "not a url",
          events: ["order.confirmed"],
        }),
      ],
      [
        403,
        call(n, "POST", "/v1/webhooks/subscriptions", reader, { url: "http://127.0.0.1:9/", events: [] }),
      ],
      [404, call(n, "DELETE", "/v1/webhooks/subscriptions/nope", root)],
      [403, call(n, "POST", "/v1/backup", reader)],
      [401, fetch(`${n.url}/v1/backup`, { method: "POST" })],
      [403, call(n, "POST", "/_console/dlq/dlq_x/retry", reader)],
      [400, call(n, "POST", "/_console/dlq/retry/retry", root)],
    ];
    for (const [status, answer] of refusals) expect((await answer).status).toBe(status);
    expect(await adminEventsAfter(n.sql, before)).toEqual([]);
    // The control: the same caller's allowed call (its own account) is recorded, so the silence above is refusal.
    const own = await onlyEvent(
      n,
      "admin.account_set",
      () => call(n, "PUT", "/v1/accounts/cust-a", customer, { balanceCents: 1 }),
      200,
      () => [customer],
    );
    expect(own.data.actor).toEqual({ sub: "cust-a", via: "jwt" });
  }, 60_000);

  test("the console: a sign-in, and the dead-letter forms' replay, delete and purge each record who did it", async () => {
    const n = node();
    const root = await token(n, "root");
    const replayedId = await deadLetter(n);
    const replayed = await onlyEvent(
      n,
      "admin.dead_letter_replayed",
      () => call(n, "POST", `/_console/dlq/${replayedId}/retry`, root),
      303,
      () => [root],
    );
    expect(replayed.data.actor).toEqual({ sub: "root", via: "console-bearer" });
    expect(replayed.data.target).toEqual({ subject: `dlq/${replayedId}`, dlqId: replayedId });
    const deletedId = await deadLetter(n);
    const deleted = await onlyEvent(
      n,
      "admin.dead_letter_deleted",
      () => call(n, "POST", `/_console/dlq/${deletedId}/delete`, root),
      303,
      () => [root],
    );
    expect(deleted.data.target).toEqual({ subject: `dlq/${deletedId}`, dlqId: deletedId });
    // Signed in with `?token=` as a browser is: the form names the session's admin, never the cookie or the token.
    let cookie = "";
    const signedIn = await onlyEvent(
      n,
      "admin.console_signed_in",
      async () => {
        const login = await fetch(`${n.url}/_console?token=${root}`, { redirect: "manual" });
        cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] as string;
        return { status: login.status, body: {}, requestId: login.headers.get("x-request-id") ?? "" };
      },
      303,
      () => [root, cookie.slice(cookie.indexOf("=") + 1)],
    );
    expect(signedIn.data.actor).toEqual({ sub: "root", via: "jwt" });
    expect(signedIn.data.target).toEqual({ subject: "console" });
    const html = await (await fetch(`${n.url}/_console`, { headers: { cookie } })).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";
    const viaCookieId = await deadLetter(n);
    const viaCookie = await onlyEvent(
      n,
      "admin.dead_letter_deleted",
      async () => {
        const answer = await fetch(`${n.url}/_console/dlq/${viaCookieId}/delete`, {
          method: "POST",
          redirect: "manual",
          headers: { cookie, origin: n.url, "content-type": "application/x-www-form-urlencoded" },
          body: `csrf=${csrf}`,
        });
        return { status: answer.status, body: {}, requestId: answer.headers.get("x-request-id") ?? "" };
      },
      303,
      () => [root, cookie.slice(cookie.indexOf("=") + 1), csrf],
    );
    expect(viaCookie.data.actor).toEqual({ sub: "root", via: "console-cookie" });
    await onlyEvent(
      n,
      "admin.dead_letters_purged",
      () => call(n, "POST", "/_console/dlq/purge", root),
      303,
      () => [root],
    );
  }, 60_000);

  test("admin events are append-only: UPDATE and DELETE are refused by the log's trigger", async () => {
    const n = node();
    const root = await token(n, "root");
    const before = await lastSeq(n.sql);
    const answer = await call(n, "PUT", `/v1/inventory/${uniqueName("ao")}`, root, {
      available: 1,
      priceCents: 1,
    });
    expect(answer.status).toBe(200);
    const [event] = await adminEventsAfter(n.sql, before);
    expect(event?.type).toBe("admin.inventory_set");
    await expect(
      n.sql`UPDATE activity_log SET data = '{}' WHERE type LIKE 'admin.%' AND seq > ${before}::bigint`,
    ).rejects.toThrow(/append-only/);
    await expect(n.sql`DELETE FROM activity_log WHERE type LIKE 'admin.%'`).rejects.toThrow(/append-only/);
    expect((await adminEventsAfter(n.sql, before)).map((e) => e.json)).toEqual([event?.json ?? ""]);
  }, 30_000);
}
