// A node warns when it reaches its broker over plain HTTP beyond this machine: the token and messages go in clear.
import { expect, test } from "bun:test";
import { plainBrokerWarning } from "./broker-api.ts";

test("plain http:// to a broker on another machine is warned about; loopback, https and the embedded broker are not", () => {
  for (const url of ["http://10.0.0.5:8080", "http://broker.internal:8080", "http://[2001:db8::1]:8080"]) {
    expect(plainBrokerWarning(url)).toContain("QSTASH_TOKEN and every message cross the network in clear");
  }
  for (const url of [undefined, "http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"]) {
    expect(plainBrokerWarning(url)).toBeUndefined();
  }
  expect(plainBrokerWarning("https://broker.internal:8080")).toBeUndefined();
});
