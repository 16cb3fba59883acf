// Run by mtls.test.ts under Deno: one request through mtlsFetch, as a Deno gateway makes it; prints the outcome.
import { mtlsFetch, watchTlsFiles } from "../../deploy/tls.ts";

const env = (name: string) => process.env[name] ?? "";
const files = watchTlsFiles({ cert: env("PROBE_CERT"), key: env("PROBE_KEY"), ca: env("PROBE_CA") });
try {
  const response = await mtlsFetch(files)(env("PROBE_URL"));
  console.log(`status ${response.status} ${await response.text()}`);
} catch (error) {
  console.log(`refused ${(error as Error).message}`);
} finally {
  files.close();
}
