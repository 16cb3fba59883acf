// Run under Deno by deploy/serve.test.ts: denoServe with a fetch that throws, on a free port; prints the port.
import { denoServe } from "../../deploy/deno/serve.ts";

const server = await denoServe({
  port: 0,
  hostname: "127.0.0.1",
  fetch: () => {
    throw new Error(`failed in ${import.meta.url}`);
  },
  onError: (error) => console.log(`reported: ${error instanceof Error ? error.message : error}`),
});
console.log(`port ${server.port}`);
