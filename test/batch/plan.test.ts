import { readFileSync } from 'node:fs';
import { planBatch } from '../../functions/batch-plan/plan.js';
import { rowCacheKeys } from '../../functions/core/cache-key.js';
import { ValidationError } from '../../functions/core/errors.js';
import { type EnsembleSpec, type Manifest, parseManifest } from '../../functions/core/manifest.js';
import type { CacheCounts } from '../../functions/core/result-cache.js';
import { MemoryResultCache } from '../support/memory-stores.js';
import { MANIFEST_PATH, manifest } from './fixtures.js';

const NOW = new Date('2026-05-01T00:00:00.000Z');

/** The bundled manifest with the result cache on for its first ensemble. */
function cachedManifest(): Manifest {
  const doc = JSON.parse(readFileSync(MANIFEST_PATH, 'utf8'));
  for (const e of doc.ensembles) e.cache = e === doc.ensembles[0] ? { ttlSeconds: 100 } : undefined;
  return parseManifest(doc, MANIFEST_PATH);
}

const m = cachedManifest();
const target = [...m.ensembles.values()][0] as EnsembleSpec;
const width = target.features.length;
const row = (v: number) => new Array(width).fill(v);
const members = target.members.map((model) => ({ model, timeoutSeconds: 5 }));
const items = (values: number[]) => values.map((v, i) => ({ line: i + 2, id: `r${i}`, features: row(v) }));
const prediction = (p: number) => ({
  label: target.labels[0] as string,
  probabilities: { x: p },
  uncertainty: { agreement: 1, margin: p, entropy: 0.5, spread: 0 },
});

/** Stores a fresh entry for the row of value `v`. */
async function cacheRow(cache: MemoryResultCache, v: number, p: number, at = NOW) {
  const [key] = rowCacheKeys(target, m.models, [row(v)]);
  await cache.put([
    {
      key: key as string,
      ensemble: target.name,
      prediction: prediction(p),
      members: target.members.map((model) => ({ model, probabilities: target.labels.map(() => p) })),
      cachedAt: at.toISOString(),
      expiresAt: at.getTime() / 1000 + 100,
    },
  ]);
}

describe('planning a batch', () => {
  it('scores a row repeated within the batch once and points every copy at it', async () => {
    const plan = await planBatch(
      { jobId: 'j', ensemble: target.name, members, items: items([1, 2, 1, 3, 2, 1]) },
      { manifest: manifest() },
    );
    expect(plan.instances).toEqual([row(1), row(2), row(3)]);
    expect(plan.scored).toBe(3);
    expect(plan.source).toEqual([0, 1, 0, 2, 1, 0]);
    expect(plan.cached).toEqual([]);
    expect(plan.lines).toEqual([2, 3, 4, 5, 6, 7]);
    expect(plan.ids).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
    expect(plan.members).toEqual(members);
  });

  it('takes fresh cached rows from the cache and leaves only the others to score', async () => {
    const cache = new MemoryResultCache();
    await cacheRow(cache, 2, 0.2);
    await cacheRow(cache, 3, 0.3, new Date(NOW.getTime() - 200_000)); // expired
    const counts: CacheCounts[] = [];
    const plan = await planBatch(
      { jobId: 'j', ensemble: target.name, members, items: items([1, 2, 3, 2]) },
      { manifest: m, cache, now: () => NOW, onCacheResult: (c) => counts.push(c) },
    );
    expect(plan.instances).toEqual([row(1), row(3)]);
    expect(plan.source).toEqual([0, -1, 1, -1]);
    expect(plan.cached).toEqual([prediction(0.2)]);
    expect(cache.reads).toHaveLength(1);
    expect(cache.reads[0]).toHaveLength(3);
    expect(counts).toEqual([{ ensemble: target.name, path: 'batch', hits: 1, misses: 2, errors: 0 }]);
  });

  it('plans as if nothing were cached when the cache cannot be read, with a warning', async () => {
    const cache = new MemoryResultCache();
    await cacheRow(cache, 2, 0.2);
    cache.failReads = new Error('throttled');
    const warnings: unknown[] = [];
    const plan = await planBatch(
      { jobId: 'j', ensemble: target.name, members, items: items([2, 2]) },
      { manifest: m, cache, now: () => NOW, warn: (msg, data) => warnings.push([msg, data.reason]) },
    );
    expect(plan.source).toEqual([0, 0]);
    expect(warnings).toEqual([['result cache read failed; scoring the batch uncached', 'throttled']]);
  });

  it('rejects a malformed event, naming the field', async () => {
    await expect(
      planBatch({ jobId: 'j', ensemble: target.name, members, items: [] }, { manifest: m }),
    ).rejects.toThrow(new ValidationError('batch plan event: "items" must be a non-empty array of rows'));
    await expect(
      planBatch(
        {
          jobId: 'j',
          ensemble: target.name,
          members,
          items: [{ line: 2, id: 'a', features: ['x'] }] as never,
        },
        { manifest: m },
      ),
    ).rejects.toThrow('items[0] must be {line, id, features: number[]}');
  });
});
