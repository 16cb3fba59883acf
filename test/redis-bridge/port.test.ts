// A bridge on a port another bridge holds refuses to start (EADDRINUSE) instead of sharing it.
import { expect, test } from "bun:test";
import { startTestBridge } from "./helpers.ts";
import { startRedisBridge } from "../../deploy/local/redis-bridge/index.ts";

// Bun binds with SO_REUSEPORT outside development mode unless told not to, so a second bridge on 8079 used to start
// beside the first, and the kernel split the clients between two bridges with their own tokens.
test("a second bridge on the first one's port is refused", async () => {
  const first = await startTestBridge();
  try {
    const second = startRedisBridge({ port: first.port, token: "another-token" });
    const outcome = await second.then(
      async (bridge) => {
        await bridge.stop();
        return "started";
      },
      (error: { code?: string }) => error.code,
    );
    expect(outcome).toBe("EADDRINUSE");
  } finally {
    await first.stop();
  }
});
