// Metrics: a portable registry, its Prometheus text rendering, and the instruments Edgewise records.
export {
  type ActorTypeStats,
  type BillingPaymentOutcome,
  type BrokerStats,
  type CacheStatsSource,
  type DeliveryOutcome,
  type DeliverySample,
  EdgewiseMetrics,
  httpDurationBuckets,
  type NodeLoad,
  type OutboxBacklog,
  type RequestSample,
  statusClass,
  type TurnSample,
  turnDurationBuckets,
} from "./edgewise.ts";
export { formatValue, prometheusContentType, renderPrometheus } from "./prometheus.ts";
export {
  CallbackInstrument,
  Counter,
  Gauge,
  Histogram,
  type HistogramOptions,
  type HistogramPoint,
  type InstrumentOptions,
  type Labels,
  type MetricFamily,
  type MetricType,
  MetricsRegistry,
  type NumberPoint,
  type Observe,
  type RegistryOptions,
} from "./registry.ts";
