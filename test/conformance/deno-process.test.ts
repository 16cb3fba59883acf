// Conformance of the local host as a Deno process (node:sqlite): the same cases, crashes are real SIGKILLs.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { HttpDriver } from "./http-driver.ts";
import { runConformance } from "./run.ts";

const root = resolve(import.meta.dir, "../..");

runConformance("local host, Deno process", () =>
  HttpDriver.start({
    name: "deno-process",
    command: () => [
      join(root, "node_modules/.bin/deno"),
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-net=127.0.0.1",
      "--no-lock",
      join(import.meta.dir, "local/serve-deno.ts"),
    ],
    cwd: root,
    env: { EDGEWISE_DATA_DIR: mkdtempSync(join(tmpdir(), "edgewise-conf-deno-")) },
  }),
);
