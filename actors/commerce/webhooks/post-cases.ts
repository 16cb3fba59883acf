// The PostWebhook contract as runtime-neutral cases (node:http servers on loopback): Bun runs them, and Deno through post-deno.ts.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { assert, type Case, equal, rejection } from "../../../test/resilience/check.ts";
import type { PostWebhook, WebhookPostRequest } from "./post.ts";

/** The name the cases pin. `.test` is reserved (RFC 6761): no resolver answers for it, so only a pin reaches it. */
export const PINNED_NAME = "hooks.rebind.test";

export interface PostSubject {
  post: PostWebhook;
  /** Whether it connects only to the request's addresses; the pinning cases run only when it does. */
  pins: boolean;
  /** The same post trusting `ca` (PEM) instead of the runtime's store; the TLS cases need it. */
  trusting?: (ca: string) => PostWebhook;
}

/** PEM: a CA, and a server certificate it signed for PINNED_NAME only. */
export interface TlsFixture {
  ca: string;
  cert: string;
  key: string;
}

interface Seen {
  method: string;
  path: string;
  host: string;
  servername: string | undefined;
  headers: IncomingMessage["headers"];
  body: string;
}

type Answer = (request: IncomingMessage, response: ServerResponse) => void;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, what: string, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A loopback server that records what reaches its handler and counts the connections it saw close. */
async function serve(host: string, options: { port?: number; tls?: TlsFixture; answer?: Answer } = {}) {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  let closed = 0;
  const answer: Answer = options.answer ?? ((_request, response) => response.writeHead(204).end());
  const handler = (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      seen.push({
        method: request.method ?? "",
        path: request.url ?? "",
        host: request.headers.host ?? "",
        servername: (request.socket as Socket & { servername?: string }).servername,
        headers: request.headers,
        body: new TextDecoder().decode(concat(chunks)),
      });
      answer(request, response);
    });
  };
  const server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    : createHttpServer(handler);
  server.on("connection", (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on("close", () => {
      closed++;
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    connections: () => connections,
    closed: () => closed,
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

type Server = Awaited<ReturnType<typeof serve>>;

async function withServers(servers: Array<Promise<Server>>, run: (servers: Server[]) => Promise<void>) {
  const started = await Promise.allSettled(servers);
  const ready = started.flatMap((entry) => (entry.status === "fulfilled" ? [entry.value] : []));
  try {
    const failed = started.find((entry) => entry.status === "rejected");
    if (failed) throw failed.reason;
    await run(ready);
  } finally {
    await Promise.all(ready.map((server) => server.stop()));
  }
}

const request = (url: string, addresses: string[], more: Partial<WebhookPostRequest> = {}) => ({
  url: new URL(url),
  addresses,
  headers: { "content-type": "application/json", "webhook-id": "msg_1" },
  body: '{"type":"order.confirmed","note":"é"}',
  signal: AbortSignal.timeout(5_000),
  ...more,
});

const nameOf = (error: unknown) => (error instanceof Error ? error.name : typeof error);

/** The status a post answered, for the cases about where and how it connects. */
const statusOf = async (post: PostWebhook, sent: WebhookPostRequest) => (await post(sent)).status;

/** The contract every PostWebhook keeps. */
function contractCases(post: PostWebhook): Case[] {
  return [
    {
      name: "POSTs the headers and body as they are and answers the status",
      run: () =>
        withServers(
          [serve("127.0.0.1", { answer: (_q, response) => response.writeHead(202).end() })],
          async ([s]) => {
            const sent = request(`http://127.0.0.1:${s!.port}/hook?x=1`, ["127.0.0.1"]);
            equal(await statusOf(post, sent), 202, "status");
            const [hit] = s!.seen;
            assert(hit, "the request arrived");
            equal([hit.method, hit.path, hit.body], ["POST", "/hook?x=1", sent.body], "method, path, body");
            equal(hit.headers["content-type"], "application/json", "content-type");
            equal(hit.headers["webhook-id"], "msg_1", "webhook-id");
            equal(
              hit.headers["content-length"],
              String(new TextEncoder().encode(sent.body).byteLength),
              "length",
            );
          },
        ),
    },
    {
      name: "answers the receiver's Retry-After with its status, and none when it sent none",
      run: () =>
        withServers(
          [
            serve("127.0.0.1", {
              answer: (q, response) =>
                q.url === "/busy"
                  ? response.writeHead(429, { "retry-after": "7" }).end()
                  : response.writeHead(503).end(),
            }),
          ],
          async ([s]) => {
            const busy = await post(request(`http://127.0.0.1:${s!.port}/busy`, ["127.0.0.1"]));
            equal([busy.status, busy.retryAfter], [429, "7"], "429 with Retry-After");
            const down = await post(request(`http://127.0.0.1:${s!.port}/down`, ["127.0.0.1"]));
            equal([down.status, down.retryAfter], [503, undefined], "503 without");
          },
        ),
    },
    {
      name: "a redirect is answered with its status and never followed",
      run: () =>
        withServers([serve("127.0.0.1")], ([hidden]) =>
          withServers(
            [
              serve("127.0.0.1", {
                answer: (_q, response) =>
                  response.writeHead(307, { location: `http://127.0.0.1:${hidden!.port}/stolen` }).end(),
              }),
            ],
            async ([redirector]) => {
              equal(
                await statusOf(post, request(`http://127.0.0.1:${redirector!.port}/moved`, ["127.0.0.1"])),
                307,
                "status",
              );
              await sleep(100);
              equal(hidden!.connections(), 0, "connections to the redirect's target");
            },
          ),
        ),
    },
    {
      name: "the body is not read: an endless one answers at once and its connection is closed",
      run: () => {
        let timer: ReturnType<typeof setInterval> | undefined;
        const endless: Answer = (_q, response) => {
          response.writeHead(200, { "content-type": "text/plain" });
          timer = setInterval(() => response.write("x".repeat(16_384)), 5);
          response.on("close", () => clearInterval(timer));
        };
        return withServers([serve("127.0.0.1", { answer: endless })], async ([s]) => {
          try {
            equal(
              await statusOf(post, request(`http://127.0.0.1:${s!.port}/`, ["127.0.0.1"])),
              200,
              "status",
            );
            await until(() => s!.closed() === 1, "the connection to close");
          } finally {
            clearInterval(timer);
          }
        });
      },
    },
    {
      name: "an abort closes the connection and rejects with the signal's reason",
      run: () =>
        withServers([serve("127.0.0.1", { answer: () => {} })], async ([s]) => {
          const signal = AbortSignal.timeout(200);
          const error = await rejection(
            post(request(`http://127.0.0.1:${s!.port}/`, ["127.0.0.1"], { signal })),
            "post",
          );
          equal(nameOf(error), "TimeoutError", "the rejection");
          assert(error === signal.reason, "rejects with the signal's own reason");
          equal(s!.seen.length, 1, "requests that arrived");
          await until(() => s!.closed() === 1, "the connection to close");
        }),
    },
    {
      name: "an aborted signal sends nothing",
      run: () =>
        withServers([serve("127.0.0.1")], async ([s]) => {
          const controller = new AbortController();
          const reason = new Error("stop");
          controller.abort(reason);
          const sent = request(`http://127.0.0.1:${s!.port}/`, ["127.0.0.1"], { signal: controller.signal });
          equal(await rejection(post(sent), "post"), reason, "the rejection");
          await sleep(50);
          equal(s!.connections(), 0, "connections");
        }),
    },
  ];
}

/** Only for a post that pins: the name is never resolved again, and only checked addresses are reached. */
function pinningCases(post: PostWebhook): Case[] {
  return [
    {
      name: `a name goes to the checked address, with its Host header, though nothing resolves ${PINNED_NAME}`,
      run: () =>
        withServers([serve("127.0.0.1")], async ([s]) => {
          equal(
            await statusOf(post, request(`http://${PINNED_NAME}:${s!.port}/hook`, ["127.0.0.1"])),
            204,
            "status",
          );
          equal(
            s!.seen.map((hit) => hit.host),
            [`${PINNED_NAME}:${s!.port}`],
            "Host",
          );
        }),
    },
    {
      name: "an address outside the checked set is never connected to, though the system resolves the name to it",
      run: () =>
        withServers([serve("127.0.0.1")], async ([system]) => {
          // localhost is 127.0.0.1 in the hosts file; the check approved 127.0.0.2 only.
          const port = system!.port;
          await withServers([serve("127.0.0.2", { port })], async ([checked]) => {
            equal(await statusOf(post, request(`http://localhost:${port}/`, ["127.0.0.2"])), 204, "status");
            equal(
              checked!.seen.map((hit) => hit.host),
              [`localhost:${port}`],
              "at the checked address",
            );
          });
          // Nothing listens on 127.0.0.3: the post fails rather than falling back to a lookup.
          await rejection(post(request(`http://localhost:${port}/`, ["127.0.0.3"])), "post to 127.0.0.3");
          equal(system!.connections(), 0, "connections to the address the system resolves");
        }),
    },
    {
      name: "IPv6: a checked ::1, for a name and for a bracketed literal",
      run: () =>
        withServers([serve("::1")], async ([s]) => {
          equal(await statusOf(post, request(`http://${PINNED_NAME}:${s!.port}/a`, ["::1"])), 204, "name");
          equal(await statusOf(post, request(`http://[::1]:${s!.port}/b`, ["[::1]"])), 204, "literal");
          equal(
            s!.seen.map((hit) => hit.host),
            [`${PINNED_NAME}:${s!.port}`, `[::1]:${s!.port}`],
            "Host",
          );
        }),
    },
  ];
}

/** TLS to a pinned address: SNI and the certificate check still use the URL's name. */
function tlsCases(subject: PostSubject, tls: TlsFixture, trusting: (ca: string) => PostWebhook): Case[] {
  const post = trusting(tls.ca);
  return [
    {
      name: "https: SNI, Host and the certificate check use the name while the connection goes to the address",
      run: () =>
        withServers([serve("127.0.0.1", { tls })], async ([s]) => {
          equal(
            await statusOf(post, request(`https://${PINNED_NAME}:${s!.port}/tls`, ["127.0.0.1"])),
            204,
            "status",
          );
          const [hit] = s!.seen;
          equal([hit?.servername, hit?.host], [PINNED_NAME, `${PINNED_NAME}:${s!.port}`], "SNI and Host");
        }),
    },
    {
      name: "https: a certificate for another name, or from a CA the runtime does not trust, is refused",
      run: () =>
        withServers([serve("127.0.0.1", { tls })], async ([s]) => {
          await rejection(
            post(request(`https://other.rebind.test:${s!.port}/`, ["127.0.0.1"])),
            "other name",
          );
          await rejection(
            subject.post(request(`https://${PINNED_NAME}:${s!.port}/`, ["127.0.0.1"])),
            "untrusted CA",
          );
          equal(s!.seen.length, 0, "requests that reached the handler");
        }),
    },
  ];
}

export function postCases(subject: PostSubject, tls: TlsFixture): Case[] {
  return [
    ...contractCases(subject.post),
    ...(subject.pins ? pinningCases(subject.post) : []),
    ...(subject.pins && subject.trusting ? tlsCases(subject, tls, subject.trusting) : []),
  ];
}
