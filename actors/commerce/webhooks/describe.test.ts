// How the console's dead letters describe a webhooks target: the fan-out says what a continuation covers.
import { describe, expect, test } from "bun:test";
import { Participants } from "../messages.ts";
import { describeWebhookTarget } from "./describe.ts";

const noStore = {
  getSubscription: async () => {
    throw new Error("the fan-out is described without the store");
  },
};

describe("describeWebhookTarget", () => {
  test("webhooks/outbound: a dead-lettered WebhookFanOut is described as covering the subscriptions after its cursor only", async () => {
    const described = await describeWebhookTarget(noStore, {
      type: Participants.webhooks,
      key: "outbound",
    });
    expect(described?.label).toBe("webhook fan-out");
    expect(described?.note).toContain(
      "WebhookFanOut carries on after the subscription its data names (after)",
    );
    expect(described?.note).toContain("not to every subscription");
  });
});
