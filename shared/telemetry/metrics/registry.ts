// A small, portable metrics registry: counters, gauges, histograms and callback instruments, read as snapshots.
/*
 * Why not the OpenTelemetry SDK: `@opentelemetry/api` alone records nothing (its meter is a no-op until an SDK
 * MeterProvider is registered), the SDK's MeterProvider and Prometheus exporter are Node-first and heavy, and the
 * exporter crashes on Bun (otel-js#4488). This registry starts no timer, does no I/O and touches no global at
 * module scope, so it loads unchanged on workerd, Bun and Deno.
 *
 * The data model follows OTel's, so any reader can export the same instruments: `collect()` returns one
 * `MetricFamily` per instrument with cumulative points, and histogram points keep explicit bounds with
 * per-bucket (not cumulative) counts, as OTLP's ExplicitBucketHistogram does. `prometheus.ts` is one reader; an
 * OTLP/HTTP reader would map `name` back to the OTel name and `unit`, and post the same snapshot.
 */

export type MetricType = "counter" | "gauge" | "histogram";
export type Labels<L extends string = string> = Readonly<Record<L, string>>;

export interface NumberPoint {
  labels: Labels;
  value: number;
}

export interface HistogramPoint {
  labels: Labels;
  /** Upper bounds, ascending, without +Inf. */
  bounds: readonly number[];
  /** Per bucket, not cumulative: `counts[i]` is in (bounds[i-1], bounds[i]]; the last is above every bound. */
  counts: readonly number[];
  sum: number;
  count: number;
}

export interface MetricFamily {
  /** Prometheus-style: `http_server_request_duration_seconds`, `edgewise_deliveries_total`. */
  name: string;
  help: string;
  type: MetricType;
  /** UCUM-ish unit for OTLP (`s`, `1`, `{message}`); informational. */
  unit?: string;
  points: NumberPoint[] | HistogramPoint[];
}

export interface InstrumentOptions<L extends string> {
  name: string;
  help: string;
  unit?: string;
  labelNames?: readonly L[];
  /** New label sets past this many go to one series whose labels all read `_overflow`. Default 1000. */
  maxSeries?: number;
}

export interface HistogramOptions<L extends string> extends InstrumentOptions<L> {
  /** Upper bounds, ascending. */
  buckets: readonly number[];
}

/** Reports the current values of a callback instrument. May be async (a database count); see `collect`. */
export type Observe<L extends string> = (
  observe: (value: number, labels?: Labels<L>) => void,
) => void | Promise<void>;

export interface CallbackOptions<L extends string> extends InstrumentOptions<L> {
  observe: Observe<L>;
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const overflow = "_overflow";

abstract class Instrument<L extends string, S> {
  readonly labelNames: readonly L[];
  protected readonly series = new Map<string, { labels: Labels; data: S }>();
  private readonly maxSeries: number;

  constructor(
    readonly type: MetricType,
    protected readonly options: InstrumentOptions<L>,
  ) {
    this.labelNames = options.labelNames ?? [];
    this.maxSeries = options.maxSeries ?? 1000;
  }

  get name(): string {
    return this.options.name;
  }

  get help(): string {
    return this.options.help;
  }

  /** The series for a label set, made on first use. A missing label reads as "" (Prometheus: absent). */
  protected seriesFor(labels: Labels<L> | undefined, make: () => S): S {
    let values = this.labelNames.map((name) => labels?.[name] ?? "");
    let key = values.join("\u0000");
    let entry = this.series.get(key);
    if (!entry) {
      // Past the cap, new label sets share one series, so a caller that leaks ids into labels cannot grow
      // memory or the scrape without bound.
      if (this.series.size >= this.maxSeries) {
        values = this.labelNames.map(() => overflow);
        key = values.join("\u0000");
        entry = this.series.get(key);
      }
      if (!entry) {
        const own = Object.fromEntries(this.labelNames.map((name, i) => [name, values[i] as string]));
        entry = { labels: own, data: make() };
        this.series.set(key, entry);
      }
    }
    return entry.data;
  }

  abstract collect(): Promise<MetricFamily>;

  protected family(points: NumberPoint[] | HistogramPoint[]): MetricFamily {
    const { name, help, unit } = this.options;
    return { name, help, type: this.type, ...(unit ? { unit } : {}), points };
  }
}

export class Counter<L extends string = never> extends Instrument<L, { value: number }> {
  constructor(options: InstrumentOptions<L>) {
    super("counter", options);
  }

  /** Adds a non-negative amount; a negative one is ignored (a counter only goes up). */
  add(value: number, labels?: Labels<L>): void {
    if (!(value >= 0)) return;
    this.seriesFor(labels, () => ({ value: 0 })).value += value;
  }

  inc(labels?: Labels<L>): void {
    this.add(1, labels);
  }

  async collect(): Promise<MetricFamily> {
    return this.family([...this.series.values()].map(({ labels, data }) => ({ labels, value: data.value })));
  }
}

export class Gauge<L extends string = never> extends Instrument<L, { value: number }> {
  constructor(options: InstrumentOptions<L>) {
    super("gauge", options);
  }

  set(value: number, labels?: Labels<L>): void {
    this.seriesFor(labels, () => ({ value: 0 })).value = value;
  }

  add(value: number, labels?: Labels<L>): void {
    this.seriesFor(labels, () => ({ value: 0 })).value += value;
  }

  async collect(): Promise<MetricFamily> {
    return this.family([...this.series.values()].map(({ labels, data }) => ({ labels, value: data.value })));
  }
}

interface HistogramData {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram<L extends string = never> extends Instrument<L, HistogramData> {
  readonly bounds: readonly number[];

  constructor(options: HistogramOptions<L>) {
    super("histogram", options);
    const bounds = [...options.buckets];
    if (bounds.some((bound, i) => !Number.isFinite(bound) || (i > 0 && bound <= (bounds[i - 1] as number)))) {
      throw new TypeError(`metric ${options.name}: buckets must be finite and strictly ascending`);
    }
    this.bounds = bounds;
  }

  record(value: number, labels?: Labels<L>): void {
    if (Number.isNaN(value)) return;
    const data = this.seriesFor(labels, () => ({
      counts: new Array<number>(this.bounds.length + 1).fill(0),
      sum: 0,
      count: 0,
    }));
    // Linear scan: bucket lists are short (about 15), and most values land in the first few.
    let i = 0;
    while (i < this.bounds.length && value > (this.bounds[i] as number)) i++;
    data.counts[i] = (data.counts[i] as number) + 1;
    data.sum += value;
    data.count++;
  }

  async collect(): Promise<MetricFamily> {
    return this.family(
      [...this.series.values()].map(({ labels, data }) => ({
        labels,
        bounds: this.bounds,
        counts: [...data.counts],
        sum: data.sum,
        count: data.count,
      })),
    );
  }
}

/** A counter or gauge whose values are read when collected (from `stats()`, a snapshot, a database count). */
export class CallbackInstrument<L extends string = never> extends Instrument<L, never> {
  private readonly observe: Observe<L>;

  constructor(type: "counter" | "gauge", options: CallbackOptions<L>) {
    super(type, options);
    this.observe = options.observe;
  }

  async collect(): Promise<MetricFamily> {
    const points: NumberPoint[] = [];
    await this.observe((value, labels) => {
      const own = Object.fromEntries(this.labelNames.map((name) => [name, labels?.[name] ?? ""]));
      points.push({ labels: own, value });
    });
    return this.family(points);
  }
}

type AnyInstrument = Instrument<string, unknown>;

export interface RegistryOptions {
  /** How long one callback instrument may take when collected; past it, its points are left out. Default 2 s. */
  callbackTimeoutMs?: number;
  /** Told when a callback instrument fails or times out (its family is then rendered without points). */
  onError?: (name: string, error: unknown) => void;
}

/**
 * Instruments by name. Asking again for a name returns the instrument already made (so wiring code can run
 * twice), if its type matches; a different type under the same name is a programming error and throws.
 */
export class MetricsRegistry {
  private readonly instruments = new Map<string, AnyInstrument>();

  constructor(private readonly options: RegistryOptions = {}) {}

  counter<L extends string = never>(options: InstrumentOptions<L>): Counter<L> {
    return this.register(options, Counter, "counter", () => new Counter(options));
  }

  gauge<L extends string = never>(options: InstrumentOptions<L>): Gauge<L> {
    return this.register(options, Gauge, "gauge", () => new Gauge(options));
  }

  histogram<L extends string = never>(options: HistogramOptions<L>): Histogram<L> {
    return this.register(options, Histogram, "histogram", () => new Histogram(options));
  }

  /** A counter read from a callback: for totals something else already counts (cache stats, breakers). */
  callbackCounter<L extends string = never>(options: CallbackOptions<L>): CallbackInstrument<L> {
    return this.register(
      options,
      CallbackInstrument,
      "counter",
      () => new CallbackInstrument("counter", options),
    );
  }

  /** A gauge read from a callback: mailbox depth, outbox lag, dead letters. */
  callbackGauge<L extends string = never>(options: CallbackOptions<L>): CallbackInstrument<L> {
    return this.register(
      options,
      CallbackInstrument,
      "gauge",
      () => new CallbackInstrument("gauge", options),
    );
  }

  /** Every instrument's current values, in registration order. Callback instruments run concurrently. */
  async collect(): Promise<MetricFamily[]> {
    const timeoutMs = this.options.callbackTimeoutMs ?? 2_000;
    return Promise.all(
      [...this.instruments.values()].map(async (instrument) => {
        if (!(instrument instanceof CallbackInstrument)) return instrument.collect();
        try {
          return await withDeadline(instrument.collect(), timeoutMs, instrument.name);
        } catch (error) {
          this.options.onError?.(instrument.name, error);
          return { name: instrument.name, help: instrument.help, type: instrument.type, points: [] };
        }
      }),
    );
  }

  private register<I extends AnyInstrument>(
    options: InstrumentOptions<string>,
    kind: abstract new (...args: never[]) => I,
    type: MetricType,
    make: () => I,
  ): I {
    const existing = this.instruments.get(options.name);
    if (existing) {
      if (!(existing instanceof kind) || existing.type !== type) {
        throw new TypeError(`metric ${options.name} is already registered as a ${existing.type}`);
      }
      return existing;
    }
    if (!metricName.test(options.name)) throw new TypeError(`invalid metric name: ${options.name}`);
    for (const name of options.labelNames ?? []) {
      if (!labelName.test(name) || name.startsWith("__") || name === "le" || name === "quantile") {
        throw new TypeError(`metric ${options.name}: invalid label name ${name}`);
      }
    }
    const instrument = make();
    this.instruments.set(options.name, instrument);
    return instrument;
  }
}

function withDeadline<T>(work: Promise<T>, ms: number, name: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`metric ${name}: callback took over ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
}
