import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MetricUnit as Unit } from '@aws-lambda-powertools/metrics/types';
import type { MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';
import { loadConfig } from '../core/config.js';
import { logger } from './logger.js';

/**
 * fanout's metrics: one catalog, one recorder per invocation, one middy middleware that publishes
 * what the invocation recorded as CloudWatch Embedded Metric Format lines on stdout (Powertools
 * Metrics, namespace `fanout`). On Lambda, CloudWatch turns those lines into metrics; the local
 * stack collects the same lines and serves them at `GET /metrics` and `GET /dashboard`.
 *
 * A handler records, the core computes: handlers (and adapters) call {@link metricsOf} and `add`
 * values the core returned; nothing in `functions/core/` knows about metrics.
 *
 * ```ts
 * export const handler = middy(async (event: MyEvent, context: Context) => {
 *   const result = await doWork(event);
 *   metricsOf(context).add('MyThings', result.things, { ensemble: event.ensemble });
 *   return result;
 * }).use(observability('myFunction', logger));
 * ```
 *
 * To add a metric: one entry in {@link METRICS} (name, unit, dimensions, meaning), then `add` it
 * where the value is known. The dimensions' names are checked by the compiler against the entry.
 * The local `/metrics` exposition, the dashboard and the README's table read this catalog; the
 * CloudWatch alarms and dashboard (scripts/serverless-observability.cjs) name metrics from it, and
 * the template tests check every name they use is here.
 *
 * Dimensions are low-cardinality by rule: ensemble, model, error code, function, result-cache path
 * (sync or batch). Never a feature, a row value or an id: ids go in an invocation's metadata
 * ({@link MetricsRecorder.setMetadata}), which lands in the log line (searchable with Logs
 * Insights) but creates no metric. Every line also carries the `stage` dimension, so two
 * deployments in one account never mix.
 */
export const NAMESPACE = 'fanout';

/** One metric: its CloudWatch unit, its dimensions, and what it means (for people). */
export interface MetricSpec {
  unit: Unit;
  dimensions: readonly string[];
  description: string;
  /**
   * Where the local Prometheus exposition puts it when not under its default name
   * (`fanout_<snake_case>`): several metrics as one family told apart by a label.
   */
  prometheus?: { name: string; labels: Record<string, string> };
}

const memberCalls = (status: string) => ({ name: 'fanout_member_calls_total', labels: { status } });

/** Every metric fanout emits. */
export const METRICS = {
  Requests: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble'],
    description:
      'Prediction requests answered (POST /v1/ensembles/{ensemble}/predictions and OIP infer), whatever the status.',
  },
  RequestLatency: {
    unit: MetricUnit.Milliseconds,
    dimensions: ['ensemble'],
    description: 'Time the API took to answer a scored prediction (HTTP 200, not a replay).',
  },
  DegradedAnswers: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble'],
    description:
      'Per scored prediction: 1 when a member was missing from the answer (degraded), else 0. The average is the degraded share.',
  },
  QuorumMisses: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble'],
    description:
      'Per request: 1 when fewer members answered than the quorum (HTTP 503), else 0. The sum counts them; the average is the rate.',
  },
  ClientErrors: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble', 'code'],
    description:
      '4xx answers by error code (invalid_request, not_found, conflict, payload_too_large, unsupported_media_type).',
  },
  ServerErrors: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble', 'code'],
    description:
      '5xx answers other than quorum misses, by error code (inference_failed, inference_timeout, upstream_unavailable, internal_error).',
  },
  IdempotentReplays: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble'],
    description: 'Requests answered from the store because their client id was seen before.',
  },
  MemberLatency: {
    unit: MetricUnit.Milliseconds,
    dimensions: ['ensemble', 'model'],
    description:
      "A member's scoring time in a synchronous prediction, as its runner measured it (answers, and failures whose time is known).",
  },
  MemberBatchLatency: {
    unit: MetricUnit.Milliseconds,
    dimensions: ['ensemble', 'model'],
    description: "A member's scoring time for one batch of a batch job (up to 250 rows).",
  },
  MemberOk: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble', 'model'],
    description: 'Per member call (synchronous or batch): 1 when the member answered, else 0.',
    prometheus: memberCalls('ok'),
  },
  MemberFailed: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble', 'model'],
    description:
      'Per member call: 1 when the member failed (an error, a bad answer, no result), else 0. The average is its failure rate.',
    prometheus: memberCalls('failed'),
  },
  MemberTimedOut: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble', 'model'],
    description: 'Per member call: 1 when the member did not answer within its timeout, else 0.',
    prometheus: memberCalls('timeout'),
  },
  MemberRows: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble', 'model'],
    description: 'Rows a member scored (answered calls only).',
  },
  BatchJobsStarted: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble'],
    description: 'Uploads that started a batch job.',
  },
  BatchUploadsRejected: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble'],
    description:
      'Uploads refused as a batch file (unknown ensemble, not CSV/JSON Lines, empty, binary, bad header). The ensemble is "unknown" when the key names none that is served.',
  },
  BatchJobsSucceeded: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble'],
    description: 'Batch jobs that finished with every row scored or reported.',
  },
  BatchJobsFailed: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble'],
    description: 'Batch jobs whose scoring stopped (rows scored before it are kept).',
  },
  BatchRowsReceived: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble'],
    description: 'Rows in the uploaded files that were prepared (good and malformed).',
  },
  BatchRowsStored: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble'],
    description: 'Rows through the batch store step (scored, or failed below the quorum): batch throughput.',
  },
  BatchRowsOk: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble'],
    description: 'Rows with a result in a finished job.',
  },
  BatchRowsFailed: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble'],
    description: 'Rows in the error file of a finished job (malformed, below the quorum, failed batches).',
  },
  BatchRowsDegraded: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble'],
    description: 'Rows of a finished job scored with a member missing.',
  },
  BatchRowsPerSecond: {
    unit: MetricUnit.CountPerSecond,
    dimensions: ['ensemble'],
    description: "A finished job's rows divided by its time from start to finish.",
  },
  BatchJobDuration: {
    unit: MetricUnit.Seconds,
    dimensions: ['ensemble'],
    description: "A finished job's time from start to finish.",
  },
  CacheHits: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble', 'path'],
    description:
      'Result-cache lookups answered from the cache. Path sync: per request to an ensemble with a cache, 1 when every row had a fresh entry (answered without the members), else 0; the average is the hit rate. Path batch: the distinct rows of a batch found in the cache.',
  },
  CacheMisses: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble', 'path'],
    description:
      'Result-cache lookups that ran the members. Path sync: per request, 1 when a row had no fresh entry (or the cache could not be read), else 0. Path batch: the distinct rows of a batch the members scored.',
  },
  CacheErrors: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble', 'path'],
    description:
      'Failed result-cache reads (per request or batch) and writes (per answer or batch): the work went on uncached and a warning names the reason. Written only when one happens.',
  },
  MemberRowsCompared: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble', 'model', 'role'],
    description:
      "Rows a member answered that were compared with the ensemble's answer (role counted or shadow): the denominator of its agreement rate and mean difference.",
  },
  MemberRowsAgreed: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble', 'model', 'role'],
    description:
      "Of those rows, the ones where the member's top label was the ensemble's label. Agreement rate: MemberRowsAgreed / MemberRowsCompared over any period.",
  },
  MemberAbsDiffSum: {
    // A sum, counted like rows: it only grows, and the mean is this over MemberRowsCompared.
    unit: MetricUnit.Count,
    dimensions: ['ensemble', 'model', 'role'],
    description:
      "Sum over compared rows of the mean absolute difference between the member's probabilities and the ensemble's (0..1 per row). Mean difference: MemberAbsDiffSum / MemberRowsCompared.",
  },
  CanaryRowsCompared: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble', 'canary'],
    description:
      "Rows where both an ensemble's answer and its canary's are known (the other side computed from the same member results, on requests either side served).",
  },
  CanaryRowsAgreed: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble', 'canary'],
    description:
      'Of those rows, the ones where both sides gave the same label. Agreement rate: CanaryRowsAgreed / CanaryRowsCompared.',
  },
  CanaryAbsDiffSum: {
    unit: MetricUnit.Count,
    dimensions: ['ensemble', 'canary'],
    description:
      "Sum over compared rows of the mean absolute difference between the two sides' probabilities. Mean difference: CanaryAbsDiffSum / CanaryRowsCompared.",
  },
  ColdStarts: {
    unit: MetricUnit.Count,
    dimensions: ['function'],
    description: "A function instance's first invocation.",
  },
} as const satisfies Record<string, MetricSpec>;

/** A metric's name. */
export type MetricName = keyof typeof METRICS;

/** The dimension values a metric takes: exactly the names its catalog entry lists. */
export type DimensionsOf<N extends MetricName> = {
  [K in (typeof METRICS)[N]['dimensions'][number]]: string;
};

/** Metadata a line carries besides its metrics: ids and facts for log searches, never dimensions. */
export type Metadata = Record<string, string | number | boolean>;

/** The functions of serverless.yml, as the `function` dimension names them. */
export type FunctionKey =
  | 'api'
  | 'runner'
  | 'ensemble'
  | 'batchTrigger'
  | 'batchPrepare'
  | 'batchPlan'
  | 'batchStore'
  | 'batchFinalize';

/** Metrics that share dimension values: one EMF line. */
export interface MetricGroup {
  dimensions: Record<string, string>;
  metrics: Map<MetricName, number[]>;
}

/**
 * What one invocation records. Nothing is written until the invocation ends, and then in one go,
 * so concurrent invocations in one process (the local stack runs every handler in one) never mix
 * their dimensions, as a shared Powertools Metrics instance would.
 */
export class MetricsRecorder {
  private readonly byDimensions = new Map<string, MetricGroup>();
  private readonly entries: MetricsRecorder[] = [];
  private metadata: Metadata;

  constructor(metadata: Metadata = {}) {
    this.metadata = { ...metadata };
  }

  /** Adds one value of `name` for these dimension values. */
  add<N extends MetricName>(name: N, value: number, dimensions: DimensionsOf<N>): this {
    if (!Number.isFinite(value)) return this;
    const dims = dimensions as Record<string, string>;
    const spec: MetricSpec = METRICS[name];
    const ordered: Record<string, string> = {};
    // Never an empty value: CloudWatch drops a line whose dimension is empty.
    for (const d of spec.dimensions) ordered[d] = dims[d] || 'none';
    const key = JSON.stringify(ordered);
    let group = this.byDimensions.get(key);
    if (!group) {
      group = { dimensions: ordered, metrics: new Map() };
      this.byDimensions.set(key, group);
    }
    const values = group.metrics.get(name);
    if (values) values.push(value);
    else group.metrics.set(name, [value]);
    return this;
  }

  /** Sets metadata that every line of this invocation carries (a prediction or job id, a status). */
  setMetadata(values: Metadata): this {
    this.metadata = { ...this.metadata, ...values };
    return this;
  }

  /**
   * A separate entry of this invocation, published as its own lines with its own metadata on top
   * of the invocation's: one per item when an invocation handles several (the objects of an S3
   * event), so each line names its own id.
   */
  entry(metadata: Metadata): MetricsRecorder {
    const child = new MetricsRecorder(metadata);
    this.entries.push(child);
    return child;
  }

  /** Everything recorded, as the lines it will be published as: dimension values and metadata. */
  lines(): { group: MetricGroup; metadata: Metadata }[] {
    const own = [...this.byDimensions.values()].map((group) => ({ group, metadata: { ...this.metadata } }));
    const nested = this.entries.flatMap((e) =>
      e.lines().map((l) => ({ group: l.group, metadata: { ...this.metadata, ...l.metadata } })),
    );
    return [...own, ...nested];
  }
}

let emitter: Metrics | undefined;

/**
 * The one Powertools Metrics instance of the process. It reads POWERTOOLS_METRICS_DISABLED (and
 * POWERTOOLS_DEV, which disables metrics unless that variable is set) once, when first used.
 */
function powertools(): Metrics {
  if (!emitter) {
    emitter = new Metrics({ namespace: NAMESPACE });
    // The namespace already names the service; `stage` is the dimension that tells stacks apart.
    emitter.clearDefaultDimensions();
    defaultStage = undefined;
  }
  return emitter;
}

/**
 * Whether EMF lines are written in this process: Powertools' own decision, made once from
 * POWERTOOLS_METRICS_DISABLED (or POWERTOOLS_DEV, which turns metrics off unless that is set).
 */
export function metricsEnabled(): boolean {
  // `isDisabled` is protected in the typings, public at run time: asking it keeps one decision.
  return !(powertools() as unknown as { isDisabled(): boolean }).isDisabled();
}

/** EMF takes at most 100 values per metric in a line; Powertools flushes on its own past that. */
const MAX_VALUES_PER_LINE = 100;

/** The stage the Powertools instance carries as its default dimension. */
let defaultStage: string | undefined;

/**
 * Writes what a recorder holds, one EMF line per group (more if a metric has over 100 values).
 * Synchronous from start to end, so no other invocation can add to the shared Powertools instance
 * in between. A line that fails is logged and dropped, the others are written: metrics never fail a
 * request.
 */
export function publish(recorder: MetricsRecorder, stage = stageName()): void {
  const m = powertools();
  // Every line carries the stage: as Powertools' default dimension it is set once, not copied and
  // checked again for each line (Powertools writes default dimensions first, so the lines are the
  // same as with the stage added to each).
  if (stage !== defaultStage) {
    m.clearDefaultDimensions();
    m.setDefaultDimensions({ stage });
    defaultStage = stage;
  }
  for (const { group, metadata } of recorder.lines()) {
    let longest = 0;
    for (const values of group.metrics.values()) longest = Math.max(longest, values.length);
    for (let from = 0; from < longest; from += MAX_VALUES_PER_LINE) {
      try {
        for (const [k, v] of Object.entries(group.dimensions)) m.addDimension(k, v);
        for (const [name, values] of group.metrics) {
          const spec: MetricSpec = METRICS[name];
          const to = Math.min(values.length, from + MAX_VALUES_PER_LINE);
          for (let i = from; i < to; i++) m.addMetric(name, spec.unit, values[i] as number);
        }
        // Powertools types metadata as strings; it writes any JSON value, and numbers stay numbers.
        for (const [k, v] of Object.entries(metadata)) m.addMetadata(k, v as string);
        m.publishStoredMetrics();
      } catch (err) {
        m.clearMetrics();
        m.clearDimensions();
        m.clearMetadata();
        logger.warn('metrics not published', { error: (err as Error).message });
      }
    }
  }
}

function stageName(): string {
  try {
    return loadConfig().stage;
  } catch {
    return 'unknown';
  }
}

const recorders = new WeakMap<object, MetricsRecorder>();

/**
 * The recorder of the invocation whose Lambda context this is. Outside the middleware (a handler
 * called directly in a test) it is a recorder nobody publishes.
 */
export function metricsOf(context: Context | undefined): MetricsRecorder {
  if (context && typeof context === 'object') {
    const found = recorders.get(context);
    if (found) return found;
  }
  return new MetricsRecorder();
}

/**
 * The middy middleware: a fresh recorder for each invocation (found with {@link metricsOf}), a
 * `ColdStarts` count on the first one, and everything published when the handler returns or throws.
 */
export function fanoutMetrics(functionKey: FunctionKey): MiddlewareObj<unknown, unknown, Error, Context> {
  let cold = true;
  const flush = (request: { context: Context }) => {
    const recorder = recorders.get(request.context);
    if (!recorder) return;
    recorders.delete(request.context);
    publish(recorder);
  };
  return {
    before: (request) => {
      // A test may call a handler without a context; the recorder needs an object to hang on.
      request.context ??= {} as Context;
      const recorder = new MetricsRecorder();
      recorders.set(request.context, recorder);
      if (cold) {
        cold = false;
        recorder.add('ColdStarts', 1, { function: functionKey });
      }
    },
    after: flush,
    onError: flush,
  };
}
