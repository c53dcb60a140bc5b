/** One metric of an EMF line: every value it carries (EMF allows up to 100 per metric). */
export interface EmfMetric {
  name: string;
  unit: string;
  values: number[];
}

/** One CloudWatch Embedded Metric Format directive, resolved against its line. */
export interface EmfRecord {
  namespace: string;
  /** Milliseconds since the epoch, from `_aws.Timestamp`. */
  timestamp: number;
  /** The values of the directive's dimensions (the union of its dimension sets). */
  dimensions: Record<string, string>;
  metrics: EmfMetric[];
  /** The line's other members: ids and facts that are neither dimensions nor metrics. */
  metadata: Record<string, unknown>;
}

interface Directive {
  Namespace?: unknown;
  Dimensions?: unknown;
  Metrics?: unknown;
}

/**
 * Parses one EMF line (the format CloudWatch Logs turns into metrics) into its directives, each
 * resolved against the line's members. Undefined for a line that is not EMF or is malformed in a
 * way CloudWatch would reject (no `_aws.CloudWatchMetrics`, a metric without a numeric value, a
 * dimension that is not a string).
 */
export function parseEmf(line: string): EmfRecord[] | undefined {
  let doc: Record<string, unknown>;
  try {
    const parsed = JSON.parse(line) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
    doc = parsed as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const aws = doc._aws as { Timestamp?: unknown; CloudWatchMetrics?: unknown } | undefined;
  if (!aws || !Array.isArray(aws.CloudWatchMetrics)) return undefined;
  const timestamp = typeof aws.Timestamp === 'number' ? aws.Timestamp : Date.now();
  const records: EmfRecord[] = [];
  const used = new Set<string>(['_aws']);
  for (const raw of aws.CloudWatchMetrics as Directive[]) {
    if (!raw || typeof raw.Namespace !== 'string' || !Array.isArray(raw.Metrics)) return undefined;
    const dimensions: Record<string, string> = {};
    for (const set of Array.isArray(raw.Dimensions) ? raw.Dimensions : []) {
      if (!Array.isArray(set)) return undefined;
      for (const key of set) {
        const value = doc[key as string];
        if (typeof key !== 'string' || typeof value !== 'string') return undefined;
        dimensions[key] = value;
        used.add(key);
      }
    }
    const metrics: EmfMetric[] = [];
    for (const m of raw.Metrics as { Name?: unknown; Unit?: unknown }[]) {
      if (!m || typeof m.Name !== 'string') return undefined;
      const value = doc[m.Name];
      const values = Array.isArray(value) ? value : [value];
      if (values.length === 0 || values.some((v) => typeof v !== 'number' || !Number.isFinite(v)))
        return undefined;
      metrics.push({
        name: m.Name,
        unit: typeof m.Unit === 'string' ? m.Unit : 'None',
        values: values as number[],
      });
      used.add(m.Name);
    }
    records.push({ namespace: raw.Namespace, timestamp, dimensions, metrics, metadata: {} });
  }
  const metadata = Object.fromEntries(Object.entries(doc).filter(([k]) => !used.has(k)));
  for (const r of records) r.metadata = metadata;
  return records;
}
