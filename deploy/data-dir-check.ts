// The /readyz check of a node's data dir: can a small file still be written there (a full disk, a read-only mount)?
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DependencyCheck } from "../edge/routes/health.ts";

/** The probe's size: a few pages, so a disk that cannot take a commit's worth fails it too. */
const probeBytes = new Uint8Array(16 * 1024);

/**
 * Writes (then removes) a 16 KiB file in `dataDir`. The node's SQLite, PGlite and trace store write there; when the
 * disk is full or the mount went read-only every write turn fails with 503 while reads still pass, so without this
 * /readyz stayed 200 and a load balancer kept sending writes to a node that can take none. Critical where the node
 * keeps its state there (`critical`); a gateway that only keeps its secrets and traces there reports it alone.
 * /readyz runs it at most once a second while all is well (its reuse), and afresh on every probe after a failure,
 * so recovery (space freed) is seen at the next probe.
 */
export function dataDirCheck(dataDir: string, critical: boolean): DependencyCheck {
  const probe = join(dataDir, ".readyz-probe");
  return {
    name: "dataDir",
    critical,
    failedAs: "unwritable",
    check: async () => {
      await writeFile(probe, probeBytes, { mode: 0o600 });
      await rm(probe, { force: true });
    },
  };
}
