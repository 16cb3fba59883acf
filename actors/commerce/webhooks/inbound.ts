// Inbound webhooks (`POST /webhooks/inbound/{source}`): per-source secrets, verification, replay guard, Restock.
import { dueAfter } from "../../../shared/clock/index.ts";
import * as v from "valibot";
import { createEnvelope, type Envelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { validationError } from "../../../shared/errors/valibot.ts";
import { activeTraceHeaders } from "../../../shared/telemetry/trace/index.ts";
import { formatAddress } from "../../runtime/address.ts";
import type { Transport } from "../../runtime/transport.ts";
import { Participants, Restock } from "../messages.ts";
import { isSecret } from "./secret.ts";
import { type HeadersLike, type SignatureFailure, TOLERANCE_SECONDS, verify } from "./sign.ts";
import type { WebhookStore } from "./store.ts";
import { sha256Hex } from "../../../shared/crypto/hex.ts";

/** Source name → its secrets. A source listed twice has two, for rotation: either may sign. */
export type InboundSecrets = ReadonlyMap<string, readonly string[]>;

const sourceName = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Parses INBOUND_WEBHOOK_SECRETS, `source=whsec_…,source2=whsec_…`; unset or empty: no source is accepted. */
export function parseInboundSecrets(text: string | undefined): InboundSecrets {
  const secrets = new Map<string, string[]>();
  for (const entry of (text ?? "").split(",")) {
    if (entry.trim() === "") continue;
    const equals = entry.indexOf("=");
    const source = entry.slice(0, Math.max(equals, 0)).trim();
    const secret = entry.slice(equals + 1).trim();
    if (equals < 0 || !sourceName.test(source) || !isSecret(secret)) {
      // Never echo the entry: it holds a secret.
      throw new EdgewiseError(
        "config.invalid",
        "INBOUND_WEBHOOK_SECRETS is written source=whsec_…,source2=whsec_…",
        { issues: [{ path: "INBOUND_WEBHOOK_SECRETS", message: "written source=whsec_…,source2=whsec_…" }] },
      );
    }
    secrets.set(source, [...(secrets.get(source) ?? []), secret]);
  }
  return secrets;
}

export const RestockedPayload = v.object({
  type: v.literal("inventory.restocked"),
  sku: Restock.entries.sku,
  quantity: Restock.entries.quantity,
});
export type InboundPayload = v.InferOutput<typeof RestockedPayload>;

const payloadSchemas: Readonly<Record<string, typeof RestockedPayload>> = {
  "inventory.restocked": RestockedPayload,
};

/** Why a request was refused; the caller logs it as a security event (`unknown_source` … `replay`). */
export type InboundRefusalReason = "unknown_source" | SignatureFailure | "replay" | "invalid_payload";

export interface InboundRefusal {
  source: string;
  reason: InboundRefusalReason;
  webhookId?: string;
  /** `webhook-timestamp` as sent, in seconds. */
  timestamp?: number;
}

export type InboundVerification =
  | { ok: true; source: string; webhookId: string; timestamp: number; payload: InboundPayload }
  | { ok: false; refusal: InboundRefusal; error: EdgewiseError };

export interface InboundRequest {
  source: string;
  headers: HeadersLike;
  /** The raw body, exactly as received: the signature covers its bytes. */
  body: string;
}

function signatureMessage(reason: SignatureFailure, skew: number): string {
  switch (reason) {
    case "missing_headers":
      return "webhook-id, webhook-timestamp and webhook-signature are required";
    case "invalid_id":
      return "webhook-id must be 1-256 visible ASCII characters";
    case "invalid_timestamp":
      return "webhook-timestamp must be whole seconds since the epoch";
    case "stale":
      return `webhook-timestamp is ${skew} s old; at most ${TOLERANCE_SECONDS} s is accepted`;
    case "future":
      return `webhook-timestamp is ${-skew} s in the future; at most ${TOLERANCE_SECONDS} s is accepted`;
    case "bad_signature":
      return "no webhook-signature matches this source's secret";
  }
}

/**
 * Verifies a request against its source's secrets, then parses the payload. `unauthorized` (401) for an
 * unknown source or a bad, missing, stale or future signature; `request.invalid` (400) for a body that is
 * not JSON; `message.unknown_type` or `message.invalid` (422) for a payload it cannot take.
 */
export async function verifyInbound(
  request: InboundRequest & { secrets: InboundSecrets; now: number },
): Promise<InboundVerification> {
  const { source } = request;
  const secrets = request.secrets.get(source);
  if (!secrets || secrets.length === 0) {
    const error = new EdgewiseError("unauthorized", "unknown inbound webhook source");
    return { ok: false, refusal: { source, reason: "unknown_source" }, error };
  }
  const check = await verify({ secrets, headers: request.headers, body: request.body, now: request.now });
  if (!check.ok) {
    const skew = Math.floor(request.now / 1000) - (check.timestamp ?? 0);
    const error = new EdgewiseError("unauthorized", signatureMessage(check.reason, skew));
    const refusal: InboundRefusal = { source, reason: check.reason };
    if (check.id !== undefined) refusal.webhookId = check.id;
    if (check.timestamp !== undefined) refusal.timestamp = check.timestamp;
    return { ok: false, refusal, error };
  }
  const refused = (error: EdgewiseError): InboundVerification => ({
    ok: false,
    refusal: { source, reason: "invalid_payload", webhookId: check.id, timestamp: check.timestamp },
    error,
  });
  let json: unknown;
  try {
    json = JSON.parse(request.body);
  } catch {
    return refused(new EdgewiseError("request.invalid", "the body must be JSON"));
  }
  const type = typeof json === "object" && json !== null ? (json as { type?: unknown }).type : undefined;
  const schema =
    typeof type === "string" && Object.hasOwn(payloadSchemas, type) ? payloadSchemas[type] : undefined;
  if (!schema) {
    return refused(
      new EdgewiseError(
        "message.unknown_type",
        `inbound webhooks take ${Object.keys(payloadSchemas).join(", ")}`,
      ),
    );
  }
  const parsed = v.safeParse(schema, json);
  if (!parsed.success) return refused(validationError("message.invalid", `${type} payload`, parsed.issues));
  return { ok: true, source, webhookId: check.id, timestamp: check.timestamp, payload: parsed.output };
}

/**
 * The Restock command for `inventory/{sku}`. Its id is derived from the source and the `webhook-id`, so a
 * sender's retry becomes the same message and the sku actor's inbox applies it once; its time is the
 * sender's timestamp, so the command is the same on every retry (the trace context sent with it may differ).
 */
export async function restockCommand(
  payload: InboundPayload,
  inbound: { source: string; webhookId: string; timestamp: number },
): Promise<Envelope<v.InferOutput<typeof Restock>>> {
  return createEnvelope({
    id: `whin_${await sha256Hex(`${inbound.source}\n${inbound.webhookId}`)}`,
    type: "Restock",
    source: `edgewise://webhooks/inbound/${inbound.source}`,
    data: { sku: payload.sku, quantity: payload.quantity, source: inbound.source },
    target: formatAddress({ type: Participants.inventory, key: payload.sku }),
    time: inbound.timestamp * 1000,
  });
}

export type InboundOutcome =
  /** 202: the command is queued. */
  | { status: "accepted"; webhookId: string; payload: InboundPayload; command: Envelope }
  /** 202 as well, without doing anything again; log `refusal`. */
  | { status: "replayed"; refusal: InboundRefusal }
  /** Answer `error` (problem+json) and log `refusal`. */
  | { status: "refused"; refusal: InboundRefusal; error: EdgewiseError };

export interface InboundDeps {
  secrets: InboundSecrets;
  store: Pick<WebhookStore, "hasSeenInbound" | "recordInbound">;
  transport: Transport;
  /** Epoch ms. */
  now: number;
}

/** How long an inbound id is kept: twice the timestamp tolerance (an older webhook fails that check first). */
export const INBOUND_ID_KEEP_MS = 2 * TOLERANCE_SECONDS * 1000;

/**
 * Forgets inbound ids once they can no longer be replayed (`INBOUND_ID_KEEP_MS`), at most once per `everyMs` per
 * process, off the request path. Without it the table of seen ids grows by one row per webhook, for good.
 */
export function inboundPruner(
  store: Pick<WebhookStore, "pruneInbound">,
  options: { everyMs?: number; keepMs?: number; onError?: (error: unknown) => void } = {},
): (now: number) => void {
  const { everyMs = 60_000, keepMs = INBOUND_ID_KEEP_MS } = options;
  let last = Number.NEGATIVE_INFINITY;
  return (now) => {
    if (!dueAfter(now, last, everyMs)) return;
    last = now;
    store.pruneInbound(new Date(now - keepMs)).catch((error: unknown) => options.onError?.(error));
  };
}

/**
 * The whole inbound path. The id is marked seen only after the command was queued: marking it first would
 * turn a failed send into a silent loss, since the sender's retry would then look like a replay. Two
 * concurrent copies may both send; the command's deterministic id makes that harmless.
 */
export async function receiveInbound(deps: InboundDeps, request: InboundRequest): Promise<InboundOutcome> {
  const verified = await verifyInbound({ ...request, secrets: deps.secrets, now: deps.now });
  if (!verified.ok) return { status: "refused", refusal: verified.refusal, error: verified.error };
  const { source, webhookId, timestamp, payload } = verified;
  if (await deps.store.hasSeenInbound(source, webhookId)) {
    return { status: "replayed", refusal: { source, reason: "replay", webhookId, timestamp } };
  }
  // The command continues the request's trace (whether it records or was dropped), so the supplier's webhook and
  // the stock change it makes are one trace. The trace context is not part of the command's identity: its id, which
  // every copy shares, is what the queue and the sku actor deduplicate on.
  const command: Envelope = {
    ...(await restockCommand(payload, { source, webhookId, timestamp })),
    ...activeTraceHeaders(),
  };
  await deps.transport.send([command]);
  await deps.store.recordInbound(source, webhookId);
  return { status: "accepted", webhookId, payload, command };
}
