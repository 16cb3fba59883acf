// The message envelope: CloudEvents 1.0 (JSON format) with Edgewise's extensions, as a valibot schema.
import * as v from "valibot";
import { validationError } from "../errors/valibot.ts";
import { newId } from "../ids/index.ts";

const nonEmpty = v.pipe(v.string(), v.minLength(1));

/** W3C trace context `traceparent`: version-traceid-parentid-flags. */
const traceparent = v.pipe(v.string(), v.regex(/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/));

/** `type/key` of the actor a command is addressed to. */
export const actorAddressPattern = /^[a-z][a-z0-9-]{0,63}\/[A-Za-z0-9._~-]{1,256}$/;

export const EnvelopeSchema = v.object({
  specversion: v.literal("1.0"),
  id: v.pipe(nonEmpty, v.maxLength(256)),
  source: v.pipe(nonEmpty, v.maxLength(2048)),
  type: v.pipe(nonEmpty, v.maxLength(256)),
  subject: v.optional(v.pipe(v.string(), v.maxLength(1024))),
  time: v.pipe(v.string(), v.isoTimestamp()),
  datacontenttype: v.optional(v.literal("application/json"), "application/json"),
  data: v.optional(v.unknown()),
  // Extensions (CloudEvents attribute names: lowercase alphanumerics).
  traceparent: v.optional(traceparent),
  tracestate: v.optional(v.pipe(v.string(), v.maxLength(512))),
  correlationid: v.optional(v.pipe(nonEmpty, v.maxLength(256))),
  causationid: v.optional(v.pipe(nonEmpty, v.maxLength(256))),
  target: v.optional(v.pipe(v.string(), v.regex(actorAddressPattern, "target must be `type/key`"))),
});

export type Envelope<Data = unknown> = Omit<v.InferOutput<typeof EnvelopeSchema>, "data"> & { data?: Data };

export interface EnvelopeInit<Data> {
  type: string;
  source: string;
  data: Data;
  id?: string;
  subject?: string;
  time?: Date | number;
  target?: string;
  traceparent?: string;
  tracestate?: string;
  correlationid?: string;
  causationid?: string;
}

/** Builds a valid envelope; the id defaults to a fresh nanoid and `correlationid` to the id. */
export function createEnvelope<Data>(init: EnvelopeInit<Data>): Envelope<Data> {
  const id = init.id ?? newId();
  const time = init.time === undefined ? new Date() : new Date(init.time);
  const envelope: Envelope<Data> = {
    specversion: "1.0",
    id,
    source: init.source,
    type: init.type,
    time: time.toISOString(),
    datacontenttype: "application/json",
    data: init.data,
    correlationid: init.correlationid ?? id,
  };
  if (init.subject !== undefined) envelope.subject = init.subject;
  if (init.target !== undefined) envelope.target = init.target;
  if (init.traceparent !== undefined) envelope.traceparent = init.traceparent;
  if (init.tracestate !== undefined) envelope.tracestate = init.tracestate;
  if (init.causationid !== undefined) envelope.causationid = init.causationid;
  return envelope;
}

/** Validates an untrusted envelope; throws `envelope.invalid` with field paths. */
export function parseEnvelope(input: unknown): Envelope {
  const result = v.safeParse(EnvelopeSchema, input);
  if (!result.success) throw validationError("envelope.invalid", "envelope", result.issues);
  return result.output;
}
