import type { EmfRecord } from './emf.js';

/** Options for {@link DashboardModel}. */
export interface DashboardModelOptions {
  /** Width of one time bucket (default 5 s). */
  bucketSeconds?: number;
  /** How many buckets the charts show (default 120: ten minutes). */
  windowBuckets?: number;
  /** The span of the headline figures (default 300 s). */
  summarySeconds?: number;
  /** Recent predictions and batch jobs kept (default 40 and 20). */
  maxPredictions?: number;
  maxJobs?: number;
  now?: () => number;
  /** The drift alarm's rule (serverless.yml's `custom.alarms`), to mark the members it would page for. */
  drift?: DriftRule;
}

/** A counted member drifts when its top label was the answer's on fewer than `agreementMin` of its rows. */
export interface DriftRule {
  /** Share of rows (0.9 is 90%). */
  agreementMin: number;
  /** Rows compared before a share is judged. */
  minRows: number;
  /** The deployed alarm's period: it pages after three of them under the share. */
  periodSeconds: number;
}

/** The alarm plugin's defaults (scripts/serverless-observability.cjs). */
export const DEFAULT_DRIFT_RULE: DriftRule = { agreementMin: 0.9, minRows: 50, periodSeconds: 3600 };

/** Agreement over time is over a sliding minute: a 5-second bucket holds too few rows to judge. */
const AGREEMENT_SPAN_MS = 60_000;

/** An ensemble and its members, as the manifest serves them (shown before any traffic). */
export interface ServedEnsemble {
  name: string;
  members: readonly string[];
  strategy?: string;
  quorum?: number;
  /** The ensemble's result-cache TTL, when it has a cache. */
  cacheTtlSeconds?: number;
  /** Models run beside the members and never counted. */
  shadow?: readonly string[];
  /** Another ensemble serving a share of this one's traffic. */
  canary?: { ensemble: string; percent: number };
}

/** Latencies of one bucket: a bounded reservoir sample (percentiles stay right, memory stays flat). */
class Samples {
  static readonly CAP = 256;
  readonly values: number[] = [];
  seen = 0;

  add(v: number): void {
    this.seen++;
    if (this.values.length < Samples.CAP) this.values.push(v);
    else {
      const i = Math.floor(Math.random() * this.seen);
      if (i < Samples.CAP) this.values[i] = v;
    }
  }
}

interface EnsembleBucket {
  requests: number;
  scored: number;
  degraded: number;
  quorumMisses: number;
  clientErrors: number;
  serverErrors: number;
  replays: number;
  /** Result cache, path sync: requests looked up and answered from it. */
  cacheLookups: number;
  cacheHits: number;
  /** Result cache, path batch: distinct rows looked up and found. */
  batchCacheRows: number;
  batchCacheHits: number;
  cacheErrors: number;
  latency: Samples;
}

interface MemberBucket {
  calls: number;
  ok: number;
  failed: number;
  timedOut: number;
  rows: number;
  latency: Samples;
  batchLatency: Samples;
}

/** Rows compared with an answer in one bucket: how many, how many agreed, the summed difference. */
interface AgreementBucket {
  compared: number;
  agreed: number;
  absDiffSum: number;
}

/** Agreement over a span: the share of rows that agreed and the mean difference; null for none. */
export interface AgreementView {
  compared: number;
  rate: number | null;
  meanAbsDiff: number | null;
}

/** A member's agreement over the summary span, and whether the drift rule holds it below. */
export interface MemberAgreementView extends AgreementView {
  /** A counted member with enough rows compared whose share is under the drift rule's. */
  drifting: boolean;
}

const emptyEnsembleBucket = (): EnsembleBucket => ({
  requests: 0,
  scored: 0,
  degraded: 0,
  quorumMisses: 0,
  clientErrors: 0,
  serverErrors: 0,
  replays: 0,
  cacheLookups: 0,
  cacheHits: 0,
  batchCacheRows: 0,
  batchCacheHits: 0,
  cacheErrors: 0,
  latency: new Samples(),
});

const emptyMemberBucket = (): MemberBucket => ({
  calls: 0,
  ok: 0,
  failed: 0,
  timedOut: 0,
  rows: 0,
  latency: new Samples(),
  batchLatency: new Samples(),
});

/** A prediction request as the dashboard lists it (newest first). */
export interface PredictionEntry {
  at: number;
  ensemble: string;
  id?: string;
  httpStatus?: number;
  latencyMs?: number;
  degraded?: boolean;
  replayed?: boolean;
  /** Answered from the result cache (no member ran). */
  cached?: boolean;
  errorCode?: string;
  failedMembers: { model: string; status: string }[];
}

/** A batch job as the dashboard follows it, from the lines of the trigger and the batch steps. */
export interface JobEntry {
  jobId: string;
  ensemble: string;
  key?: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'REJECTED';
  startedAt: number;
  updatedAt: number;
  finishedAt?: number;
  rowsTotal?: number;
  /** Rows accounted for so far: through the store step, plus malformed ones. */
  rowsDone: number;
  rowsOk: number;
  rowsFailed: number;
  rowsDegraded: number;
  /** Rows answered from the result cache. */
  rowsCached: number;
  rowsPerSecond?: number;
  durationSeconds?: number;
}

/** One ensemble's figures over the summary span. */
export interface EnsembleSummary {
  requests: number;
  rps: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  scored: number;
  degradedRate: number | null;
  quorumMisses: number;
  clientErrors: number;
  serverErrors: number;
  replays: number;
  cache: CacheSummary;
}

/** The result cache's figures over the summary span (all zero for an ensemble without one). */
export interface CacheSummary {
  /** Synchronous requests looked up, answered from the cache, and their share. */
  lookups: number;
  hits: number;
  hitRate: number | null;
  /** Distinct batch rows looked up, found, and their share. */
  batchRows: number;
  batchHits: number;
  batchHitRate: number | null;
  /** Failed reads and writes. */
  errors: number;
}

/** One member's figures over the summary span, and its series. */
export interface MemberView {
  model: string;
  calls: number;
  p50: number | null;
  p99: number | null;
  batchP50: number | null;
  failed: number;
  timedOut: number;
  failedRate: number | null;
  timeoutRate: number | null;
  rows: number;
  /** Run beside the members, never counted (a shadow member). */
  shadow: boolean;
  /** How often its top label was the ensemble's, and how far its probabilities were from it. */
  agreement: MemberAgreementView;
  series: {
    p50: (number | null)[];
    calls: number[];
    failures: number[];
    /** Its agreement over the minute up to each bucket; null where no row was compared. */
    agreement: (number | null)[];
  };
}

/** One ensemble on the dashboard. */
export interface EnsembleView {
  name: string;
  strategy?: string;
  quorum?: number;
  cacheTtlSeconds?: number;
  shadow?: string[];
  /** Its canary, and how the two sides' answers compared where both were known. */
  canary?: {
    ensemble: string;
    percent: number;
    agreement: AgreementView;
    /** The two sides' agreement over the minute up to each bucket, as the members' series. */
    series: (number | null)[];
  };
  totalRequests: number;
  recent: EnsembleSummary;
  series: {
    requests: number[];
    /** Synchronous requests answered from the result cache. */
    cacheHits: number[];
    p50: (number | null)[];
    p90: (number | null)[];
    p99: (number | null)[];
    degraded: number[];
    errors: number[];
  };
  members: MemberView[];
}

/** What `GET /dashboard/data` answers. */
export interface DashboardData {
  generatedAt: number;
  startedAt: number;
  bucketSeconds: number;
  summarySeconds: number;
  /** The drift alarm's rule the members are marked by, and the span each agreement point covers. */
  drift: DriftRule & { spanSeconds: number };
  /** Start of each bucket, ms since the epoch, oldest first. */
  times: number[];
  totals: { requests: number; scored: number; degraded: number; quorumMisses: number; errors: number };
  /** Every ensemble together over the summary span. */
  overall: EnsembleSummary;
  ensembles: EnsembleView[];
  predictions: PredictionEntry[];
  jobs: JobEntry[];
}

interface EnsembleState {
  name: string;
  members: string[];
  shadow: string[];
  canary?: { ensemble: string; percent: number };
  strategy?: string;
  quorum?: number;
  cacheTtlSeconds?: number;
  buckets: Map<number, EnsembleBucket>;
  total: { requests: number; scored: number; degraded: number; quorumMisses: number; errors: number };
}

/** Nearest-rank percentile of unsorted values; null for none. */
export function percentile(values: readonly number[], p: number): number | null {
  return percentiles(values, [p])[0] ?? null;
}

/** Several nearest-rank percentiles of unsorted values, sorting them once; nulls for none. */
export function percentiles(values: readonly number[], ps: readonly number[]): (number | null)[] {
  if (values.length === 0) return ps.map(() => null);
  const sorted = [...values].sort((a, b) => a - b);
  return ps.map(
    (p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number,
  );
}

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
const round = (v: number | null, digits = 2) =>
  v === null ? null : Math.round(v * 10 ** digits) / 10 ** digits;

/**
 * What the local dashboard shows, built from the same EMF records as `/metrics`: per ensemble,
 * traffic and latency percentiles in time buckets; per member, latency and outcome rates side by
 * side; recent predictions (from the API's lines: id, status, degraded, which members did not
 * answer); and batch jobs followed from the trigger's and the batch steps' lines. Bounded: old
 * buckets are dropped, latencies are sampled, lists are capped.
 */
export class DashboardModel {
  private readonly bucketMs: number;
  private readonly windowBuckets: number;
  private readonly summaryBuckets: number;
  private readonly now: () => number;
  private readonly startedAt: number;
  private readonly drift: DriftRule;
  private readonly agreementBuckets: number;
  private readonly ensembles = new Map<string, EnsembleState>();
  private readonly members = new Map<string, Map<number, MemberBucket>>();
  /** Agreement buckets, per `ensemble\0model` (members and shadows) and `ensemble\0canary`. */
  private readonly agreement = new Map<string, Map<number, AgreementBucket>>();
  private readonly canaryAgreement = new Map<string, Map<number, AgreementBucket>>();
  private readonly predictions: PredictionEntry[] = [];
  private readonly jobs = new Map<string, JobEntry>();

  constructor(private readonly options: DashboardModelOptions = {}) {
    this.bucketMs = (options.bucketSeconds ?? 5) * 1000;
    this.windowBuckets = options.windowBuckets ?? 120;
    this.summaryBuckets = Math.max(1, Math.round(((options.summarySeconds ?? 300) * 1000) / this.bucketMs));
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.drift = options.drift ?? DEFAULT_DRIFT_RULE;
    this.agreementBuckets = Math.max(1, Math.round(AGREEMENT_SPAN_MS / this.bucketMs));
  }

  /** Lists the served ensembles and their members, so they show before any traffic. */
  serve(ensembles: readonly ServedEnsemble[]): void {
    for (const e of ensembles) {
      const state = this.ensemble(e.name);
      state.strategy = e.strategy;
      state.quorum = e.quorum;
      state.cacheTtlSeconds = e.cacheTtlSeconds;
      state.canary = e.canary;
      for (const m of e.members) if (!state.members.includes(m)) state.members.push(m);
      // Shadows after the counted members, in the manifest's order.
      for (const m of e.shadow ?? []) {
        if (!state.shadow.includes(m)) state.shadow.push(m);
        if (!state.members.includes(m)) state.members.push(m);
      }
    }
  }

  /** Adds one EMF directive. */
  add(record: EmfRecord): void {
    const values = new Map(record.metrics.map((m) => [m.name, m.values]));
    const { ensemble, model, role, canary } = record.dimensions;
    const bucket = Math.floor(record.timestamp / this.bucketMs);
    if (ensemble && model && role)
      this.addAgreement(this.agreement, `${ensemble}\u0000${model}`, bucket, values, 'Member');
    else if (ensemble && canary)
      this.addAgreement(this.canaryAgreement, `${ensemble}\u0000${canary}`, bucket, values, 'Canary');
    else if (ensemble && model) this.addMember(ensemble, model, bucket, values);
    else if (ensemble && ensemble !== 'unknown') {
      this.addEnsemble(ensemble, bucket, values, record.dimensions.path);
    }
    if (values.has('Requests')) this.addPrediction(record, values);
    if (typeof record.metadata.jobId === 'string') this.addJob(record, values);
  }

  /** The dashboard's data now. */
  data(): DashboardData {
    const now = this.now();
    const last = Math.floor(now / this.bucketMs);
    const first = last - this.windowBuckets + 1;
    this.prune(first);
    // A young stack's charts start near its start (a minute at least), not ten empty minutes back.
    const minBuckets = Math.min(this.windowBuckets, Math.ceil(60_000 / this.bucketMs));
    const shown = Math.max(minBuckets, Math.min(this.windowBuckets, last - this.firstSeen() + 2));
    const indexes = Array.from({ length: shown }, (_, i) => last - shown + 1 + i);
    const recent = indexes.slice(-this.summaryBuckets);
    const views = [...this.ensembles.values()].map((e) => this.ensembleView(e, indexes, recent));
    // In the manifest's order (then as first seen): a page that polls keeps its cards in place.
    const totals = { requests: 0, scored: 0, degraded: 0, quorumMisses: 0, errors: 0 };
    for (const e of this.ensembles.values()) {
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += e.total[k];
    }
    return {
      generatedAt: now,
      startedAt: this.startedAt,
      bucketSeconds: this.bucketMs / 1000,
      summarySeconds: (this.summaryBuckets * this.bucketMs) / 1000,
      drift: { ...this.drift, spanSeconds: (this.agreementBuckets * this.bucketMs) / 1000 },
      times: indexes.map((i) => i * this.bucketMs),
      totals,
      overall: this.summary([...this.ensembles.values()], recent),
      ensembles: views,
      predictions: [...this.predictions],
      jobs: [...this.jobs.values()].sort((a, b) => b.startedAt - a.startedAt),
    };
  }

  /** The bucket of the stack's start or of the oldest record, whichever is earlier. */
  private firstSeen(): number {
    let first = Math.floor(this.startedAt / this.bucketMs);
    for (const e of this.ensembles.values()) for (const i of e.buckets.keys()) first = Math.min(first, i);
    return first;
  }

  private ensemble(name: string): EnsembleState {
    let state = this.ensembles.get(name);
    if (!state) {
      state = {
        name,
        members: [],
        shadow: [],
        buckets: new Map(),
        total: { requests: 0, scored: 0, degraded: 0, quorumMisses: 0, errors: 0 },
      };
      this.ensembles.set(name, state);
    }
    return state;
  }

  private addEnsemble(
    name: string,
    index: number,
    values: Map<string, number[]>,
    cachePath: string | undefined,
  ): void {
    const state = this.ensemble(name);
    let b = state.buckets.get(index);
    if (!b) {
      b = emptyEnsembleBucket();
      state.buckets.set(index, b);
    }
    const total = (n: string) => sum(values.get(n) ?? []);
    if (cachePath !== undefined) {
      const hits = total('CacheHits');
      const looked = hits + total('CacheMisses');
      if (cachePath === 'batch') {
        b.batchCacheRows += looked;
        b.batchCacheHits += hits;
      } else {
        b.cacheLookups += looked;
        b.cacheHits += hits;
      }
      b.cacheErrors += total('CacheErrors');
      return;
    }
    const requests = total('Requests');
    const degraded = values.get('DegradedAnswers') ?? [];
    const misses = total('QuorumMisses');
    const errors = total('ClientErrors') + total('ServerErrors');
    b.requests += requests;
    b.scored += degraded.length;
    b.degraded += sum(degraded);
    b.quorumMisses += misses;
    b.clientErrors += total('ClientErrors');
    b.serverErrors += total('ServerErrors');
    b.replays += total('IdempotentReplays');
    for (const v of values.get('RequestLatency') ?? []) b.latency.add(v);
    state.total.requests += requests;
    state.total.scored += degraded.length;
    state.total.degraded += sum(degraded);
    state.total.quorumMisses += misses;
    state.total.errors += errors;
  }

  private addMember(ensemble: string, model: string, index: number, values: Map<string, number[]>): void {
    const state = this.ensemble(ensemble);
    if (!state.members.includes(model)) state.members.push(model);
    const key = `${ensemble}\u0000${model}`;
    let buckets = this.members.get(key);
    if (!buckets) {
      buckets = new Map();
      this.members.set(key, buckets);
    }
    let b = buckets.get(index);
    if (!b) {
      b = emptyMemberBucket();
      buckets.set(index, b);
    }
    const ok = sum(values.get('MemberOk') ?? []);
    const failed = sum(values.get('MemberFailed') ?? []);
    const timedOut = sum(values.get('MemberTimedOut') ?? []);
    b.calls += (values.get('MemberOk') ?? []).length;
    b.ok += ok;
    b.failed += failed;
    b.timedOut += timedOut;
    b.rows += sum(values.get('MemberRows') ?? []);
    for (const v of values.get('MemberLatency') ?? []) b.latency.add(v);
    for (const v of values.get('MemberBatchLatency') ?? []) b.batchLatency.add(v);
  }

  /** Adds a member's (`Member...`) or a canary's (`Canary...`) agreement counts to its bucket. */
  private addAgreement(
    into: Map<string, Map<number, AgreementBucket>>,
    key: string,
    index: number,
    values: Map<string, number[]>,
    prefix: 'Member' | 'Canary',
  ): void {
    let buckets = into.get(key);
    if (!buckets) {
      buckets = new Map();
      into.set(key, buckets);
    }
    let b = buckets.get(index);
    if (!b) {
      b = { compared: 0, agreed: 0, absDiffSum: 0 };
      buckets.set(index, b);
    }
    b.compared += sum(values.get(`${prefix}RowsCompared`) ?? []);
    b.agreed += sum(values.get(`${prefix}RowsAgreed`) ?? []);
    b.absDiffSum += sum(values.get(`${prefix}AbsDiffSum`) ?? []);
  }

  /** Agreement over the given buckets: rates are ratios of the sums. */
  private agreementView(buckets: Map<number, AgreementBucket> | undefined, recent: number[]): AgreementView {
    const chosen = recent.map((i) => buckets?.get(i)).filter((b) => b !== undefined);
    const compared = sum(chosen.map((b) => b.compared));
    return {
      compared,
      rate: compared ? round(sum(chosen.map((b) => b.agreed)) / compared, 4) : null,
      meanAbsDiff: compared ? round(sum(chosen.map((b) => b.absDiffSum)) / compared, 4) : null,
    };
  }

  /** Agreement over the sliding span up to each bucket: the rate of the sums, as the alarm's math. */
  private agreementSeries(
    buckets: Map<number, AgreementBucket> | undefined,
    indexes: number[],
  ): (number | null)[] {
    return indexes.map((i) => {
      let compared = 0;
      let agreed = 0;
      for (let k = i - this.agreementBuckets + 1; k <= i; k++) {
        const b = buckets?.get(k);
        if (!b) continue;
        compared += b.compared;
        agreed += b.agreed;
      }
      return compared ? round(agreed / compared, 4) : null;
    });
  }

  private addPrediction(record: EmfRecord, values: Map<string, number[]>): void {
    const md = record.metadata;
    const failedMembers = typeof md.failedMembers === 'string' ? md.failedMembers.split(',') : [];
    this.predictions.unshift({
      at: record.timestamp,
      ensemble: record.dimensions.ensemble ?? 'unknown',
      ...(typeof md.predictionId === 'string' ? { id: md.predictionId } : {}),
      ...(typeof md.httpStatus === 'number' ? { httpStatus: md.httpStatus } : {}),
      ...(values.has('RequestLatency') ? { latencyMs: values.get('RequestLatency')?.[0] } : {}),
      ...(typeof md.degraded === 'boolean' ? { degraded: md.degraded } : {}),
      ...(typeof md.replayed === 'boolean' ? { replayed: md.replayed } : {}),
      ...(md.cached === true ? { cached: true } : {}),
      ...(typeof md.errorCode === 'string' ? { errorCode: md.errorCode } : {}),
      failedMembers: failedMembers.map((f) => {
        const at = f.lastIndexOf(':');
        return at < 0 ? { model: f, status: 'failed' } : { model: f.slice(0, at), status: f.slice(at + 1) };
      }),
    });
    this.predictions.length = Math.min(this.predictions.length, this.options.maxPredictions ?? 40);
  }

  private addJob(record: EmfRecord, values: Map<string, number[]>): void {
    const md = record.metadata;
    const jobId = md.jobId as string;
    let job = this.jobs.get(jobId);
    if (!job) {
      job = {
        jobId,
        ensemble: record.dimensions.ensemble ?? 'unknown',
        status: 'RUNNING',
        startedAt: record.timestamp,
        updatedAt: record.timestamp,
        rowsDone: 0,
        rowsOk: 0,
        rowsFailed: 0,
        rowsDegraded: 0,
        rowsCached: 0,
      };
      this.jobs.set(jobId, job);
    }
    job.updatedAt = Math.max(job.updatedAt, record.timestamp);
    if (typeof md.key === 'string') job.key = md.key;
    const first = (n: string) => values.get(n)?.[0];
    const finished =
      values.has('BatchJobsSucceeded') || values.has('BatchJobsFailed') || md.status !== undefined;
    if (values.has('BatchUploadsRejected')) {
      job.status = 'REJECTED';
      job.finishedAt = record.timestamp;
    }
    if (values.has('BatchRowsReceived')) {
      job.rowsTotal = first('BatchRowsReceived');
      const malformed = typeof md.rowsMalformed === 'number' ? md.rowsMalformed : 0;
      job.rowsDone += malformed;
      job.rowsFailed += malformed;
    }
    if (values.has('BatchRowsStored')) {
      job.rowsDone += sum(values.get('BatchRowsStored') ?? []);
      job.rowsOk += typeof md.rowsOk === 'number' ? md.rowsOk : 0;
      job.rowsFailed += typeof md.rowsFailed === 'number' ? md.rowsFailed : 0;
      job.rowsDegraded += typeof md.rowsDegraded === 'number' ? md.rowsDegraded : 0;
      job.rowsCached += typeof md.rowsCached === 'number' ? md.rowsCached : 0;
    }
    if (finished && !values.has('BatchRowsStored')) {
      if (values.has('BatchJobsSucceeded')) job.status = 'SUCCEEDED';
      else if (values.has('BatchJobsFailed')) job.status = 'FAILED';
      job.finishedAt = record.timestamp;
      // The finalize step's counts are exact (a retried batch may have been counted twice above).
      if (values.has('BatchRowsOk')) job.rowsOk = first('BatchRowsOk') ?? job.rowsOk;
      if (values.has('BatchRowsFailed')) job.rowsFailed = first('BatchRowsFailed') ?? job.rowsFailed;
      if (values.has('BatchRowsDegraded')) job.rowsDegraded = first('BatchRowsDegraded') ?? job.rowsDegraded;
      if (typeof md.rowsTotal === 'number') job.rowsTotal = md.rowsTotal;
      if (typeof md.rowsCached === 'number') job.rowsCached = md.rowsCached;
      job.rowsDone = job.rowsTotal ?? job.rowsOk + job.rowsFailed;
      job.rowsPerSecond = first('BatchRowsPerSecond') ?? job.rowsPerSecond;
      job.durationSeconds = first('BatchJobDuration') ?? job.durationSeconds;
    }
    const max = this.options.maxJobs ?? 20;
    if (this.jobs.size > max) {
      const oldest = [...this.jobs.values()].sort((a, b) => a.startedAt - b.startedAt)[0];
      if (oldest) this.jobs.delete(oldest.jobId);
    }
  }

  private prune(first: number): void {
    for (const e of this.ensembles.values())
      for (const i of e.buckets.keys()) if (i < first) e.buckets.delete(i);
    for (const all of [this.members, this.agreement, this.canaryAgreement])
      for (const buckets of all.values()) for (const i of buckets.keys()) if (i < first) buckets.delete(i);
  }

  /** Figures of some ensembles together over the given buckets. */
  private summary(states: readonly EnsembleState[], recent: number[]): EnsembleSummary {
    const buckets = states.flatMap((e) => recent.map((i) => e.buckets.get(i)).filter((b) => b !== undefined));
    const latencies = buckets.flatMap((b) => b.latency.values);
    const field = (k: Exclude<keyof EnsembleBucket, 'latency'>) => sum(buckets.map((b) => b[k]));
    const share = (part: number, whole: number) => (whole ? round(part / whole, 4) : null);
    const requests = field('requests');
    const scored = field('scored');
    // The rate is over the span the stack has been up, when that is shorter than the summary's.
    const since = Math.max(this.bucketMs, this.now() - this.startedAt);
    const seconds = Math.min(recent.length * this.bucketMs, since) / 1000;
    const [p50, p90, p99] = percentiles(latencies, [0.5, 0.9, 0.99]).map((v) => round(v));
    return {
      requests,
      rps: round(requests / seconds, 3) as number,
      p50: p50 ?? null,
      p90: p90 ?? null,
      p99: p99 ?? null,
      scored,
      degradedRate: scored ? round(field('degraded') / scored, 4) : null,
      quorumMisses: field('quorumMisses'),
      clientErrors: field('clientErrors'),
      serverErrors: field('serverErrors'),
      replays: field('replays'),
      cache: {
        lookups: field('cacheLookups'),
        hits: field('cacheHits'),
        hitRate: share(field('cacheHits'), field('cacheLookups')),
        batchRows: field('batchCacheRows'),
        batchHits: field('batchCacheHits'),
        batchHitRate: share(field('batchCacheHits'), field('batchCacheRows')),
        errors: field('cacheErrors'),
      },
    };
  }

  private ensembleView(e: EnsembleState, indexes: number[], recent: number[]): EnsembleView {
    const at = (i: number) => e.buckets.get(i);
    // One sort per bucket for its three percentiles: the page polls every 2 seconds.
    const pcts = indexes.map((i) =>
      percentiles(at(i)?.latency.values ?? [], [0.5, 0.9, 0.99]).map((v) => round(v)),
    );
    return {
      name: e.name,
      ...(e.strategy ? { strategy: e.strategy } : {}),
      ...(e.quorum ? { quorum: e.quorum } : {}),
      ...(e.cacheTtlSeconds ? { cacheTtlSeconds: e.cacheTtlSeconds } : {}),
      ...(e.shadow.length ? { shadow: [...e.shadow] } : {}),
      ...(e.canary
        ? {
            canary: {
              ...e.canary,
              agreement: this.agreementView(
                this.canaryAgreement.get(`${e.name}\u0000${e.canary.ensemble}`),
                recent,
              ),
              series: this.agreementSeries(
                this.canaryAgreement.get(`${e.name}\u0000${e.canary.ensemble}`),
                indexes,
              ),
            },
          }
        : {}),
      totalRequests: e.total.requests,
      recent: this.summary([e], recent),
      series: {
        requests: indexes.map((i) => at(i)?.requests ?? 0),
        cacheHits: indexes.map((i) => at(i)?.cacheHits ?? 0),
        p50: pcts.map((p) => p[0] ?? null),
        p90: pcts.map((p) => p[1] ?? null),
        p99: pcts.map((p) => p[2] ?? null),
        degraded: indexes.map((i) => at(i)?.degraded ?? 0),
        errors: indexes.map((i) => {
          const b = at(i);
          return b ? b.quorumMisses + b.clientErrors + b.serverErrors : 0;
        }),
      },
      members: e.members.map((m) => {
        const shadow = e.shadow.includes(m);
        const buckets = this.agreement.get(`${e.name}\u0000${m}`);
        const view = this.memberView(e.name, m, indexes, recent);
        const agreement = this.agreementView(buckets, recent);
        return {
          ...view,
          series: { ...view.series, agreement: this.agreementSeries(buckets, indexes) },
          shadow,
          // Shadows are judged by their rollout, not paged for: the alarm plugin gives them none.
          agreement: {
            ...agreement,
            drifting:
              !shadow &&
              agreement.rate !== null &&
              agreement.compared >= this.drift.minRows &&
              agreement.rate < this.drift.agreementMin,
          },
        };
      }),
    };
  }

  private memberView(
    ensemble: string,
    model: string,
    indexes: number[],
    recent: number[],
  ): Omit<MemberView, 'shadow' | 'agreement' | 'series'> & {
    series: Omit<MemberView['series'], 'agreement'>;
  } {
    const buckets = this.members.get(`${ensemble}\u0000${model}`);
    const at = (i: number) => buckets?.get(i);
    const field = (k: 'calls' | 'ok' | 'failed' | 'timedOut' | 'rows') =>
      sum(recent.map((i) => at(i)?.[k] ?? 0));
    const calls = field('calls');
    const failed = field('failed');
    const timedOut = field('timedOut');
    const latencies = recent.flatMap((i) => at(i)?.latency.values ?? []);
    const [p50, p99] = percentiles(latencies, [0.5, 0.99]).map((v) => round(v, 3));
    return {
      model,
      calls,
      p50: p50 ?? null,
      p99: p99 ?? null,
      batchP50: round(
        percentile(
          recent.flatMap((i) => at(i)?.batchLatency.values ?? []),
          0.5,
        ),
        3,
      ),
      failed,
      timedOut,
      failedRate: calls ? round(failed / calls, 4) : null,
      timeoutRate: calls ? round(timedOut / calls, 4) : null,
      rows: field('rows'),
      series: {
        p50: indexes.map((i) => round(percentile(at(i)?.latency.values ?? [], 0.5), 3)),
        calls: indexes.map((i) => at(i)?.calls ?? 0),
        failures: indexes.map((i) => (at(i)?.failed ?? 0) + (at(i)?.timedOut ?? 0)),
      },
    };
  }
}
