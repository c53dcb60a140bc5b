import { addCacheCounts, cacheObserver } from '../../functions/adapters/cache-metrics.js';
import { METRICS, MetricsRecorder, publish } from '../../functions/adapters/metrics.js';
import type { CacheCounts } from '../../functions/core/result-cache.js';
import { captureEmf, summarise } from '../support/emf.js';

/** What recording `counts` writes, as EMF lines. */
async function written(...counts: CacheCounts[]) {
  const metrics = new MetricsRecorder({ jobId: 'job-1' });
  const observe = cacheObserver(metrics);
  for (const c of counts) observe(c);
  const { records } = await captureEmf(() => publish(metrics, 'dev'));
  return records.map(summarise);
}

describe('the result cache metrics', () => {
  it('are counts by ensemble and path in the catalog', () => {
    for (const name of ['CacheHits', 'CacheMisses', 'CacheErrors'] as const) {
      expect([name, METRICS[name].unit, [...METRICS[name].dimensions]]).toEqual([
        name,
        'Count',
        ['ensemble', 'path'],
      ]);
    }
  });

  it('record a synchronous lookup as one hit or one miss, zeros included, so the average is the hit rate', async () => {
    const lines = await written(
      { ensemble: 'wine', path: 'sync', hits: 1, misses: 0, errors: 0 },
      { ensemble: 'wine', path: 'sync', hits: 0, misses: 1, errors: 0 },
    );
    expect(lines).toEqual([
      {
        dimensions: { stage: 'dev', ensemble: 'wine', path: 'sync' },
        metrics: {
          CacheHits: { unit: 'Count', values: [1, 0] },
          CacheMisses: { unit: 'Count', values: [0, 1] },
        },
        metadata: { jobId: 'job-1' },
      },
    ]);
  });

  it("record a batch lookup's distinct rows found and not found, apart from the synchronous path", async () => {
    const lines = await written(
      { ensemble: 'wine', path: 'batch', hits: 180, misses: 20, errors: 0 },
      { ensemble: 'wine', path: 'sync', hits: 0, misses: 1, errors: 0 },
    );
    expect(
      lines.map((l) => [l.dimensions.path, l.metrics.CacheHits?.values, l.metrics.CacheMisses?.values]),
    ).toEqual([
      ['batch', [180], [20]],
      ['sync', [0], [1]],
    ]);
  });

  it('record a failed read as an error beside its miss, and a failed write as an error alone', async () => {
    const lines = await written(
      { ensemble: 'wine', path: 'sync', hits: 0, misses: 1, errors: 1 },
      { ensemble: 'wine', path: 'batch', hits: 0, misses: 0, errors: 1 },
    );
    expect(lines.map((l) => [l.dimensions.path, l.metrics])).toEqual([
      [
        'sync',
        {
          CacheHits: { unit: 'Count', values: [0] },
          CacheMisses: { unit: 'Count', values: [1] },
          CacheErrors: { unit: 'Count', values: [1] },
        },
      ],
      ['batch', { CacheErrors: { unit: 'Count', values: [1] } }],
    ]);
  });

  it('write nothing for counts that say nothing', async () => {
    const metrics = new MetricsRecorder();
    addCacheCounts(metrics, { ensemble: 'wine', path: 'sync', hits: 0, misses: 0, errors: 0 });
    expect(metrics.lines()).toEqual([]);
  });
});
