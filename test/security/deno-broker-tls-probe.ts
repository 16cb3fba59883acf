// Run by broker-tls.test.ts under Deno: one publish through QStashTransport with a node's broker fetch
// (QSTASH_CA_FILE in PROBE_CA, or none), as a Deno node makes it; prints the outcome.
import { QStashTransport } from "../../actors/queue/qstash-transport.ts";
import { brokerApiFetch } from "../../deploy/broker-api.ts";
import { watchCaBundle } from "../../deploy/tls.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";

const env = (name: string) => process.env[name] ?? "";
const ca = env("PROBE_CA") ? watchCaBundle(env("PROBE_CA")) : undefined;
const transport = new QStashTransport({
  baseUrl: env("PROBE_URL"),
  token: env("PROBE_TOKEN"),
  deliveryUrl: () => "http://127.0.0.1:9/deno",
  fetch: brokerApiFetch(env("PROBE_URL"), { ca }),
});
try {
  await transport.send([
    createEnvelope({ type: "Ping", source: "edgewise://deno", target: "counter/deno", data: {} }),
  ]);
  console.log("published");
} catch (error) {
  // Deno's fetch names a refused certificate in its cause's message only (no code to recognise it by).
  const failure = error as { code?: string; name?: string; message?: string; cause?: { message?: string } };
  console.log(`refused ${failure.code ?? failure.name} ${failure.message} (${failure.cause?.message ?? ""})`);
} finally {
  ca?.close();
}
