import { MetricsRecorder, publish } from '../../functions/adapters/metrics.js';
import { MetricsCollector } from '../../local/observability/collector.js';
import { DashboardModel, percentile } from '../../local/observability/dashboard-model.js';
import { type EmfRecord, parseEmf } from '../../local/observability/emf.js';
import { PrometheusExporter, snakeCase } from '../../local/observability/prometheus.js';
import { onEmfLines } from '../../local/observability/stdout-hook.js';
import { captureEmf } from '../support/emf.js';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);

/** An EMF line as Powertools writes it. */
function emf(
  dimensions: Record<string, string>,
  metrics: Record<string, { unit: string; values: number | number[] }>,
  metadata: Record<string, unknown> = {},
  timestamp = NOW,
): string {
  return JSON.stringify({
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [
        {
          Namespace: 'fanout',
          Dimensions: [Object.keys(dimensions)],
          Metrics: Object.entries(metrics).map(([Name, m]) => ({ Name, Unit: m.unit })),
        },
      ],
    },
    ...metadata,
    ...dimensions,
    ...Object.fromEntries(Object.entries(metrics).map(([k, m]) => [k, m.values])),
  });
}

const one = (line: string) => (parseEmf(line) as EmfRecord[])[0] as EmfRecord;

describe('parseEmf', () => {
  it('reads the dimensions, every value of each metric, and the rest as metadata', () => {
    const line = emf(
      { stage: 'local', ensemble: 'wine' },
      { RequestLatency: { unit: 'Milliseconds', values: [3, 4.5] }, Requests: { unit: 'Count', values: 2 } },
      { predictionId: 'p-9', httpStatus: 200 },
    );
    expect(parseEmf(line)).toEqual([
      {
        namespace: 'fanout',
        timestamp: NOW,
        dimensions: { stage: 'local', ensemble: 'wine' },
        metrics: [
          { name: 'RequestLatency', unit: 'Milliseconds', values: [3, 4.5] },
          { name: 'Requests', unit: 'Count', values: [2] },
        ],
        metadata: { predictionId: 'p-9', httpStatus: 200 },
      },
    ]);
  });

  it.each([
    ['not JSON', '{"_aws": nope'],
    ['no directive', '{"_aws":{"Timestamp":1},"x":1}'],
    ['a metric without a value', emf({}, { A: { unit: 'Count', values: [] } })],
    ['a metric whose value is text', emf({}, { A: { unit: 'Count', values: 'one' as never } })],
    [
      'a dimension that is not text',
      '{"_aws":{"CloudWatchMetrics":[{"Namespace":"fanout","Dimensions":[["d"]],"Metrics":[{"Name":"A"}]}]},"d":1,"A":1}',
    ],
    ['a log line', '{"level":"INFO","message":"request"}'],
  ])('refuses %s', (_what, line) => {
    expect(parseEmf(line)).toBeUndefined();
  });
});

describe('the stdout hook', () => {
  it('hands EMF lines to its listeners instead of printing them, and passes every other write through', async () => {
    const printed: string[] = [];
    const stream = {
      write: (chunk: string | Uint8Array, ...rest: unknown[]) => {
        printed.push(String(chunk));
        const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
        callback?.();
        return true;
      },
    };
    const taken: string[] = [];
    const stop = onEmfLines((l) => taken.push(l), stream as never);
    const line = emf({ stage: 'x' }, { Requests: { unit: 'Count', values: 1 } });
    stream.write('a log line\n');
    stream.write(`${line}\n`);
    stream.write(Buffer.from(`${line}\n`));
    stream.write('partial output without a newline');
    await new Promise<void>((done) => stream.write(`${line}\n`, () => done()));
    stop();
    stream.write(`${line}\n`);
    expect(taken).toEqual([line, line, line]);
    expect(printed).toEqual(['a log line\n', 'partial output without a newline', `${line}\n`]);
  });
});

describe('the Prometheus exposition', () => {
  it('names families in snake case with Prometheus suffixes', () => {
    expect(snakeCase('RequestLatency')).toBe('request_latency');
    expect(snakeCase('BatchRowsPerSecond')).toBe('batch_rows_per_second');
  });

  it('turns latencies into histograms in seconds, counts into counters and rates into gauges', async () => {
    const p = new PrometheusExporter();
    p.add(
      one(
        emf(
          { stage: 'local', ensemble: 'wine' },
          { RequestLatency: { unit: 'Milliseconds', values: [4, 40] } },
        ),
      ),
    );
    p.add(one(emf({ stage: 'local', ensemble: 'wine' }, { Requests: { unit: 'Count', values: [1, 1, 1] } })));
    p.add(
      one(
        emf(
          { stage: 'local', ensemble: 'wine' },
          { BatchRowsPerSecond: { unit: 'Count/Second', values: 812.5 } },
        ),
      ),
    );
    const text = await p.text();
    expect(text).toContain('# TYPE fanout_request_latency_seconds histogram');
    expect(text).toContain(
      'fanout_request_latency_seconds_bucket{le="0.005",stage="local",ensemble="wine"} 1',
    );
    expect(text).toContain(
      'fanout_request_latency_seconds_bucket{le="0.05",stage="local",ensemble="wine"} 2',
    );
    expect(text).toContain('fanout_request_latency_seconds_sum{stage="local",ensemble="wine"} 0.044');
    expect(text).toContain('# TYPE fanout_requests_total counter');
    expect(text).toContain('fanout_requests_total{stage="local",ensemble="wine"} 3');
    expect(text).toContain('# TYPE fanout_batch_rows_per_second gauge');
    expect(text).toContain('fanout_batch_rows_per_second{stage="local",ensemble="wine"} 812.5');
    expect(text).toMatch(/# HELP fanout_requests_total Prediction requests answered/);
  });

  it('puts the member outcomes in one family, told apart by status', async () => {
    const p = new PrometheusExporter();
    const dims = { stage: 'local', ensemble: 'wine', model: 'wine-mlp' };
    p.add(
      one(
        emf(dims, {
          MemberOk: { unit: 'Count', values: [1, 0, 1] },
          MemberFailed: { unit: 'Count', values: [0, 1, 0] },
          MemberTimedOut: { unit: 'Count', values: [0, 0, 0] },
        }),
      ),
    );
    const text = await p.text();
    const calls = text.split('\n').filter((l) => l.startsWith('fanout_member_calls_total{'));
    expect(calls).toEqual([
      'fanout_member_calls_total{stage="local",ensemble="wine",model="wine-mlp",status="ok"} 2',
      'fanout_member_calls_total{stage="local",ensemble="wine",model="wine-mlp",status="failed"} 1',
      'fanout_member_calls_total{stage="local",ensemble="wine",model="wine-mlp",status="timeout"} 0',
    ]);
  });

  it('counts result-cache hits, misses and errors by ensemble and path', async () => {
    const p = new PrometheusExporter();
    const metrics = new MetricsRecorder()
      .add('CacheHits', 1, { ensemble: 'wine', path: 'sync' })
      .add('CacheMisses', 0, { ensemble: 'wine', path: 'sync' })
      .add('CacheHits', 180, { ensemble: 'wine', path: 'batch' })
      .add('CacheMisses', 20, { ensemble: 'wine', path: 'batch' })
      .add('CacheErrors', 1, { ensemble: 'wine', path: 'batch' });
    const { records } = await captureEmf(() => publish(metrics, 'local'));
    for (const r of records) p.add(r);
    const text = await p.text();
    const cache = text.split('\n').filter((l) => l.startsWith('fanout_cache_'));
    expect(cache).toEqual([
      'fanout_cache_hits_total{stage="local",ensemble="wine",path="sync"} 1',
      'fanout_cache_hits_total{stage="local",ensemble="wine",path="batch"} 180',
      'fanout_cache_misses_total{stage="local",ensemble="wine",path="sync"} 0',
      'fanout_cache_misses_total{stage="local",ensemble="wine",path="batch"} 20',
      'fanout_cache_errors_total{stage="local",ensemble="wine",path="batch"} 1',
    ]);
    expect(text).toContain('# TYPE fanout_cache_hits_total counter');
  });
});

describe('the collector', () => {
  it('takes the lines the handlers publish and ignores everything else', async () => {
    const collector = new MetricsCollector();
    const m = new MetricsRecorder().add('MemberLatency', 2.5, { ensemble: 'wine', model: 'wine-mlp' });
    const { records } = await captureEmf(() => publish(m, 'local'));
    expect(records).toHaveLength(1);
    const line = emf(
      { stage: 'local', ensemble: 'wine', model: 'wine-mlp' },
      { MemberLatency: { unit: 'Milliseconds', values: 2.5 } },
    );
    expect(collector.ingest(line)).toBe(true);
    expect(collector.ingest('{"level":"INFO","message":"hello"}')).toBe(false);
    expect(collector.ingest('{"_aws": broken')).toBe(false);
    expect(collector.ingest(line.replace('"fanout"', '"other"'))).toBe(false);
    expect(collector.counts).toEqual({ lines: 1, rejected: 1 });
    expect(await collector.metricsText()).toContain(
      'fanout_member_latency_seconds_count{stage="local",ensemble="wine",model="wine-mlp"} 1',
    );
  });
});

describe('the dashboard model', () => {
  let now = NOW;
  const model = () => {
    now = NOW;
    return new DashboardModel({ now: () => now, bucketSeconds: 5, summarySeconds: 60 });
  };

  it('computes percentiles by nearest rank', () => {
    expect(percentile([], 0.5)).toBeNull();
    expect(percentile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(
      percentile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        0.99,
      ),
    ).toBe(99);
  });

  it("shows served ensembles and their members before any traffic, then each one's traffic, latency and member rates", () => {
    const d = model();
    d.serve([{ name: 'wine', members: ['wine-logreg', 'wine-mlp'], strategy: 'weighted-mean', quorum: 2 }]);
    expect(d.data().ensembles.map((e) => [e.name, e.totalRequests, e.members.map((m) => m.model)])).toEqual([
      ['wine', 0, ['wine-logreg', 'wine-mlp']],
    ]);
    for (let i = 10; i >= 1; i--) {
      const at = NOW - 1000 * i;
      d.add(
        one(
          emf(
            { stage: 'l', ensemble: 'wine' },
            {
              Requests: { unit: 'Count', values: 1 },
              RequestLatency: { unit: 'Milliseconds', values: i * 10 },
              DegradedAnswers: { unit: 'Count', values: i <= 2 ? 1 : 0 },
              QuorumMisses: { unit: 'Count', values: 0 },
            },
            {
              predictionId: `p${i}`,
              httpStatus: 200,
              degraded: i <= 2,
              ...(i <= 2 ? { failedMembers: 'wine-mlp:timeout' } : {}),
            },
            at,
          ),
        ),
      );
      d.add(
        one(
          emf(
            { stage: 'l', ensemble: 'wine', model: 'wine-mlp' },
            {
              MemberOk: { unit: 'Count', values: i <= 2 ? 0 : 1 },
              MemberFailed: { unit: 'Count', values: 0 },
              MemberTimedOut: { unit: 'Count', values: i <= 2 ? 1 : 0 },
              ...(i <= 2 ? {} : { MemberLatency: { unit: 'Milliseconds', values: i } }),
            },
            {},
            at,
          ),
        ),
      );
    }
    const data = d.data();
    const wine = data.ensembles[0];
    expect(wine?.recent).toMatchObject({
      requests: 10,
      p50: 50,
      p99: 100,
      scored: 10,
      degradedRate: 0.2,
      quorumMisses: 0,
    });
    expect(wine?.strategy).toBe('weighted-mean');
    expect(sumOf(wine?.series.requests ?? [])).toBe(10);
    const mlp = wine?.members.find((m) => m.model === 'wine-mlp');
    expect(mlp).toMatchObject({ calls: 10, timedOut: 2, timeoutRate: 0.2, failedRate: 0, p50: 6 });
    expect(wine?.members.find((m) => m.model === 'wine-logreg')).toMatchObject({ calls: 0, p50: null });
    expect(data.overall.requests).toBe(10);
    expect(data.predictions).toHaveLength(10);
    expect(data.predictions[0]).toMatchObject({
      id: 'p1',
      degraded: true,
      failedMembers: [{ model: 'wine-mlp', status: 'timeout' }],
    });
  });

  it("shows an ensemble's result cache: hit rates per request and per batch row, hits over time, errors", () => {
    const d = model();
    d.serve([
      { name: 'wine', members: ['wine-mlp'], cacheTtlSeconds: 3600 },
      { name: 'plain', members: ['m'] },
    ]);
    const sync = { stage: 'l', ensemble: 'wine', path: 'sync' };
    d.add(one(emf({ stage: 'l', ensemble: 'wine' }, { Requests: { unit: 'Count', values: [1, 1, 1, 1] } })));
    d.add(
      one(
        emf(sync, {
          CacheHits: { unit: 'Count', values: [1, 1, 1, 0] },
          CacheMisses: { unit: 'Count', values: [0, 0, 0, 1] },
          CacheErrors: { unit: 'Count', values: [1] },
        }),
      ),
    );
    d.add(
      one(
        emf(
          { ...sync, path: 'batch' },
          { CacheHits: { unit: 'Count', values: 150 }, CacheMisses: { unit: 'Count', values: 50 } },
        ),
      ),
    );
    const { ensembles } = d.data();
    const wine = ensembles.find((e) => e.name === 'wine');
    expect(wine?.cacheTtlSeconds).toBe(3600);
    expect(wine?.recent.cache).toEqual({
      lookups: 4,
      hits: 3,
      hitRate: 0.75,
      batchRows: 200,
      batchHits: 150,
      batchHitRate: 0.75,
      errors: 1,
    });
    expect(wine?.series.cacheHits.at(-1)).toBe(3);
    expect(wine?.series.requests.at(-1)).toBe(4);
    // Cache lines are not requests: the totals count the API's lines only.
    expect(wine?.totalRequests).toBe(4);
    const plain = ensembles.find((e) => e.name === 'plain');
    expect(plain?.cacheTtlSeconds).toBeUndefined();
    expect(plain?.recent.cache).toMatchObject({ lookups: 0, hitRate: null, batchHitRate: null });
  });

  it("shows each member's agreement with the answer, shadows marked, and a canary's comparison", () => {
    const d = model();
    d.serve([
      {
        name: 'live',
        members: ['a', 'b'],
        shadow: ['s'],
        canary: { ensemble: 'next', percent: 10 },
      },
    ]);
    const agreement = (m: string, role: string, compared: number, agreed: number, diff: number) =>
      one(
        emf(
          { stage: 'l', ensemble: 'live', model: m, role },
          {
            MemberRowsCompared: { unit: 'Count', values: compared },
            MemberRowsAgreed: { unit: 'Count', values: agreed },
            MemberAbsDiffSum: { unit: 'Count', values: diff },
          },
        ),
      );
    // Two requests: a always agrees; s agrees on 3 of 4 rows, 0.2 off on average.
    d.add(agreement('a', 'counted', 2, 2, 0.02));
    d.add(agreement('a', 'counted', 2, 2, 0.02));
    d.add(agreement('s', 'shadow', 2, 1, 0.5));
    d.add(agreement('s', 'shadow', 2, 2, 0.3));
    d.add(
      one(
        emf(
          { stage: 'l', ensemble: 'live', canary: 'next' },
          {
            CanaryRowsCompared: { unit: 'Count', values: [2, 2] },
            CanaryRowsAgreed: { unit: 'Count', values: [2, 1] },
            CanaryAbsDiffSum: { unit: 'Count', values: [0.1, 0.3] },
          },
        ),
      ),
    );
    const live = d.data().ensembles.find((e) => e.name === 'live');
    expect(live?.members.map((m) => [m.model, m.shadow, m.agreement])).toEqual([
      ['a', false, { compared: 4, rate: 1, meanAbsDiff: 0.01, drifting: false }],
      ['b', false, { compared: 0, rate: null, meanAbsDiff: null, drifting: false }],
      ['s', true, { compared: 4, rate: 0.75, meanAbsDiff: 0.2, drifting: false }],
    ]);
    expect(live?.shadow).toEqual(['s']);
    expect(live?.canary).toEqual({
      ensemble: 'next',
      percent: 10,
      agreement: { compared: 4, rate: 0.75, meanAbsDiff: 0.1 },
      series: expect.any(Array),
    });
    // Over time too, as the members are: the canary's comparison in the last point's minute.
    expect(live?.canary?.series.at(-1)).toBe(0.75);
    expect(live?.canary?.series).toHaveLength(live?.series.requests.length ?? -1);
    // Agreement lines are neither member calls nor requests.
    expect(live?.members.find((m) => m.model === 'a')?.calls).toBe(0);
    expect(live?.totalRequests).toBe(0);
  });

  it("marks a counted member under the drift alarm's rule, and draws each member's agreement over a sliding minute", () => {
    now = NOW;
    const d = new DashboardModel({
      now: () => now,
      bucketSeconds: 5,
      summarySeconds: 300,
      drift: { agreementMin: 0.9, minRows: 10, periodSeconds: 3600 },
    });
    d.serve([{ name: 'live', members: ['steady', 'drifts', 'few'], shadow: ['s'] }]);
    const rows = (m: string, compared: number, agreed: number, at: number, role = 'counted') =>
      d.add(
        one(
          emf(
            { stage: 'l', ensemble: 'live', model: m, role },
            {
              MemberRowsCompared: { unit: 'Count', values: compared },
              MemberRowsAgreed: { unit: 'Count', values: agreed },
              MemberAbsDiffSum: { unit: 'Count', values: 0 },
            },
            {},
            at,
          ),
        ),
      );
    rows('steady', 20, 20, NOW);
    rows('drifts', 10, 9, NOW);
    rows('drifts', 10, 5, NOW + 30_000);
    // Far under the rule, but on fewer rows than it needs; and a shadow, which is never paged for.
    rows('few', 5, 0, NOW + 30_000);
    rows('s', 20, 0, NOW + 30_000, 'shadow');
    now = NOW + 30_000;
    let data = d.data();
    expect(data.drift).toEqual({ agreementMin: 0.9, minRows: 10, periodSeconds: 3600, spanSeconds: 60 });
    const member = (name: string) => data.ensembles[0]?.members.find((m) => m.model === name);
    expect(member('steady')?.agreement).toMatchObject({ rate: 1, drifting: false });
    expect(member('drifts')?.agreement).toMatchObject({ compared: 20, rate: 0.7, drifting: true });
    expect(member('few')?.agreement).toMatchObject({ compared: 5, rate: 0, drifting: false });
    expect(member('s')?.agreement).toMatchObject({ compared: 20, rate: 0, drifting: false });

    // Each point is the share over the minute up to its bucket: 9 of 10, then 14 of 20.
    const at = (t: number) => data.times.indexOf(Math.floor(t / 5000) * 5000);
    const series = member('drifts')?.series.agreement ?? [];
    expect(series[at(NOW) - 1]).toBeNull();
    expect(series[at(NOW)]).toBe(0.9);
    expect(series[at(NOW + 25_000)]).toBe(0.9);
    expect(series[at(NOW + 30_000)]).toBe(0.7);
    expect(member('few')?.series.agreement[at(NOW + 30_000)]).toBe(0);

    // A minute on, the first rows have left the point's span (not yet the summary's).
    now = NOW + 90_000;
    data = d.data();
    const later = member('drifts')?.series.agreement ?? [];
    expect(later[at(NOW + 55_000)]).toBe(0.7);
    expect(later[at(NOW + 60_000)]).toBe(0.5);
    expect(later[at(NOW + 85_000)]).toBe(0.5);
    expect(later[at(NOW + 90_000)]).toBeNull();
    expect(member('drifts')?.agreement).toMatchObject({ rate: 0.7, drifting: true });
  });

  it('marks a prediction answered from the cache, and counts the rows a job took from it', () => {
    const d = model();
    d.add(
      one(
        emf(
          { stage: 'l', ensemble: 'wine' },
          { Requests: { unit: 'Count', values: 1 }, RequestLatency: { unit: 'Milliseconds', values: 3 } },
          { predictionId: 'p-1', httpStatus: 200, degraded: false, replayed: false, cached: true },
        ),
      ),
    );
    expect(d.data().predictions[0]).toMatchObject({ id: 'p-1', cached: true });
    const job = { jobId: 'job-c' };
    const dims = { stage: 'l', ensemble: 'wine' };
    d.add(one(emf(dims, { BatchJobsStarted: { unit: 'Count', values: 1 } }, job)));
    d.add(
      one(
        emf(
          dims,
          { BatchRowsStored: { unit: 'Count', values: 250 } },
          { ...job, rowsOk: 250, rowsFailed: 0, rowsDegraded: 0, rowsCached: 200 },
        ),
      ),
    );
    expect(d.data().jobs[0]?.rowsCached).toBe(200);
    d.add(
      one(
        emf(
          dims,
          { BatchJobsSucceeded: { unit: 'Count', values: 1 } },
          { ...job, status: 'SUCCEEDED', rowsTotal: 250, rowsCached: 190 },
        ),
      ),
    );
    // The finalize step's count is exact (a retried batch may have been counted twice).
    expect(d.data().jobs[0]).toMatchObject({ status: 'SUCCEEDED', rowsCached: 190 });
  });

  it('follows a batch job from the upload to the end, with exact counts at the end', () => {
    const d = model();
    const job = { jobId: 'job-1' };
    const dims = { stage: 'l', ensemble: 'wine' };
    d.add(
      one(
        emf(
          dims,
          { BatchJobsStarted: { unit: 'Count', values: 1 } },
          { ...job, key: 'incoming/wine/a.csv', result: 'started' },
        ),
      ),
    );
    expect(d.data().jobs[0]).toMatchObject({
      jobId: 'job-1',
      status: 'RUNNING',
      key: 'incoming/wine/a.csv',
      rowsDone: 0,
    });
    d.add(
      one(
        emf(
          dims,
          { BatchRowsReceived: { unit: 'Count', values: 500 } },
          { ...job, rowsTotal: 500, rowsMalformed: 2 },
        ),
      ),
    );
    d.add(
      one(
        emf(
          dims,
          { BatchRowsStored: { unit: 'Count', values: 250 } },
          { ...job, rowsOk: 250, rowsFailed: 0, rowsDegraded: 10 },
        ),
      ),
    );
    expect(d.data().jobs[0]).toMatchObject({
      status: 'RUNNING',
      rowsTotal: 500,
      rowsDone: 252,
      rowsOk: 250,
      rowsFailed: 2,
      rowsDegraded: 10,
    });
    d.add(
      one(
        emf(
          dims,
          {
            BatchJobsSucceeded: { unit: 'Count', values: 1 },
            BatchRowsOk: { unit: 'Count', values: 498 },
            BatchRowsFailed: { unit: 'Count', values: 2 },
            BatchRowsDegraded: { unit: 'Count', values: 10 },
            BatchJobDuration: { unit: 'Seconds', values: 2 },
            BatchRowsPerSecond: { unit: 'Count/Second', values: 250 },
          },
          { ...job, status: 'SUCCEEDED', rowsTotal: 500 },
        ),
      ),
    );
    expect(d.data().jobs[0]).toMatchObject({
      status: 'SUCCEEDED',
      rowsDone: 500,
      rowsOk: 498,
      rowsFailed: 2,
      rowsPerSecond: 250,
      durationSeconds: 2,
    });
  });

  it('marks a rejected upload, and keeps only the most recent jobs and predictions', () => {
    const d = new DashboardModel({ now: () => NOW, maxJobs: 3, maxPredictions: 2 });
    for (let i = 0; i < 5; i++) {
      d.add(
        one(
          emf(
            { stage: 'l', ensemble: 'unknown' },
            { BatchUploadsRejected: { unit: 'Count', values: 1 } },
            { jobId: `job-${i}` },
            NOW + i,
          ),
        ),
      );
      d.add(
        one(
          emf(
            { stage: 'l', ensemble: 'unknown' },
            { Requests: { unit: 'Count', values: 1 } },
            { httpStatus: 404, errorCode: 'not_found' },
            NOW + i,
          ),
        ),
      );
    }
    const data = d.data();
    expect(data.jobs.map((j) => [j.jobId, j.status])).toEqual([
      ['job-4', 'REJECTED'],
      ['job-3', 'REJECTED'],
      ['job-2', 'REJECTED'],
    ]);
    expect(data.predictions).toHaveLength(2);
    // A client's unknown ensemble is not an ensemble of the dashboard.
    expect(data.ensembles).toEqual([]);
  });

  it('drops buckets older than its window, so memory stays flat', () => {
    const d = new DashboardModel({ now: () => now, bucketSeconds: 5, windowBuckets: 12 });
    now = NOW;
    d.add(one(emf({ stage: 'l', ensemble: 'wine' }, { Requests: { unit: 'Count', values: 1 } }, {}, NOW)));
    expect(d.data().ensembles[0]?.totalRequests).toBe(1);
    now = NOW + 120_000;
    const later = d.data();
    expect(later.times).toHaveLength(12);
    expect(sumOf(later.ensembles[0]?.series.requests ?? [])).toBe(0);
    expect(later.ensembles[0]?.totalRequests).toBe(1);
  });
});

function sumOf(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
