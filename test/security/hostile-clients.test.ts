// Security suite, hostile-clients: raw TCP clients that send a request target that is no URL, against `npm start`'s
// Bun node and `npm run start:deno`'s Deno node, each run as its entry.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { denoEntryCommand, freePort, type Started, startProcess } from "../e2e/process.ts";
import { rawExchange } from "../support/raw-http.ts";
import { attackCategory } from "./report.ts";

const cases = attackCategory("hostile-clients");
const root = resolve(import.meta.dir, "../..");

const runtimes = [
  { name: "Bun", command: [process.execPath, join(root, "edge/entries/bun.ts")] },
  { name: "Deno", command: denoEntryCommand(root) },
];

for (const runtime of runtimes) {
  describe(`${runtime.name} node`, () => {
    let node: Started;
    let port: number;
    let dataDir: string;

    beforeAll(async () => {
      port = freePort();
      dataDir = mkdtempSync(join(tmpdir(), "edgewise-hostile-"));
      node = await startProcess(runtime.command, {
        cwd: root,
        env: {
          PORT: String(port),
          HOST: "127.0.0.1",
          EDGEWISE_DATA_DIR: dataDir,
          EDGEWISE_TRACING: "off",
        },
        pattern: /admin token[^:]*: (\S+)/,
      });
    }, 30_000);
    afterAll(async () => {
      await node?.kill("SIGTERM");
      rmSync(dataDir, { recursive: true, force: true });
    });

    test("CONNECT host:port (a target Bun hands over as no URL) gets the API's problem+json", async () => {
      const answer = await rawExchange(port, {
        head: "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n",
        closeWaitMs: 100,
      });
      expect(answer.status).toBe(404);
      expect(answer.headers.get("content-type")).toBe("application/problem+json");
      expect(JSON.parse(answer.body).code).toBe("not_found");
      expect(answer.headers.get("x-content-type-options")).toBe("nosniff");
      expect(answer.body).not.toContain(root);
      cases.tried(`${runtime.name}: CONNECT authority-form`, answer.status === 404);
    });
  });
}
