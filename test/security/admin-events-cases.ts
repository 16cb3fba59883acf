// The admin-audit cases, run on a node's real activity log (Postgres or the embedded PGlite): one event per action.
import { expect } from "bun:test";
import type postgres from "postgres";
import { issueToken } from "../../edge/middleware/auth/tokens.ts";
import type { EdgewiseNode } from "../../deploy/bun/node.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { eventually, uniqueName } from "../commerce/client.ts";

export interface AuditedNode {
  url: string;
  sql: postgres.Sql;
  jwtSecret: string;
  brokerUrl: string;
  brokerToken: string;
  /** The node's JSON log lines so far (warn and above at least). */
  lines: string[];
}

/** The audit cases' view of a running node: its URL, its Postgres, the key its tokens are signed with, its broker. */
export function auditedView(node: EdgewiseNode, jwtSecret: string, lines: string[]): AuditedNode {
  return {
    url: node.url,
    sql: node.sql,
    jwtSecret,
    brokerUrl: node.brokerUrl,
    brokerToken: node.broker?.token ?? "",
    lines,
  };
}

export interface Answer {
  status: number;
  body: Record<string, unknown>;
  requestId: string;
  contentType?: string;
}

export interface StoredEvent {
  type: string;
  /** The stored row as text: the envelope and every column, where no secret may appear. */
  json: string;
  envelope: { subject?: string; data: Record<string, unknown> };
}

export const token = (node: AuditedNode, sub: string, scopes: string[] = ["admin"]) =>
  issueToken({ sub, scopes, ttlSeconds: 600, secret: node.jwtSecret });

/** One call as `credential` (a JWT, or `{ apiKey }`); the answer's body parsed when it is JSON. */
export async function call(
  node: AuditedNode,
  method: string,
  path: string,
  credential: string | { apiKey: string },
  body?: unknown,
): Promise<Answer> {
  const response = await fetch(`${node.url}${path}`, {
    method,
    redirect: "manual",
    headers: {
      ...(typeof credential === "string"
        ? { authorization: `Bearer ${credential}` }
        : { "x-api-key": credential.apiKey }),
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  let parsed: Record<string, unknown> = {};
  if ((response.headers.get("content-type") ?? "").includes("json") && text) parsed = JSON.parse(text);
  return {
    status: response.status,
    body: parsed,
    requestId: response.headers.get("x-request-id") ?? "",
    contentType: response.headers.get("content-type") ?? "",
  };
}

export async function lastSeq(sql: postgres.Sql): Promise<string> {
  const [row] = await sql<{ seq: string }[]>`SELECT coalesce(max(seq), 0)::text AS seq FROM activity_log`;
  return row?.seq ?? "0";
}

/** The admin events recorded after `seq`, oldest first, read from the table itself. */
export async function adminEventsAfter(sql: postgres.Sql, seq: string): Promise<StoredEvent[]> {
  const rows = await sql<{ type: string; json: string; envelope: StoredEvent["envelope"] }[]>`
    SELECT type, row_to_json(a)::text AS json, envelope FROM activity_log a
    WHERE seq > ${seq}::bigint AND type LIKE 'admin.%' ORDER BY seq`;
  return rows.map((row) => ({ ...row }));
}

/**
 * Makes the activity log refuse, as a failing database would, every `admin.account_set` record whose subject starts
 * with `prefix`: a trigger on the node's own table (its schema), raising an error. Returns what drops it again.
 */
export function refuseAccountRecords(sql: postgres.Sql, prefix: string): Promise<() => Promise<void>> {
  return refuseRecords(sql, "admin.account_set", prefix);
}

/**
 * Makes the activity log refuse every record of `type` whose subject (or, given `path`, the text at that path of its
 * data, e.g. `["target", "sub"]`) starts with `prefix`: a trigger on the node's own table, raising an error, as a
 * failing database would. Returns what drops it again.
 */
export async function refuseRecords(
  sql: postgres.Sql,
  type: string,
  prefix: string,
  path?: string[],
): Promise<() => Promise<void>> {
  const name = `refuse_${prefix.replace(/[^a-z0-9]/gi, "_").toLowerCase()}_${crypto.randomUUID().slice(0, 8)}`;
  const field = path ? `NEW.data #>> '{${path.join(",")}}'` : "NEW.subject";
  await sql.unsafe(`
    CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.type = '${type}' AND starts_with(${field}, '${prefix}') THEN
        RAISE EXCEPTION 'the activity log refuses this record (a test)';
      END IF;
      RETURN NEW;
    END $$`);
  await sql.unsafe(
    `CREATE TRIGGER ${name} BEFORE INSERT ON activity_log FOR EACH ROW EXECUTE FUNCTION ${name}()`,
  );
  return async () => {
    await sql.unsafe(`DROP TRIGGER ${name} ON activity_log`);
    await sql.unsafe(`DROP FUNCTION ${name}()`);
  };
}

/** `act` while the activity log refuses those records (`refuseRecords`); the log takes them again after. */
export async function whileRefused(
  sql: postgres.Sql,
  refused: { type: string; prefix: string; path?: string[] },
  act: () => Promise<Answer>,
): Promise<Answer> {
  const allow = await refuseRecords(sql, refused.type, refused.prefix, refused.path);
  try {
    return await act();
  } finally {
    await allow();
  }
}

/** The answer to an admin action whose record could not be written: 503 problem+json, saying nothing of why. */
export function expectRefusedForItsRecord(answer: Answer): void {
  expect(answer.status).toBe(503);
  expect(answer.contentType).toStartWith("application/problem+json");
  expect(answer.body).toMatchObject({ status: 503, title: "Service unavailable" });
  expect(JSON.stringify(answer.body)).not.toContain("refuses this record");
}

/** How many records of `action` failed so far, from the node's /metrics. */
export async function failedRecords(node: AuditedNode, action: string): Promise<number> {
  const line = (await (await fetch(`${node.url}/metrics`)).text())
    .split("\n")
    .find((series) => series.startsWith(`edgewise_admin_events_total{action="${action}",outcome="failed"}`));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

/**
 * The answer to an action that takes access away, whose record could not be written: the action stood, and the node
 * said so: one warn line naming the action and its target (action_rolled_back: false, never a secret), and one more
 * `edgewise_admin_events_total{action,outcome="failed"}` than `failedBefore`.
 */
export async function expectStoodUnrecorded(
  node: AuditedNode,
  answer: Answer,
  action: string,
  subject: string,
  failedBefore: number,
  secrets: string[],
): Promise<void> {
  let warned: Record<string, unknown> | undefined;
  await eventually(async () => {
    warned = node.lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((l) => l.msg === "admin event not recorded" && l.request_id === answer.requestId);
    return warned !== undefined;
  }, "the warn line of the record not written");
  expect(warned).toMatchObject({ level: "warn", action, target: { subject }, action_rolled_back: false });
  for (const secret of secrets) expect(JSON.stringify(warned)).not.toContain(secret);
  // /metrics may serve its last render for a moment: wait for one made after the failure.
  await eventually(
    async () => (await failedRecords(node, action)) === failedBefore + 1,
    "the failed record counted",
  );
}

/** Runs `act`, then expects exactly one admin event, of `type`, naming the request and holding none of `secrets`. */
export async function onlyEvent(
  node: AuditedNode,
  type: string,
  act: () => Promise<Answer>,
  expectStatus: number,
  /** The secrets the event must not hold, given the answer (which may be the one showing them). */
  secrets: (answer: Answer) => string[],
): Promise<{ answer: Answer; event: StoredEvent; data: Record<string, unknown> }> {
  const before = await lastSeq(node.sql);
  const answer = await act();
  expect(answer.status).toBe(expectStatus);
  const events = await adminEventsAfter(node.sql, before);
  expect(events.map((event) => event.type)).toEqual([type]);
  const event = events[0] as StoredEvent;
  const data = event.envelope.data;
  expect(data.requestId).toBe(answer.requestId);
  expect(data.clientIp).toBe("127.0.0.1");
  for (const secret of secrets(answer)) {
    expect(secret.length).toBeGreaterThan(8);
    expect(event.json).not.toContain(secret);
  }
  return { answer, event, data };
}

/** Dead-letters one message on the node's embedded broker (its target refuses the type); returns its dlqId. */
export async function deadLetter(node: AuditedNode): Promise<string> {
  const broker = (path: string, init: RequestInit = {}) =>
    fetch(`${node.brokerUrl}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${node.brokerToken}`, ...init.headers },
    });
  const target = `loyalty/${uniqueName("audit")}`;
  const envelope = createEnvelope({ type: "NoSuchMessage", source: "edgewise://test", target, data: {} });
  const published = await broker(`/v2/publish/${node.url}/_edgewise/deliver/${target}`, {
    method: "POST",
    headers: { "content-type": "application/json", "upstash-retries": "0" },
    body: JSON.stringify(envelope),
  });
  expect(published.status).toBe(201);
  let dlqId = "";
  await eventually(async () => {
    const { messages } = (await (await broker("/v2/dlq")).json()) as {
      messages: Array<{ url: string; dlqId: string }>;
    };
    dlqId = messages.find((letter) => letter.url.endsWith(target))?.dlqId ?? "";
    return dlqId !== "";
  }, "the refused delivery's dead letter");
  return dlqId;
}

/**
 * A Bun node with the real Postgres (its own schema `name`) whose log lines at warn and above are kept in `lines`,
 * for the audit tests that check a failed record's warn line; `postgresTimeoutMs` as startNode's.
 */
export async function startAuditedNode(
  name: string,
  env: Record<string, string> = {},
  options: { postgresTimeoutMs?: number } = {},
): Promise<{ running: CommerceNode; node: AuditedNode }> {
  const lines: string[] = [];
  const running = await startCommerceNode(
    name,
    { LOG_LEVEL: "warn", ...env },
    { log: (line) => lines.push(line), ...options },
  );
  return { running, node: auditedView(running.node, running.jwtSecret, lines) };
}

/**
 * The `postgres` timeout of the deadline tests' nodes (startNode's `postgresTimeoutMs`): shorter than the default 5 s,
 * which each case waited out, and still several times what their other calls take on a loaded machine (the 300 ms
 * wait and the call of account-set-deadline's tail case among them, which must not time out).
 */
export const deadlineTestTimeoutMs = 3_000;

/**
 * Another session of `sql` takes `lock` and holds it past the node's `postgres` timeout (`deadlineTestTimeoutMs`):
 * resolves once it is taken, with `letGo`, which ends the hold (once the caller has its answer) and resolves once
 * it is let go. The hold ends on its own after 6.5 s, under REQUEST_TIMEOUT (10 s): a call whose deadline is not
 * enforced then goes on and commits, and its test sees it.
 */
export async function holdingPastDeadline(
  sql: postgres.Sql,
  lock: (tx: postgres.TransactionSql) => Promise<unknown>,
): Promise<{ letGo: () => Promise<void> }> {
  let taken!: () => void;
  const held = new Promise<void>((resolve) => {
    taken = resolve;
  });
  let letGoNow!: () => void;
  const asked = new Promise<void>((resolve) => {
    letGoNow = resolve;
  });
  const released = sql
    .begin(async (tx) => {
      await lock(tx);
      taken();
      await Promise.race([asked, Bun.sleep(6_500)]);
    })
    .then(() => undefined);
  await held;
  return {
    letGo: () => {
      letGoNow();
      return released;
    },
  };
}
