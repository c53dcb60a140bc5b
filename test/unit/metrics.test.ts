import { readFileSync } from 'node:fs';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import {
  fanoutMetrics,
  METRICS,
  type MetricSpec,
  MetricsRecorder,
  metricsOf,
  NAMESPACE,
  publish,
} from '../../functions/adapters/metrics.js';
import { captureEmf, summarise } from '../support/emf.js';

const context = (id = 'req') => ({ awsRequestId: id, functionName: 'fanout-test' }) as Context;

describe('the metrics catalog', () => {
  const entries = Object.entries(METRICS as Record<string, MetricSpec>);

  it('gives every metric a CloudWatch unit, dimensions and a description', () => {
    const units = new Set<string>(Object.values(MetricUnit));
    for (const [name, spec] of entries) {
      expect([name, units.has(spec.unit)]).toEqual([name, true]);
      expect([name, spec.dimensions.length > 0]).toEqual([name, true]);
      expect([name, spec.description.length > 20]).toEqual([name, true]);
      expect(name).toMatch(/^[A-Z][A-Za-z]{2,60}$/);
    }
  });

  it('uses only low-cardinality dimensions: never a feature, a row value or an id', () => {
    // `role` (counted|shadow) and `canary` (an ensemble's name) are bounded by the manifest, too.
    const allowed = new Set(['ensemble', 'model', 'code', 'function', 'path', 'role', 'canary']);
    for (const [name, spec] of entries) {
      expect([name, spec.dimensions.filter((d) => !allowed.has(d))]).toEqual([name, []]);
    }
  });

  it("is the README's table of metrics, row for row (names, units and dimensions)", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const start = readme.indexOf('<!-- metrics-table');
    expect(start).toBeGreaterThan(0);
    const rows = readme
      .slice(start)
      .split('\n')
      .slice(3)
      .filter((l, i, all) => l.startsWith('|') && all.slice(0, i).every((p) => p.startsWith('|')))
      .map((l) => l.split('|').map((c) => c.trim()));
    const documented = rows.map(([, name, unit, dims]) => [
      name?.replace(/`/g, ''),
      unit,
      (dims ?? '').split(',').map((d) => d.trim()),
    ]);
    expect(documented).toEqual(entries.map(([name, spec]) => [name, spec.unit, [...spec.dimensions]]));
  });

  it('names no dimension like a metric (one EMF line holds both as keys)', () => {
    const dims = new Set(entries.flatMap(([, s]) => s.dimensions));
    for (const [name] of entries) expect(dims.has(name)).toBe(false);
  });
});

describe('publish', () => {
  it('writes one EMF line per set of dimension values, in namespace fanout with the stage', async () => {
    const m = new MetricsRecorder({ predictionId: 'p-1' })
      .add('Requests', 1, { ensemble: 'breast-cancer' })
      .add('RequestLatency', 12.5, { ensemble: 'breast-cancer' })
      .add('MemberLatency', 2.25, { ensemble: 'breast-cancer', model: 'bc-logreg' })
      .add('MemberLatency', 3.5, { ensemble: 'breast-cancer', model: 'bc-mlp' })
      .add('MemberLatency', 4, { ensemble: 'breast-cancer', model: 'bc-mlp' });
    const { records } = await captureEmf(() => publish(m, 'prod'));
    expect(records.map((r) => r.namespace)).toEqual([NAMESPACE, NAMESPACE, NAMESPACE]);
    expect(records.map(summarise)).toEqual([
      {
        dimensions: { stage: 'prod', ensemble: 'breast-cancer' },
        metrics: {
          Requests: { unit: 'Count', values: [1] },
          RequestLatency: { unit: 'Milliseconds', values: [12.5] },
        },
        metadata: { predictionId: 'p-1' },
      },
      {
        dimensions: { stage: 'prod', ensemble: 'breast-cancer', model: 'bc-logreg' },
        metrics: { MemberLatency: { unit: 'Milliseconds', values: [2.25] } },
        metadata: { predictionId: 'p-1' },
      },
      {
        dimensions: { stage: 'prod', ensemble: 'breast-cancer', model: 'bc-mlp' },
        metrics: { MemberLatency: { unit: 'Milliseconds', values: [3.5, 4] } },
        metadata: { predictionId: 'p-1' },
      },
    ]);
  });

  it('writes each entry of an invocation as its own lines, with its own metadata', async () => {
    const m = new MetricsRecorder();
    m.entry({ jobId: 'job-a' }).add('BatchJobsStarted', 1, { ensemble: 'wine' });
    m.entry({ jobId: 'job-b' }).add('BatchJobsStarted', 1, { ensemble: 'wine' });
    const { records } = await captureEmf(() => publish(m, 'dev'));
    expect(records.map((r) => [r.metadata.jobId, r.metrics[0]?.values])).toEqual([
      ['job-a', [1]],
      ['job-b', [1]],
    ]);
  });

  it('writes nothing when nothing was recorded, and skips values that are not numbers', async () => {
    const m = new MetricsRecorder().add('Requests', Number.NaN, { ensemble: 'wine' });
    const { records } = await captureEmf(() => publish(m, 'dev'));
    expect(records).toEqual([]);
  });

  it('splits a metric with more than 100 values over several lines, each with its dimensions', async () => {
    const m = new MetricsRecorder();
    for (let i = 0; i < 250; i++) m.add('MemberRows', i, { ensemble: 'wine', model: 'wine-mlp' });
    const { records } = await captureEmf(() => publish(m, 'dev'));
    expect(records.map((r) => [r.dimensions, r.metrics[0]?.values.length])).toEqual([
      [{ stage: 'dev', ensemble: 'wine', model: 'wine-mlp' }, 100],
      [{ stage: 'dev', ensemble: 'wine', model: 'wine-mlp' }, 100],
      [{ stage: 'dev', ensemble: 'wine', model: 'wine-mlp' }, 50],
    ]);
    expect(records.flatMap((r) => r.metrics[0]?.values)).toEqual(Array.from({ length: 250 }, (_, i) => i));
  });

  it('never throws: a line CloudWatch would refuse is dropped and logged', async () => {
    // A metadata key equal to a metric name is a collision Powertools refuses.
    const m = new MetricsRecorder({ Requests: 'x' }).add('Requests', 1, { ensemble: 'wine' });
    const { records } = await captureEmf(() => expect(() => publish(m, 'dev')).not.toThrow());
    expect(records).toEqual([]);
    // The shared Powertools instance is clean for the next invocation.
    const next = await captureEmf(() =>
      publish(new MetricsRecorder().add('Requests', 1, { ensemble: 'wine' })),
    );
    expect(next.records.map(summarise)[0]?.metadata).toEqual({});
  });
});

describe('the middleware', () => {
  it('gives each invocation its own recorder, so concurrent invocations never mix their dimensions', async () => {
    const handler = middy(async (event: { ensemble: string; wait: number }, ctx: Context) => {
      metricsOf(ctx).setMetadata({ predictionId: `id-${event.ensemble}` });
      await new Promise((r) => setTimeout(r, event.wait));
      metricsOf(ctx).add('Requests', 1, { ensemble: event.ensemble });
      return 'ok';
    }).use(fanoutMetrics('api'));
    const { records } = await captureEmf(() =>
      Promise.all([
        handler({ ensemble: 'slow', wait: 30 }, context('a')),
        handler({ ensemble: 'fast', wait: 1 }, context('b')),
      ]),
    );
    const requests = records.filter((r) => r.metrics.some((m) => m.name === 'Requests'));
    expect(requests.map((r) => [r.dimensions.ensemble, r.metadata.predictionId])).toEqual([
      ['fast', 'id-fast'],
      ['slow', 'id-slow'],
    ]);
  });

  it('counts a cold start on the first invocation only, and publishes when the handler throws', async () => {
    const handler = middy(async (event: { fail: boolean }, ctx: Context) => {
      metricsOf(ctx).add('MemberFailed', event.fail ? 1 : 0, { ensemble: 'wine', model: 'wine-mlp' });
      if (event.fail) throw new Error('boom');
    }).use(fanoutMetrics('runner'));
    const first = await captureEmf(() => handler({ fail: false }, context('1')));
    const second = await captureEmf(() =>
      handler({ fail: true }, context('2')).catch((e: Error) => e.message),
    );
    expect(second.result).toBe('boom');
    const cold = (records: typeof first.records) =>
      records.filter((r) => r.metrics.some((m) => m.name === 'ColdStarts')).map((r) => r.dimensions.function);
    expect(cold(first.records)).toEqual(['runner']);
    expect(cold(second.records)).toEqual([]);
    const failed = second.records.find((r) => r.dimensions.model === 'wine-mlp');
    expect(failed?.metrics).toEqual([{ name: 'MemberFailed', unit: 'Count', values: [1] }]);
  });

  it('gives a handler called without the middleware a recorder that goes nowhere', async () => {
    const { records } = await captureEmf(() => metricsOf(context()).add('Requests', 1, { ensemble: 'wine' }));
    expect(records).toEqual([]);
  });
});
