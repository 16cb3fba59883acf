// A failed span (the console's trace store, OTLP export) carries an error's text masked as a log line does.
import { expect, test } from "bun:test";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { EdgewiseError } from "../../errors/index.ts";
import { failSpan } from "./index.ts";

test("failSpan records the error's message and stack with secrets masked, and keeps its type", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer("fail-span-test");
  const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.UExBTlRFRC1zaWduYXR1cmUtYnl0ZXM";
  const errors = [
    new Error(`upstream refused Bearer ${jwt} at postgres://app:PLANTEDpw@db:5432/shop`),
    new EdgewiseError("unavailable", `the receiver answered: token ${jwt}`),
  ];
  for (const error of errors) {
    const span = tracer.startSpan("work");
    failSpan(span, error);
    span.end();
  }
  const spans = exporter.getFinishedSpans();
  expect(spans).toHaveLength(2);
  const recorded = JSON.stringify(spans.map((span) => [span.status, span.events]));
  expect(recorded).not.toContain("PLANTED");
  expect(recorded).not.toContain(jwt.split(".")[2] as string);
  expect(spans[0]?.status.message).toBe(
    "upstream refused Bearer [redacted] at postgres://app:[redacted]@db:5432/shop",
  );
  expect(spans.map((span) => span.events[0]?.attributes?.["exception.type"])).toEqual([
    "Error",
    "unavailable",
  ]);
  expect(String(spans[0]?.events[0]?.attributes?.["exception.stacktrace"])).toContain("fail-span.test.ts");
});
