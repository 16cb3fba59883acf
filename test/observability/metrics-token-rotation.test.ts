// Rotating METRICS_TOKEN on a node: METRICS_PREVIOUS_TOKEN keeps the old token scraping while scrapers move over.
import { expect, test } from "bun:test";
import { parseConfig } from "../../shared/config/index.ts";
import { restartableNode } from "../support/restartable-node.ts";

const oldToken = "metrics-old-9f3c1e7a5b2d8046";
const newToken = "metrics-new-4a7e2c9b1f6d3085";
const node = restartableNode("metrics_token_rotation");

const scrape = async (token: string) =>
  (await fetch(`${node.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status;

test("a scraper on the old token keeps scraping through the rotation, and is refused once it is unset", async () => {
  await node.restart({ METRICS_TOKEN: oldToken });
  expect(await scrape(oldToken)).toBe(200);

  const lines = await node.restart({ METRICS_TOKEN: newToken, METRICS_PREVIOUS_TOKEN: oldToken });
  expect([await scrape(oldToken), await scrape(newToken), await scrape("metrics-third-0123456789")]).toEqual([
    200, 200, 401,
  ]);
  const said = lines.filter((line) => line.includes("METRICS_PREVIOUS_TOKEN are still accepted"));
  expect(said).toHaveLength(1);
  expect(said[0]).not.toContain(oldToken);

  const after = await node.restart({ METRICS_TOKEN: newToken });
  expect([await scrape(oldToken), await scrape(newToken)]).toEqual([401, 200]);
  expect(after.filter((line) => line.includes("METRICS_PREVIOUS_TOKEN"))).toEqual([]);
}, 90_000);

test("METRICS_PREVIOUS_TOKEN without METRICS_TOKEN, or short, is refused at start, never printed", () => {
  expect(() => parseConfig({ METRICS_PREVIOUS_TOKEN: oldToken })).toThrow(
    /METRICS_PREVIOUS_TOKEN .*needs METRICS_TOKEN/,
  );
  expect(() => parseConfig({ METRICS_TOKEN: newToken, METRICS_PREVIOUS_TOKEN: "short" })).toThrow(
    /METRICS_PREVIOUS_TOKEN must be at least 16 characters/,
  );
  try {
    parseConfig({ METRICS_PREVIOUS_TOKEN: oldToken });
  } catch (error) {
    expect(String((error as Error).message)).not.toContain(oldToken);
  }
});
