// Conformance of the local host as a Bun process: crashes are real SIGKILLs.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HttpDriver } from "./http-driver.ts";
import { runConformance } from "./run.ts";

runConformance("local host, Bun process", () =>
  HttpDriver.start({
    name: "bun-process",
    command: () => [process.execPath, join(import.meta.dir, "local/serve-bun.ts")],
    env: { EDGEWISE_DATA_DIR: mkdtempSync(join(tmpdir(), "edgewise-conf-bun-")) },
  }),
);
