// A remote actor host, reached over HTTP with signed requests: the ActorHost of a split deployment's gateway.
import type { Envelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError, isEdgewiseError, toEdgewiseError } from "../../../shared/errors/index.ts";
import { hmacSigner } from "../../../shared/crypto/hmac.ts";
import { activeTraceHeaders } from "../../../shared/telemetry/trace/index.ts";
import {
  type ActorAddress,
  type ActorHost,
  type AskOptions,
  askEnvelope,
  type TurnOutcome,
} from "../../runtime/index.ts";
import {
  type ActorHostAnswer,
  actorHostPaths,
  actorHostPingPath,
  onlyIfStateMember,
  signatureHeaders,
  signedMessage,
} from "./protocol.ts";

export interface RemoteActorHostOptions {
  /** The actor host's base URL, e.g. `https://actors.internal:9443`. */
  baseUrl: string;
  /** Shared with the actor host; mutual TLS (issue 8) adds the transport's own identity on top. */
  secret: string;
  fetch?: typeof fetch;
}

/** Codes of a connection that failed or closed under the request (Bun's fetch, and undici's in `cause`). */
const connectionErrorCodes = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ConnectionClosed",
  "ConnectionRefused",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
]);

export function isConnectionError(error: unknown): boolean {
  for (let at = error, depth = 0; typeof at === "object" && at !== null && depth < 4; depth += 1) {
    const { code, name } = at as { code?: unknown; name?: unknown };
    if (name === "AbortError" || name === "TimeoutError") return false;
    if (typeof code === "string" && connectionErrorCodes.has(code)) return true;
    at = (at as { cause?: unknown }).cause;
  }
  return false;
}

export class RemoteActorHost implements ActorHost {
  private readonly signer: ReturnType<typeof hmacSigner>;
  private readonly fetch: typeof fetch;
  private readonly base: string;

  constructor(options: RemoteActorHostOptions) {
    this.signer = hmacSigner(options.secret);
    this.fetch = options.fetch ?? fetch;
    this.base = options.baseUrl.replace(/\/+$/, "");
  }

  /**
   * With `onlyIfState`, the same request says so (protocol.ts, `onlyIfStateMember`): the actor host answers
   * `noState` for an actor without state, in this one round trip. An actor host that predates the option runs the
   * ask as before, and its reply (or the actor's error) comes back as usual.
   */
  async ask(
    address: ActorAddress,
    type: string,
    data: unknown,
    options: AskOptions = {},
  ): Promise<TurnOutcome> {
    const envelope = askEnvelope(address, type, data, options);
    const body = options.onlyIfState ? { ...envelope, [onlyIfStateMember]: true } : envelope;
    return this.call(actorHostPaths.ask, body, options.signal, options.onlyIfState === true);
  }

  receive(envelope: Envelope): Promise<TurnOutcome> {
    return this.call(actorHostPaths.receive, envelope);
  }

  /**
   * A signed request that runs no turn: resolves when the actor host took this gateway's signature, so the hop,
   * its TLS and the shared secret all work (a gateway's /readyz). Throws what an ask would meet otherwise.
   */
  async ping(signal?: AbortSignal): Promise<void> {
    const response = await this.post(actorHostPingPath, "{}", signal);
    await response.body?.cancel();
    if (response.ok) return;
    throw response.status === 401
      ? signatureRefused()
      : new Error(`the actor host answered ${response.status}`);
  }

  private async post(path: string, body: string, signal?: AbortSignal): Promise<Response> {
    // Signed per attempt: a retry carries a fresh timestamp, the same body and so the same envelope id.
    const timestamp = String(Date.now());
    return this.fetch(`${this.base}${path}`, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/json",
        [signatureHeaders.timestamp]: timestamp,
        [signatureHeaders.signature]: await this.signer.sign(signedMessage(path, timestamp, body)),
        // The caller's span: the actor host's SERVER span continues it, so a split deployment keeps one trace.
        ...activeTraceHeaders(),
      },
      ...(signal ? { signal } : {}),
    });
  }

  private async call(
    path: string,
    message: Envelope | Record<string, unknown>,
    signal?: AbortSignal,
    onlyIfState = false,
  ): Promise<TurnOutcome> {
    const body = JSON.stringify(message);
    let response: Response;
    try {
      response = await this.post(path, body, signal).catch((error: unknown) => {
        // Retried once, and only when the connection itself failed (reset, refused, closed): a pooled
        // keep-alive connection the actor host just closed, or a listener retired by a TLS rotation. This is
        // safe even if the first attempt reached the actor: the envelope and its id are the same, and the
        // actor host's inbox deduplicates by message id, so the turn runs at most once and the retry gets its
        // stored reply. No retry after a timeout or an abort, nor on any HTTP answer.
        if (signal?.aborted || !isConnectionError(error)) throw error;
        return this.post(path, body, signal);
      });
    } catch (error) {
      if (signal?.aborted)
        throw new EdgewiseError("timeout", "the actor host did not answer in time", { cause: error });
      throw new EdgewiseError("unavailable", "the actor host is unreachable", { cause: error });
    }
    const answer = (await response.json().catch(() => undefined)) as Partial<ActorHostAnswer> | undefined;
    const wire = typeof answer?.ok === "boolean" ? (answer as ActorHostAnswer) : undefined;
    // The actor host's own refusal (a problem, not the wire's answer): this gateway's secret or clock is wrong.
    if (!wire && response.status === 401) throw signatureRefused();
    if (!wire)
      throw new EdgewiseError("unavailable", `the actor host answered ${response.status} without a body`);
    // `noState` is taken only where it was asked for: to any other ask it would be a reply-less success.
    if (wire.ok && "noState" in wire && wire.noState === true && onlyIfState)
      return { duplicate: false, reply: undefined, noState: true };
    if (wire.ok && "duplicate" in wire) return { duplicate: wire.duplicate, reply: wire.reply };
    if (wire.ok)
      throw new EdgewiseError("internal", "the actor host answered ok with neither a reply nor noState");
    throw isEdgewiseError(wire.error)
      ? toEdgewiseError(wire.error)
      : new EdgewiseError("internal", "actor host failed");
  }
}

/** A 500 whose log line says what to fix: the client sees only "internal", as for any misconfiguration. */
const signatureRefused = () =>
  new EdgewiseError(
    "internal",
    "the actor host refused this gateway's signature: ACTOR_HOST_SECRET differs between them, or their clocks are more than 60 s apart",
  );
