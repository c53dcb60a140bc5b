import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { METRICS, type MetricSpec } from '../../functions/adapters/metrics.js';
import type { EmfRecord } from './emf.js';

/** Seconds per unit, for the units Prometheus wants as seconds. */
const TIME_UNITS: Record<string, number> = { Milliseconds: 1e-3, Seconds: 1, Microseconds: 1e-6 };

/** Histogram buckets (seconds) fitted to what each latency is; prom-client's defaults otherwise. */
const BUCKETS: Record<string, number[]> = {
  RequestLatency: [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  MemberLatency: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  MemberBatchLatency: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  BatchJobDuration: [1, 2, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600],
};

type Family =
  | { kind: 'counter'; metric: Counter; labelNames: string[]; scale: 1 }
  | { kind: 'histogram'; metric: Histogram; labelNames: string[]; scale: number }
  | { kind: 'gauge'; metric: Gauge; labelNames: string[]; scale: 1 };

/** `RequestLatency` → `request_latency`. */
export function snakeCase(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9_]/g, '_')
    .toLowerCase();
}

/**
 * The Prometheus exposition of the EMF metrics: a time unit becomes a histogram in seconds
 * (`fanout_member_latency_seconds`), a count a counter (`fanout_requests_total`), anything else
 * (a rate, a size) a gauge holding the last value. Dimensions become labels. A catalog entry may
 * put several metrics in one family told apart by a label (the member outcomes become
 * `fanout_member_calls_total{status="ok|failed|timeout"}`).
 */
export class PrometheusExporter {
  readonly registry = new Registry();
  private readonly families = new Map<string, Family>();
  /** Families by EMF metric name and unit: the lookup every line makes, before any name is built. */
  private readonly byMetric = new Map<string, { family: Family; extra: Record<string, string> }>();

  constructor(private readonly namespace = 'fanout') {}

  /** Adds one EMF directive's values. */
  add(record: EmfRecord): void {
    for (const metric of record.metrics) {
      const { family, extra } = this.familyOf(metric.name, metric.unit, record.dimensions);
      const labels: Record<string, string> = {};
      for (const l of family.labelNames) labels[l] = record.dimensions[l] ?? extra[l] ?? '';
      for (const value of metric.values) {
        if (family.kind === 'counter') {
          if (value >= 0) family.metric.inc(labels, value);
        } else if (family.kind === 'histogram') family.metric.observe(labels, value * family.scale);
        else family.metric.set(labels, value);
      }
    }
  }

  /** The text exposition format, version 0.0.4. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type of {@link text}. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The family an EMF metric goes to. Built on the metric's first line (its label names are then
   * fixed, as Prometheus wants), found by name and unit on every later one.
   */
  private familyOf(
    name: string,
    unit: string,
    dimensions: Record<string, string>,
  ): { family: Family; extra: Record<string, string> } {
    const key = `${name}\u0000${unit}`;
    let found = this.byMetric.get(key);
    if (!found) {
      const spec = (METRICS as Record<string, MetricSpec>)[name];
      const extra = spec?.prometheus?.labels ?? {};
      const family = this.family(name, unit, spec, [...Object.keys(dimensions), ...Object.keys(extra)]);
      found = { family, extra };
      this.byMetric.set(key, found);
    }
    return found;
  }

  private family(name: string, unit: string, spec: MetricSpec | undefined, labelNames: string[]): Family {
    const scale = TIME_UNITS[unit];
    const base = `${this.namespace}_${snakeCase(name)}`;
    const promName =
      spec?.prometheus?.name ??
      (scale !== undefined ? `${base}_seconds` : unit === 'Count' ? `${base}_total` : base);
    const existing = this.families.get(promName);
    if (existing) return existing;
    const help = spec?.description ?? `${name} (${unit}), from the handlers' EMF lines`;
    const common = { name: promName, help, labelNames, registers: [this.registry] };
    let family: Family;
    if (scale !== undefined) {
      const buckets = BUCKETS[name];
      family = {
        kind: 'histogram',
        metric: new Histogram({ ...common, ...(buckets ? { buckets } : {}) }),
        labelNames,
        scale,
      };
    } else if (unit === 'Count') {
      family = { kind: 'counter', metric: new Counter(common), labelNames, scale: 1 };
    } else family = { kind: 'gauge', metric: new Gauge(common), labelNames, scale: 1 };
    this.families.set(promName, family);
    return family;
  }
}
