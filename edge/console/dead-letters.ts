// What a dead letter is to an operator: the actor or consumer it was for, its message type, and what the part of the
// system behind that target says it is (a webhook subscription's URL), besides the broker's internal delivery URL.
import { type ActorAddress, parseAddress } from "../../actors/runtime/index.ts";
import { maskSecrets, redacted } from "../../shared/telemetry/log/index.ts";
import type { TargetDescription } from "./types.ts";

/** A dead letter as the broker's REST API lists it (`GET /v2/dlq`, QStash's shape): the fields the console reads. */
export interface DeadLetter {
  dlqId: string;
  messageId: string;
  /** Where the broker delivered it: this system's delivery route, `<origin>/_edgewise/deliver/<type>/<key>`. */
  url: string;
  /** The message: an envelope as JSON (`bodyBase64` when the body is not UTF-8). */
  body?: string;
  bodyBase64?: string;
  queueName?: string;
  createdAt?: number;
  retried?: number;
  responseStatus?: number;
  error?: string;
}

/** A dead letter with what the table shows for it. */
export interface ListedDeadLetter extends DeadLetter {
  target?: ActorAddress;
  messageType?: string;
  description?: TargetDescription;
  /** The description could not be read (its store down): the table says so beside the address. */
  undescribed?: boolean;
}

const deliveryPath = /\/_edgewise\/deliver\/([^/?#]+)\/([^/?#]+)/;

/** The target and message type of each dead letter, and each distinct target described once. */
export async function listDeadLetters(
  deadLetters: DeadLetter[],
  describe?: (target: ActorAddress) => Promise<TargetDescription | undefined>,
): Promise<ListedDeadLetter[]> {
  const listed = deadLetters.map((letter) => ({ ...letter, ...addressed(letter) }));
  if (!describe) return listed;
  const described = new Map<string, Promise<TargetDescription | undefined | "failed">>();
  for (const { target } of listed) {
    if (!target) continue;
    const name = `${target.type}/${target.key}`;
    if (!described.has(name))
      described.set(
        name,
        describe(target).catch(() => "failed" as const),
      );
  }
  return Promise.all(
    listed.map(async (letter) => {
      if (!letter.target) return letter;
      const description = await described.get(`${letter.target.type}/${letter.target.key}`);
      if (description === "failed") return { ...letter, undescribed: true };
      return description ? { ...letter, description } : letter;
    }),
  );
}

/** The envelope's target and type when the body is one; else the target from the delivery URL. */
function addressed(letter: DeadLetter): { target?: ActorAddress; messageType?: string } {
  const envelope = envelopeOf(letter);
  const type = typeof envelope?.type === "string" ? envelope.type : undefined;
  const target =
    addressOf(typeof envelope?.target === "string" ? envelope.target : undefined) ?? urlTarget(letter.url);
  return { ...(target ? { target } : {}), ...(type ? { messageType: type } : {}) };
}

function envelopeOf(letter: DeadLetter): { type?: unknown; target?: unknown } | undefined {
  try {
    const text = letter.body ?? (letter.bodyBase64 === undefined ? undefined : atob(letter.bodyBase64));
    if (text === undefined) return undefined;
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === "object" && parsed !== null ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function addressOf(text: string | undefined): ActorAddress | undefined {
  if (text === undefined) return undefined;
  try {
    return parseAddress(text);
  } catch {
    return undefined;
  }
}

function urlTarget(url: string): ActorAddress | undefined {
  const match = deliveryPath.exec(url);
  if (!match) return undefined;
  try {
    return addressOf(`${decodeURIComponent(match[1] as string)}/${decodeURIComponent(match[2] as string)}`);
  } catch {
    return undefined;
  }
}

/**
 * A target's URL as the page shows it: its scheme, host and path (long token-shaped runs in the path masked, as in
 * logs), each query parameter by name with its value masked, and any userinfo or fragment masked whole. A subscriber's receiver
 * is often authenticated by a short token in its URL (`?token=…`, `?code=…`, `?sig=…`) that no token shape
 * recognizes, and which parameter holds it is the subscriber's choice: so every value goes, the names stay.
 * Hand-written rather than through URL's setters, which would percent-encode the mask.
 */
export function maskedUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return maskedUnparsedUrl(text);
  }
  const userinfo = url.username || url.password ? `${redacted}@` : "";
  const query = url.search ? `?${maskedQuery(url.search.slice(1))}` : "";
  const fragment = url.hash ? `#${redacted}` : "";
  return `${url.protocol}//${userinfo}${url.host}${maskSecrets(url.pathname)}${query}${fragment}`;
}

/**
 * A URL that does not parse, masked as a log line is (a password in its userinfo, token shapes), and then its query
 * values and fragment as a parsed one's: the log masking keeps what follows a host and port readable.
 */
function maskedUnparsedUrl(text: string): string {
  const masked = maskSecrets(text);
  const start = masked.search(/[?#]/);
  if (start === -1) return masked;
  const hash = masked.indexOf("#", start);
  const query = masked[start] === "?" ? masked.slice(start + 1, hash === -1 ? undefined : hash) : "";
  return `${masked.slice(0, start)}${masked[start] === "?" ? `?${maskedQuery(query)}` : ""}${hash === -1 ? "" : `#${redacted}`}`;
}

/** A query's parameters by name, each value masked. */
function maskedQuery(query: string): string {
  return query
    .split("&")
    .map((pair) => {
      const equals = pair.indexOf("=");
      return equals === -1 ? pair : `${pair.slice(0, equals)}=${equals === pair.length - 1 ? "" : redacted}`;
    })
    .join("&");
}
