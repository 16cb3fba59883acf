// The online backup command's URL: the node's own path is kept, so a node behind a proxy under a prefix is reached.
import { expect, test } from "bun:test";
import { backupUrl } from "./online-client.ts";

test("POST goes to <url>/v1/backup, keeping the URL's path, without its query or fragment", () => {
  expect(backupUrl("http://127.0.0.1:8787").href).toBe("http://127.0.0.1:8787/v1/backup");
  expect(backupUrl("http://127.0.0.1:8787/").href).toBe("http://127.0.0.1:8787/v1/backup");
  expect(backupUrl("https://shop.example/edgewise").href).toBe("https://shop.example/edgewise/v1/backup");
  expect(backupUrl("https://shop.example/edgewise/?x=1#top").href).toBe(
    "https://shop.example/edgewise/v1/backup",
  );
});
