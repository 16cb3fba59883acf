// The Bun entry behind `npm start`: configuration from the environment, then one self-hosted node.
import { exitWithHelp, nodeHelp } from "../../deploy/cli-help.ts";
import { configOrExit } from "../../deploy/config.ts";
import { referenceSystem } from "../../deploy/reference.ts";
import { stopOnSignals } from "../../deploy/shutdown.ts";
import { exitOnStartFailure } from "../../deploy/start-failure.ts";
import { startNode } from "../../deploy/bun/node.ts";
import { firstRunLines, listeningLine, queueLine } from "../../deploy/try-it.ts";

exitWithHelp(nodeHelp("start"));
const config = configOrExit();
const node = await startNode({ config, ...referenceSystem() }).catch(exitOnStartFailure(config));
console.log(listeningLine(node.url, config.HOST, `data in ${config.EDGEWISE_DATA_DIR}`));
console.log(queueLine(node));
if (node.adminToken) {
  // An actor host serving mutual TLS refuses curl without a client certificate: the lines say what to add. (A
  // gateway's TLS files are for its own calls to the actor host; it serves plain HTTP.)
  const clientCertificates = node.url.startsWith("https:") && config.TLS_CA_FILE !== undefined;
  console.log(firstRunLines(node.url, node.adminToken, { clientCertificates }).join("\n"));
}

stopOnSignals(
  () => node.stop(),
  (signal) => console.log(`[edgewise] ${signal}: draining and closing`),
);
