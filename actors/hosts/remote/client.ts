// A remote actor host, reached over HTTP with signed requests: the ActorHost of a split deployment's gateway.
import type { Envelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError, isEdgewiseError, toEdgewiseError } from "../../../shared/errors/index.ts";
import { hmacSigner } from "../../../shared/crypto/hmac.ts";
import {
  type ActorAddress,
  type ActorHost,
  type AskOptions,
  askEnvelope,
  type TurnOutcome,
} from "../../runtime/index.ts";
import { actorHostPaths, signatureHeaders, signedMessage } from "./protocol.ts";

export interface RemoteActorHostOptions {
  /** The actor host's base URL, e.g. `https://actors.internal:9443`. */
  baseUrl: string;
  /** Shared with the actor host; mutual TLS (issue 8) adds the transport's own identity on top. */
  secret: string;
  fetch?: typeof fetch;
}

type Wire = { ok: true; duplicate: boolean; reply: unknown } | { ok: false; error: unknown };

export class RemoteActorHost implements ActorHost {
  private readonly signer: ReturnType<typeof hmacSigner>;
  private readonly fetch: typeof fetch;
  private readonly base: string;

  constructor(options: RemoteActorHostOptions) {
    this.signer = hmacSigner(options.secret);
    this.fetch = options.fetch ?? fetch;
    this.base = options.baseUrl.replace(/\/+$/, "");
  }

  ask(address: ActorAddress, type: string, data: unknown, options: AskOptions = {}): Promise<TurnOutcome> {
    return this.call(actorHostPaths.ask, askEnvelope(address, type, data, options), options.signal);
  }

  receive(envelope: Envelope): Promise<TurnOutcome> {
    return this.call(actorHostPaths.receive, envelope);
  }

  private async call(path: string, envelope: Envelope, signal?: AbortSignal): Promise<TurnOutcome> {
    const body = JSON.stringify(envelope);
    const timestamp = String(Date.now());
    let response: Response;
    try {
      response = await this.fetch(`${this.base}${path}`, {
        method: "POST",
        body,
        headers: {
          "content-type": "application/json",
          [signatureHeaders.timestamp]: timestamp,
          [signatureHeaders.signature]: await this.signer.sign(signedMessage(path, timestamp, body)),
        },
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      if (signal?.aborted)
        throw new EdgewiseError("timeout", "the actor host did not answer in time", { cause: error });
      throw new EdgewiseError("unavailable", "the actor host is unreachable", { cause: error });
    }
    const wire = (await response.json().catch(() => undefined)) as Wire | undefined;
    if (!wire)
      throw new EdgewiseError("unavailable", `the actor host answered ${response.status} without a body`);
    if (wire.ok) return { duplicate: wire.duplicate, reply: wire.reply };
    throw isEdgewiseError(wire.error)
      ? toEdgewiseError(wire.error)
      : new EdgewiseError("internal", "actor host failed");
  }
}
