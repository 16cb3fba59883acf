// Security suite, hostile-clients: raw TCP clients that trickle a body, hang up mid-body, declare a body past the
// runtime's own limit, or send a request target that is no URL or a Host that is no authority, against
// `npm start`'s Bun node and `npm run start:deno`'s Deno node, each run as its entry.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { denoEntryCommand, freePort, type Started, startProcess } from "../e2e/process.ts";
import { type RawExchange, rawExchange } from "../support/raw-http.ts";
import { attackCategory } from "./report.ts";

const cases = attackCategory("hostile-clients");
const root = resolve(import.meta.dir, "../..");
/** REQUEST_TIMEOUT of both nodes, short so that a slow client's case takes about a second. */
const timeoutMs = 1_000;
/**
 * The deadline's 50 ms slot, and a loaded machine's scheduling. A body that is waited for never ends, and the default
 * REQUEST_TIMEOUT is 10 s, so a slack of 3 s still catches both.
 */
const slackMs = 3_000;

const runtimes = [
  { name: "Bun", command: [process.execPath, join(root, "edge/entries/bun.ts")] },
  { name: "Deno", command: denoEntryCommand(root) },
];

for (const runtime of runtimes) {
  describe(`${runtime.name} node`, () => {
    let node: Started;
    let port: number;
    let token: string;
    let dataDir: string;

    beforeAll(async () => {
      port = freePort();
      dataDir = mkdtempSync(join(tmpdir(), "edgewise-hostile-"));
      const env = () => ({
        PORT: String(port),
        HOST: "127.0.0.1",
        EDGEWISE_DATA_DIR: dataDir,
        EDGEWISE_TRACING: "off",
        REQUEST_TIMEOUT: `${timeoutMs}ms`,
      });
      node = await startProcess(runtime.command, {
        cwd: root,
        env: env(),
        pattern: /admin token[^:]*: (\S+)/,
        again: () => {
          port = freePort();
          return { command: runtime.command, env: env() };
        },
      });
      token = node.match;
    }, 30_000);
    afterAll(async () => {
      await node?.kill("SIGTERM");
      rmSync(dataDir, { recursive: true, force: true });
    });

    const head = (path: string, headers: string) =>
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: application/json\r\n${headers}\r\n`;
    const problem = (answer: RawExchange) =>
      answer.headers.get("content-type") === "application/problem+json" ? JSON.parse(answer.body) : undefined;

    /** A body that trickles a byte every 300 ms, never ending: answered 504 at the deadline, not waited for. */
    async function slowBody(name: string, path: string, headers: string, first: string, more: string) {
      const answer = await rawExchange(port, {
        head: head(path, headers) + first,
        trickle: { bytes: more, everyMs: 300 },
        waitMs: timeoutMs + slackMs + 500,
        closeWaitMs: 300,
      });
      expect(answer.status).toBe(504);
      expect(problem(answer)?.code).toBe("timeout");
      expect(answer.headers.get("x-content-type-options")).toBe("nosniff");
      expect(answer.answeredMs).toBeLessThan(timeoutMs + slackMs);
      // The rest of the body would be read as the next request: the connection is closed after the answer. Bun
      // closes it; Deno.serve keeps it while the client sends (SECURITY.md, "Slow and hostile clients").
      expect(answer.headers.get("connection")).toBe("close");
      if (runtime.name === "Bun") expect(answer.closedMs).toBeDefined();
      cases.tried(`${runtime.name}: ${name}`, answer.status === 504);
    }

    test("a body declared 1,000 bytes that trickles in is answered 504 at REQUEST_TIMEOUT", async () => {
      await slowBody("slow Content-Length body", "/v1/orders", "Content-Length: 1000\r\n", "{", " ");
    });

    test("a chunked body that trickles in is answered 504 too, before the body limit has read it", async () => {
      await slowBody(
        "slow chunked body",
        "/v1/orders",
        "Transfer-Encoding: chunked\r\n",
        "1\r\n{\r\n",
        "1\r\n \r\n",
      );
    });

    test("so is one to the delivery endpoint, which reads its body before it checks the signature", async () => {
      await slowBody(
        "slow delivery body",
        "/_edgewise/deliver/counter/hostile",
        "Content-Length: 1000\r\n",
        "{",
        " ",
      );
    });

    test("a client that hangs up mid-body is a 400 in the access log, not a server error, and nothing waits", async () => {
      const requestId = `hangup-${crypto.randomUUID()}`;
      await rawExchange(port, {
        head: `${head("/v1/orders", `Content-Length: 200\r\nX-Request-Id: ${requestId}\r\n`)}{"customerId":`,
        hangUpAfterMs: 100,
      });
      // The access line once whole: the node's output comes in chunks, so the line may be there half-written (a
      // bare JSON.parse of it throws), and on a loaded machine it may take more than a few seconds to come.
      const access = () => {
        for (const line of node.output().split("\n")) {
          if (!line.includes(requestId)) continue;
          try {
            return JSON.parse(line) as Record<string, unknown>;
          } catch {}
        }
        return undefined;
      };
      const deadline = Date.now() + 20_000;
      while (!access() && Date.now() < deadline) await Bun.sleep(50);
      const line = access() ?? {};
      expect(line).toMatchObject({ msg: "request", route: "/v1/orders", status: 400 });
      expect(node.output()).not.toContain('"level":"error"');
      // The order actor's mailbox is free: a whole order is accepted at once.
      const started = Date.now();
      const order = await fetch(`http://127.0.0.1:${port}/v1/orders`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({
          customerId: "hostile-customer",
          items: [{ sku: "hostile-sku", quantity: 1 }],
        }),
      });
      // A 202 is already an answer within REQUEST_TIMEOUT (1 s; a held mailbox makes it 504): the bound on the
      // client's side only adds room for a loaded machine's stalls.
      expect(order.status).toBe(202);
      expect(Date.now() - started).toBeLessThan(5_000);
      cases.tried(`${runtime.name}: hang-up mid-body`, line.status === 400);
    });

    test("a Content-Length past Bun's own 128 MiB default gets the app's 413 problem+json, not an empty 413", async () => {
      const answer = await rawExchange(port, {
        head: `${head("/v1/orders", "Content-Length: 200000000\r\n")}{`,
        closeWaitMs: 100,
      });
      expect(answer.status).toBe(413);
      expect(problem(answer)).toMatchObject({
        status: 413,
        code: "request.too_large",
        title: "Request body too large",
        instance: "/v1/orders",
      });
      expect(answer.headers.get("x-content-type-options")).toBe("nosniff");
      expect(answer.headers.get("x-request-id")).toBeTruthy();
      cases.tried(`${runtime.name}: Content-Length past the runtime's limit`, answer.status === 413);
    });

    /** `GET <path>` with this Host (none when null) and a request id to find its access line by. */
    const withHost = (path: string, host: string | null, requestId: string) =>
      rawExchange(port, {
        head:
          `GET ${path} HTTP/1.1\r\n${host === null ? "" : `Host: ${host}\r\n`}` +
          `X-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n`,
        closeWaitMs: 100,
      });
    const accessLine = (requestId: string) =>
      node
        .output()
        .split("\n")
        .find((line) => line.includes(requestId) && line.includes('"msg":"request"'));

    test("a Host that is no authority never moves the path: 400 problem+json before the app", async () => {
      // Deno.serve built request.url as `http://<Host><target>`: these made `GET /v1/orders` reach the app as
      // /_edgewise/v1/orders, /, /openapi.json or /v1/api-keys. Bun's request.url kept the bare target, and the
      // app answered it (RFC 9112 §3.2 asks a 400 of an invalid Host; both runtimes give it now).
      const hostile = [
        "x/_edgewise",
        "x?a=",
        "x#frag",
        "x/openapi.json?",
        "x/v1/api-keys?",
        "user@x",
        "x%2F_edgewise",
        "x\\y",
        "x y",
      ];
      const sent: [string, string][] = [];
      for (const host of hostile) {
        const requestId = `host-${crypto.randomUUID()}`;
        sent.push([host, requestId]);
        const answer = await withHost("/v1/orders", host, requestId);
        expect(answer.headers.get("x-request-id")).toBe(requestId);
        expect(answer.headers.get("x-content-type-options")).toBe("nosniff");
        expect([host, answer.status]).toEqual([host, 400]);
        expect(problem(answer)).toMatchObject({
          status: 400,
          code: "request.invalid",
          instance: "/v1/orders",
        });
      }
      // Access lines are written before each answer leaves: one for a request sent last shows the others would be in.
      const marker = `host-marker-${crypto.randomUUID()}`;
      expect((await withHost("/v1/orders", "127.0.0.1", marker)).status).toBe(401);
      const deadline = Date.now() + 20_000;
      while (!accessLine(marker) && Date.now() < deadline) await Bun.sleep(50);
      expect(accessLine(marker)).toBeDefined();
      for (const [host, requestId] of sent) {
        // The app never saw the request.
        const line = accessLine(requestId);
        expect([host, line]).toEqual([host, undefined]);
        cases.tried(`${runtime.name}: Host ${JSON.stringify(host)}`, !line);
      }
    });

    test("a Host the grammar allows and a URL parser refuses is 400, never a 500", async () => {
      // Both runtimes built request.url from these (`http://999.1.1.1/_console`), and each `new URL(request.url)`
      // behind it threw: a console request with a stale cookie, and any broker delivery, were 500 with an error
      // line and its stack.
      const requests: Array<[string, string]> = [
        ["GET /_console", "Cookie: edgewise_console=stale\r\n"],
        ["POST /_edgewise/deliver/inventory/x", "Upstash-Signature: x\r\nContent-Length: 0\r\n"],
      ];
      for (const host of ["999.1.1.1", "a.1", "[ffff]", "%80", "xn--a"]) {
        for (const [line, headers] of requests) {
          const answer = await rawExchange(port, {
            head: `${line} HTTP/1.1\r\nHost: ${host}\r\n${headers}Connection: close\r\n\r\n`,
            closeWaitMs: 100,
          });
          expect([host, line, answer.status]).toEqual([host, line, 400]);
          cases.tried(`${runtime.name}: Host ${JSON.stringify(host)}, ${line}`, answer.status === 400);
        }
      }
      expect(node.output()).not.toContain("Invalid URL");
    });

    test("a Host that is a host name or address, with or without a port, is served as before", async () => {
      for (const host of [
        `127.0.0.1:${port}`,
        "localhost",
        `[::1]:${port}`,
        "example.com",
        "example.com:443",
      ]) {
        const answer = await withHost("/healthz", host, `host-${crypto.randomUUID()}`);
        expect([host, answer.status, answer.body]).toEqual([host, 200, '{"status":"ok"}']);
      }
      // No Host on HTTP/1.1: Bun refuses it itself; Deno serves it as for `localhost:<port>`.
      const none = await withHost("/healthz", null, `host-${crypto.randomUUID()}`);
      expect(none.status).toBe(runtime.name === "Deno" ? 200 : 400);
    });

    test("CONNECT host:port (a target Bun hands over as no URL) gets the API's problem+json", async () => {
      const answer = await rawExchange(port, {
        head: "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n",
        closeWaitMs: 100,
      });
      expect(answer.status).toBe(404);
      expect(problem(answer)?.code).toBe("not_found");
      expect(answer.headers.get("x-content-type-options")).toBe("nosniff");
      expect(answer.body).not.toContain(root);
      cases.tried(`${runtime.name}: CONNECT authority-form`, answer.status === 404);
    });
  });
}
