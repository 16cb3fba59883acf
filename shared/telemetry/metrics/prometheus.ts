// Renders collected metric families in the Prometheus text exposition format, version 0.0.4.
import type { HistogramPoint, Labels, MetricFamily, NumberPoint } from "./registry.ts";

export const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

/** HELP text escapes backslash and newline; label values also escape the double quote. */
const escapeHelp = (text: string) => text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
const escapeLabel = (value: string) =>
  value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");

/** Go's ParseFloat spellings, which Prometheus reads: `+Inf`, `-Inf`, `NaN`; JS prints the rest compatibly. */
export function formatValue(value: number): string {
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels).filter(([, value]) => value !== "");
  if (extra) pairs.push(extra);
  if (pairs.length === 0) return "";
  return `{${pairs.map(([name, value]) => `${name}="${escapeLabel(value)}"`).join(",")}}`;
}

/**
 * One `# HELP` and one `# TYPE` per family, then its samples. An empty label value is left out, which is how
 * Prometheus reads it anyway. Histograms write cumulative `_bucket{le}` samples ending in `le="+Inf"` (equal to
 * `_count`), then `_sum` and `_count`.
 */
export function renderPrometheus(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    if (family.type === "histogram") {
      for (const point of family.points as HistogramPoint[]) histogramLines(lines, family.name, point);
    } else {
      for (const point of family.points as NumberPoint[]) {
        lines.push(`${family.name}${labelText(point.labels)} ${formatValue(point.value)}`);
      }
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

function histogramLines(lines: string[], name: string, point: HistogramPoint): void {
  let cumulative = 0;
  point.bounds.forEach((bound, i) => {
    cumulative += point.counts[i] ?? 0;
    lines.push(`${name}_bucket${labelText(point.labels, ["le", formatValue(bound)])} ${cumulative}`);
  });
  lines.push(
    `${name}_bucket${labelText(point.labels, ["le", "+Inf"])} ${point.count}`,
    `${name}_sum${labelText(point.labels)} ${formatValue(point.sum)}`,
    `${name}_count${labelText(point.labels)} ${point.count}`,
  );
}
