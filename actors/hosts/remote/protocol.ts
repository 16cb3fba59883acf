// The wire between a gateway and a remote actor host: paths, signature headers, and the signed message.
export const actorHostPaths = { ask: "/_edgewise/actors/ask", receive: "/_edgewise/actors/receive" } as const;

/**
 * A receive's body is the envelope (CloudEvents JSON); an ask's is too, with `onlyIfState: true` beside its attributes
 * when the gateway asks only if the actor has state (`AskOptions.onlyIfState`). That member is no envelope attribute
 * (CloudEvents names are lowercase, so none can clash with it) and is signed with the rest of the body. An actor host
 * that predates it ignores it: `parseEnvelope` drops members the envelope schema does not name, and the ask runs.
 */
export const onlyIfStateMember = "onlyIfState";

/**
 * The actor host's answer, JSON, to an ask or a receive:
 * - `{ ok: true, duplicate, reply }`, 200: the turn committed, or its message id was handled before (the stored reply);
 * - `{ ok: true, noState: true }`, 200: an ask with `onlyIfState` whose actor has no state: none was activated and no
 *   turn ran (the gateway answers for the actor: `orderNotFound`, `neverSet`). Only sent to a gateway that asked so;
 * - `{ ok: false, error }`, with the error's status: the error as a value (`EdgewiseError.toJSON`).
 */
export type ActorHostAnswer =
  | { ok: true; duplicate: boolean; reply: unknown }
  | { ok: true; noState: true }
  | { ok: false; error: unknown };

/** A signed request that touches no actor: a gateway's /readyz proves the hop, its TLS and the shared secret. */
export const actorHostPingPath = "/_edgewise/actors/ping";

export const signatureHeaders = {
  timestamp: "x-edgewise-timestamp",
  signature: "x-edgewise-signature",
} as const;

/** How far a signed request's timestamp may be from the receiver's clock. */
export const signatureToleranceMs = 60_000;

/** What is signed: the path (so an ask can't be replayed as a receive), the timestamp, and the exact body. */
export const signedMessage = (path: string, timestamp: string, body: string) =>
  `${path}\n${timestamp}\n${body}`;
