// The reference system a node runs by default: the demo counter, the commerce actors, and their subscriptions.
import { commerceActors, commerceActorSubscriptions } from "../actors/commerce/actors.ts";
import { commerceConsumerSubscriptions } from "../actors/commerce/subscriptions.ts";
import { resolveWithNodeDns } from "../actors/commerce/webhooks/dns-resolver.ts";
import { postWithNodeHttp } from "../actors/commerce/webhooks/node-post.ts";
import { counterActor } from "../actors/examples/counter.ts";
import { commerce } from "./commerce.ts";

/** What `npm start` (Bun) and `npm run start:deno` run: actors, subscriptions and the commerce extension. */
export function referenceSystem() {
  return {
    actors: [counterActor, ...commerceActors],
    subscriptions: [...commerceActorSubscriptions, ...commerceConsumerSubscriptions],
    extend: commerce({ resolve: resolveWithNodeDns, post: postWithNodeHttp }),
  };
}
