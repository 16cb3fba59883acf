// Test support: the real QStash transport over a fetch that answers as QStash's /v2/batch does and counts requests.
import type { Envelope } from "../../shared/envelope/index.ts";
import { QStashTransport } from "./qstash-transport.ts";

/** External subrequests a Worker invocation (a Durable Object's alarm included) may make on the Workers Free plan. */
export const freePlanSubrequests = 50;

/**
 * The queue as a Worker reaches it: each HTTP request the transport makes is a subrequest of the invocation that
 * makes it. What it publishes is kept (`published`), and `requests()` takes the count made since its last call.
 */
export function countingQStash() {
  const published: Envelope[] = [];
  let requests = 0;
  const transport = new QStashTransport({
    baseUrl: "https://qstash.example",
    token: "test-token",
    deliveryUrl: (target) => `https://edgewise.example/_edgewise/deliver/${target.type}/${target.key}`,
    fetch: async (_url, init) => {
      requests++;
      const messages = JSON.parse(String(init.body)) as Array<{ body: string }>;
      for (const message of messages) published.push(JSON.parse(message.body) as Envelope);
      return Response.json(messages.map((_, i) => ({ messageId: `msg_${requests}_${i}` })));
    },
  });
  return {
    transport,
    published,
    requests: () => {
      const made = requests;
      requests = 0;
      return made;
    },
  };
}
