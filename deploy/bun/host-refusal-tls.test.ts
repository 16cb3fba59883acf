// A TLS listener's 400 for a Host that is no authority names the path (`instance`) as a plain listener's does.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { issueCert, makeCa } from "../local/certs/openssl.ts";
import { watchTlsFiles } from "../tls.ts";
import { bunServe } from "./serve.ts";

const dir = mkdtempSync(join(tmpdir(), "edgewise-host-tls-"));
const files = watchTlsFiles(
  issueCert({
    cert: join(dir, "host.pem"),
    key: join(dir, "host.key"),
    ca: makeCa({ cert: join(dir, "ca.pem"), key: join(dir, "ca.key"), commonName: "Edgewise test CA" }),
    commonName: "edgewise host",
    sans: ["IP:127.0.0.1"],
    usage: ["serverAuth"],
  }),
);
const server = await bunServe({
  port: 0,
  hostname: "127.0.0.1",
  fetch: () => new Response("the app"),
  tls: { files, requireClientCert: false },
});
afterAll(async () => {
  await server.stop(true);
  files.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `GET <path>` over TLS with this Host, raw (a client library would not send it): the whole answer. */
const exchange = (path: string, host: string) =>
  new Promise<string>((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port: server.port, rejectUnauthorized: false }, () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    let answer = "";
    socket.on("data", (chunk) => {
      answer += chunk.toString("utf8");
    });
    socket.on("end", () => resolve(answer));
    socket.on("error", reject);
  });

test("over TLS, a Host a URL parser refuses is 400 problem+json with the path as instance, before the app", async () => {
  for (const host of ["999.1.1.1", "a.1", "xn--a"]) {
    const answer = await exchange("/v1/orders?x=1", host);
    expect([host, answer.split("\r\n")[0]]).toEqual([host, "HTTP/1.1 400 Bad Request"]);
    const body = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as Record<string, unknown>;
    expect([host, body]).toMatchObject([
      host,
      { status: 400, code: "request.invalid", instance: "/v1/orders" },
    ]);
  }
});
