// Reads /metrics with a real Prometheus text parser (prom2javascript) and sums series by a label subset.
import { getMetricsFromIterator, type PromHistogramData, type PromMetrics } from "prom2javascript";

export class Scrape {
  constructor(
    readonly text: string,
    readonly metrics: PromMetrics,
  ) {}

  type(name: string): string | undefined {
    return this.metrics[name]?.type;
  }

  /** The sum of a counter's or gauge's series whose labels include `labels` (0 when none match). */
  value(name: string, labels: Record<string, string> = {}): number {
    const metric = this.metrics[name];
    if (!metric || metric.type === "histogram" || metric.type === "summary") return 0;
    return (metric.data as Array<{ labels: Record<string, string>; value: number }>)
      .filter((point) => matches(point.labels, labels))
      .reduce((sum, point) => sum + point.value, 0);
  }

  /** The matching series of a histogram. */
  histograms(name: string, labels: Record<string, string> = {}): PromHistogramData[] {
    const metric = this.metrics[name];
    if (metric?.type !== "histogram") return [];
    return (metric.data as PromHistogramData[]).filter((point) => matches(point.labels, labels));
  }

  /** The total `_count` of a histogram's matching series. */
  count(name: string, labels: Record<string, string> = {}): number {
    return this.histograms(name, labels).reduce((sum, point) => sum + point.count, 0);
  }
}

const matches = (have: Record<string, string>, want: Record<string, string>) =>
  Object.entries(want).every(([key, value]) => have[key] === value);

export async function parseMetrics(text: string): Promise<Scrape> {
  return new Scrape(text, await getMetricsFromIterator(text.split("\n")[Symbol.iterator]()));
}

/** GET /metrics and parse it; fails on a non-200 or a body the parser refuses. */
export async function scrape(base: string, headers: Record<string, string> = {}): Promise<Scrape> {
  const response = await fetch(`${base}/metrics`, { headers });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET /metrics: ${response.status} ${text}`);
  if (!response.headers.get("content-type")?.startsWith("text/plain; version=0.0.4")) {
    throw new Error(`GET /metrics: content-type ${response.headers.get("content-type")}`);
  }
  return parseMetrics(text);
}
