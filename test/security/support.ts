// Shared pieces of the security suite: the one-case assertion, plain HTTP calls with any credential, raw TCP requests.
import { expect } from "bun:test";
import type { CommerceNode } from "../commerce/bun-node.ts";
import type { AttackCategory } from "./report.ts";

/**
 * Records one attack case and asserts it: `observed` must equal `expected`, which is what failing closed means for
 * that case (its status, problem+json, state unchanged, …). The case's name is part of the compared value, so a
 * failure names it. A loop over cases stops at the first one that fails open.
 */
export function expectClosed(cases: AttackCategory, name: string, observed: object, expected: object): void {
  cases.tried(name, Bun.deepEquals(observed, expected));
  expect({ case: name, ...observed }).toEqual({ case: name, ...expected });
}

/** A sku's committed `available`, read from its actor's storage: no read cache can hide a change. */
/** Every scope a customer may hold: everything but `admin` (activity) and the operator scopes. */
export const customerScopes = [
  "orders:read",
  "orders:write",
  "billing:read",
  "billing:write",
  "loyalty:read",
  "inventory:read",
];

/** The body as JSON, or undefined when it is not JSON. */
export function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export const availableOf = (running: CommerceNode, sku: string): number | undefined =>
  (running.node.host?.inspect({ type: "inventory", key: sku }).state as { available?: number } | undefined)
    ?.available;

export const isProblem = (headers: Headers): boolean =>
  headers.get("content-type")?.split(";")[0]?.trim() === "application/problem+json";

export interface Answer {
  status: number;
  /** Whether the answer is `application/problem+json`. */
  problem: boolean;
  text: string;
  headers: Headers;
  /** The body parsed as JSON, or undefined. */
  json: unknown;
}

export type Credential = { bearer: string } | { apiKey: string } | undefined;

/** One request to `base` with a JWT, an API key or nothing; `body` is sent as JSON unless it is a string already. */
export async function send(
  base: string,
  method: string,
  path: string,
  options: { as?: Credential; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (options.as && "bearer" in options.as) headers.authorization = `Bearer ${options.as.bearer}`;
  if (options.as && "apiKey" in options.as) headers["x-api-key"] = options.as.apiKey;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["content-type"] = "application/json";
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
  }
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...headers, ...options.headers },
    ...(body !== undefined ? { body } : {}),
    redirect: "manual",
  });
  const text = await response.text();
  const json = parseJsonOrUndefined(text);
  return {
    status: response.status,
    problem: isProblem(response.headers),
    text,
    headers: response.headers,
    json,
  };
}

/**
 * Writes `request` (bytes as given: a lying Content-Length, chunked framing, both at once) to 127.0.0.1:`port`
 * and returns what came back until the server closed the connection or `timeoutMs` passed, with its status.
 */
export function rawRequest(
  port: number,
  request: string | Uint8Array,
  timeoutMs = 5_000,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const text = new TextDecoder().decode(Buffer.concat(chunks));
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0), text });
    };
    let socket: { end(): void } | undefined;
    const timer = setTimeout(() => {
      socket?.end();
      finish();
    }, timeoutMs);
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(s) {
          socket = s;
          s.write(request);
        },
        data(_s, data) {
          chunks.push(new Uint8Array(data));
        },
        close: finish,
        end: finish,
        error(_s, error) {
          if (!settled) {
            settled = true;
            clearTimeout(timer);
            reject(error);
          }
        },
      },
    }).catch(reject);
  });
}
