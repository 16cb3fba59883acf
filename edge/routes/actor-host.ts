// The actor host's side of a split deployment: signed asks and deliveries from gateways, run on the local host.
import { type Context, Hono } from "hono";
import { parseEnvelope } from "../../shared/envelope/index.ts";
import { EdgewiseError, toEdgewiseError } from "../../shared/errors/index.ts";
import { hmacSigner } from "../../shared/crypto/hmac.ts";
import {
  type ActorHostAnswer,
  actorHostPaths,
  actorHostPingPath,
  onlyIfStateMember,
  signatureHeaders,
  signatureToleranceMs,
  signedMessage,
} from "../../actors/hosts/remote/protocol.ts";
import { type ActorHost, targetOf } from "../../actors/runtime/index.ts";
import type { GatewayEnv } from "../env.ts";

export interface ActorHostRoutesOptions {
  actors: ActorHost;
  secret: string;
  /** During a rotation: the secret being replaced, still accepted until unset (ACTOR_HOST_PREVIOUS_SECRET). */
  previousSecret?: string | undefined;
  now?: () => number;
}

export function actorHostRoutes(options: ActorHostRoutesOptions) {
  const signer = hmacSigner(options.secret);
  const previous = options.previousSecret === undefined ? undefined : hmacSigner(options.previousSecret);
  const verified = async (message: string, signature: string): Promise<boolean> =>
    (await signer.verify(message, signature)) ||
    (previous !== undefined && (await previous.verify(message, signature)));
  const now = options.now ?? Date.now;
  const app = new Hono<GatewayEnv>();
  /** The body of a request signed by a gateway that holds the secret, recently; `unauthorized` otherwise. */
  const signedBody = async (c: Context<GatewayEnv>, path: string): Promise<string> => {
    const body = await c.req.text();
    const timestamp = c.req.header(signatureHeaders.timestamp) ?? "";
    const signature = c.req.header(signatureHeaders.signature) ?? "";
    const fresh = /^\d{1,16}$/.test(timestamp) && Math.abs(now() - Number(timestamp)) <= signatureToleranceMs;
    if (!fresh || !(await verified(signedMessage(path, timestamp, body), signature))) {
      throw new EdgewiseError("unauthorized", "missing, stale or invalid request signature");
    }
    return body;
  };
  /** Runs a signed request's work under its SERVER span, started only now (`traceSigned`, set by telemetry). */
  const traced = <T>(c: Context<GatewayEnv>, work: () => Promise<T>): Promise<T> =>
    c.var.traceSigned ? c.var.traceSigned(work) : work();

  /** A signed ask or delivery, run on the local host; its outcome or its error as a value. */
  const handle = async (c: Context<GatewayEnv>, operation: string, body: string): Promise<Response> => {
    try {
      const message: unknown = JSON.parse(body);
      // Read before `parseEnvelope`, which drops it with every member the envelope does not name (protocol.ts).
      const onlyIfState =
        typeof message === "object" && message !== null && Reflect.get(message, onlyIfStateMember) === true;
      const envelope = parseEnvelope(message);
      const outcome =
        operation === "ask"
          ? await options.actors.ask(targetOf(envelope), envelope.type, envelope.data, {
              id: envelope.id,
              source: envelope.source,
              ...(envelope.traceparent ? { traceparent: envelope.traceparent } : {}),
              ...(envelope.tracestate ? { tracestate: envelope.tracestate } : {}),
              ...(envelope.correlationid ? { correlationid: envelope.correlationid } : {}),
              // The local host answers an actor without state from `hasState`, before activating it.
              ...(onlyIfState ? { onlyIfState } : {}),
              signal: c.req.raw.signal,
            })
          : await options.actors.receive(envelope);
      const answer: ActorHostAnswer = outcome.noState
        ? { ok: true, noState: true }
        : { ok: true, duplicate: outcome.duplicate, reply: outcome.reply };
      return c.json(answer);
    } catch (thrown) {
      const error =
        thrown instanceof SyntaxError
          ? new EdgewiseError("envelope.invalid", "body is not JSON")
          : toEdgewiseError(thrown);
      // Errors travel as values so the gateway can render them; only public ones keep their message.
      const data = error.toJSON();
      return c.json(
        { ok: false, error: error.public ? data : { ...data, message: "internal error" } },
        error.status as 500,
      );
    }
  };

  app.post(actorHostPingPath, async (c) => {
    await signedBody(c, actorHostPingPath);
    return await traced(c, async () => c.json({ ok: true }));
  });

  for (const [operation, path] of Object.entries(actorHostPaths)) {
    app.post(path, async (c) => {
      const body = await signedBody(c, path);
      return await traced(c, () => handle(c, operation, body));
    });
  }

  return app;
}
