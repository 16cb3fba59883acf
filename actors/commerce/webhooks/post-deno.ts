// Runs the PostWebhook cases on Deno's node:http(s) and prints the results as JSON (post.test.ts reads them).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { runCases } from "../../../test/resilience/check.ts";
import { nodeHttpPost, postWithNodeHttp } from "./node-post.ts";
import { postCases } from "./post-cases.ts";

const dir = process.argv[2] ?? "";
const read = (name: string) => readFileSync(join(dir, name), "utf8");
const tls = { ca: read("ca.pem"), cert: read("server.pem"), key: read("server-key.pem") };
const subject = { post: postWithNodeHttp, pins: true, trusting: (ca: string) => nodeHttpPost({ ca }) };
console.log(JSON.stringify(await runCases({ nodeHttpPost: postCases(subject, tls) })));
