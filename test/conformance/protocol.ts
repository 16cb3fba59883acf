// The control protocol of a conformance host: the same JSON-over-HTTP API on Bun, Deno and workerd.
import type { Envelope } from "../../shared/envelope/index.ts";
import { isEdgewiseError, toEdgewiseError } from "../../shared/errors/index.ts";

export type Outcome =
  | { ok: true; duplicate: boolean; reply: unknown }
  | { ok: false; error: { code: string; status: number; message: string } };

export interface Snapshot {
  state: unknown;
  version: number | undefined;
  inboxSize: number;
  outboxSize: number;
  timers: Array<{ id: string; at: number; type: string }>;
}

/**
 * What a conformance host exposes. Every host's test server implements it and serves it with
 * `controlHandler`; the suite reaches it with `HttpDriver`, or in process.
 *
 *   POST /ask      { type, key, message, data, id? }  -> Outcome
 *   POST /receive  Envelope                           -> Outcome
 *   GET  /inspect?type=&key=                          -> Snapshot
 *   GET  /sent                                        -> Envelope[] (what the relay handed the test transport)
 *   POST /transport { failing: boolean }              -> {}
 *   GET  /healthz                                     -> { ok: true }
 */
export interface ControlTarget {
  ask(type: string, key: string, message: string, data: unknown, id?: string): Promise<Outcome>;
  receive(envelope: Envelope): Promise<Outcome>;
  inspect(type: string, key: string): Promise<Snapshot>;
  sent(): Promise<Envelope[]>;
  setTransportFailing(failing: boolean): Promise<void>;
}

export async function outcomeOf(
  run: () => Promise<{ duplicate: boolean; reply: unknown }>,
): Promise<Outcome> {
  try {
    const { duplicate, reply } = await run();
    return { ok: true, duplicate, reply };
  } catch (error) {
    return { ok: false, error: errorOf(error) };
  }
}

export function errorOf(error: unknown): { code: string; status: number; message: string } {
  const known = isEdgewiseError(error) ? error : toEdgewiseError(error);
  return { code: String(known.code), status: known.status, message: known.message };
}

export function controlHandler(target: ControlTarget): (request: Request) => Promise<Response> {
  const json = (body: unknown, status = 200) =>
    new Response(JSON.stringify(body ?? null), { status, headers: { "content-type": "application/json" } });
  return async (request) => {
    const url = new URL(request.url);
    try {
      switch (`${request.method} ${url.pathname}`) {
        case "GET /healthz":
          return json({ ok: true });
        case "POST /ask": {
          const body = (await request.json()) as {
            type: string;
            key: string;
            message: string;
            data: unknown;
            id?: string;
          };
          return json(await target.ask(body.type, body.key, body.message, body.data, body.id));
        }
        case "POST /receive":
          return json(await target.receive((await request.json()) as Envelope));
        case "GET /inspect":
          return json(
            await target.inspect(url.searchParams.get("type") ?? "", url.searchParams.get("key") ?? ""),
          );
        case "GET /sent":
          return json(await target.sent());
        case "POST /transport": {
          const body = (await request.json()) as { failing: boolean };
          await target.setTransportFailing(body.failing);
          return json({});
        }
        default:
          return json({ error: "not found" }, 404);
      }
    } catch (error) {
      return json({ error: errorOf(error) }, 500);
    }
  };
}
