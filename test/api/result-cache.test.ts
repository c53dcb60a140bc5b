import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { MetricsRecorder, publish } from '../../functions/adapters/metrics.js';
import { handleHttp } from '../../functions/api/handler.js';
import type { ApiDeps } from '../../functions/api/routes.js';
import type { PredictionRecord } from '../../functions/core/combine.js';
import { loadManifest, type Manifest, parseManifest } from '../../functions/core/manifest.js';
import type { InferenceExecutor, InferenceInput } from '../../functions/core/ports.js';
import type { CacheCounts } from '../../functions/core/result-cache.js';
import { storeResult } from '../../functions/ensemble/store-result.js';
import { captureEmf, summarise } from '../support/emf.js';
import { httpEvent } from '../support/http-event.js';
import { MemoryJobStore, MemoryPredictionStore, MemoryResultCache } from '../support/memory-stores.js';

const MANIFEST = resolve('models/manifest.json');
const bundled = loadManifest(MANIFEST);
// The ensemble under test is the first bundled one; a copy of the manifest turns its cache on.
const CACHED = [...bundled.ensembles.keys()][0] as string;
const UNCACHED = `${CACHED}-uncached`;

/** The bundled manifest with the cache on for CACHED, plus an uncached copy; `edit` changes it more. */
function manifestWith(edit: (doc: Record<string, any>) => void = () => {}): Manifest {
  const doc = JSON.parse(readFileSync(MANIFEST, 'utf8'));
  const first = doc.ensembles.find((e: { name: string }) => e.name === CACHED);
  for (const e of doc.ensembles) e.cache = e === first ? { ttlSeconds: 60 } : undefined;
  // Every request is served by the ensemble it names: a canary would take a share elsewhere.
  for (const e of doc.ensembles) delete e.canary;
  doc.ensembles.push({ ...first, name: UNCACHED, cache: undefined });
  edit(doc);
  return parseManifest(doc, MANIFEST);
}

const features = bundled.ensembles.get(CACHED)?.features ?? [];
const rowA = features.map((_, i) => 10 + i * 0.25);
const rowB = features.map((_, i) => 3 - i * 0.1);

/**
 * The state machine without AWS: every member "scores" each row from its first value (so answers
 * differ by row), members named in `failing` fail, and the real ensemble step combines, stores and
 * fills the cache.
 */
class StepExecutor implements InferenceExecutor {
  readonly runs: InferenceInput[] = [];
  failing = new Set<string>();
  constructor(
    private readonly ctx: {
      manifest: () => Manifest;
      store: MemoryPredictionStore;
      cache: MemoryResultCache;
      now: () => Date;
    },
    private readonly warnings: string[],
  ) {}
  async run(input: InferenceInput): Promise<PredictionRecord> {
    this.runs.push(input);
    const labels = this.ctx.manifest().ensembles.get(input.ensemble)?.labels ?? [];
    const members = input.members.map(({ model }, j) =>
      this.failing.has(model)
        ? { model, status: 'failed', error: { Error: 'Boom', Cause: 'boom' } }
        : {
            model,
            status: 'ok',
            latencyMs: 2,
            probabilities: input.instances.map((r) => {
              const p = 1 / (1 + Math.exp(-((r[0] as number) - 8 + j * 0.1)));
              return labels.map((_, c) => (c === 0 ? p : (1 - p) / (labels.length - 1)));
            }),
          },
    );
    const result = await storeResult(
      {
        id: input.id,
        ensemble: input.ensemble,
        createdAt: input.createdAt,
        rows: input.instances.length,
        members,
        instances: input.instances,
      },
      this.ctx.manifest(),
      this.ctx.store,
      { cache: this.ctx.cache, warn: (m) => this.warnings.push(m), now: this.ctx.now },
    );
    if (result.outcome !== 'ok') throw new Error(result.cause);
    return result.record;
  }
}

function setup() {
  let manifest = manifestWith();
  const store = new MemoryPredictionStore();
  const cache = new MemoryResultCache();
  const warnings: string[] = [];
  const counts: CacheCounts[] = [];
  let now = new Date('2026-03-01T10:00:00.000Z');
  const executor = new StepExecutor({ manifest: () => manifest, store, cache, now: () => now }, warnings);
  const deps: ApiDeps = {
    manifest,
    store,
    jobs: new MemoryJobStore(),
    executor,
    cache,
    maxInstances: 10,
    maxBodyBytes: 100_000,
    notReady: () => new Map(),
    now: () => now,
    warn: (message, data) => warnings.push(`${message}: ${String(data.reason)}`),
    onCacheResult: (c) => counts.push(c),
  };
  const call = async (...args: Parameters<typeof httpEvent>) => {
    const res = await handleHttp(httpEvent(...args), () => deps);
    return { status: res.statusCode, body: JSON.parse(res.body), headers: res.headers ?? {} };
  };
  const predict = (body: unknown, ensemble = CACHED) =>
    call('POST /v1/ensembles/{ensemble}/predictions', { pathParameters: { ensemble }, body });
  /** A prediction through the handler with a metrics recorder: its status and the EMF lines written. */
  const metered = async (body: unknown, ensemble = CACHED) => {
    const metrics = new MetricsRecorder();
    const event = httpEvent('POST /v1/ensembles/{ensemble}/predictions', {
      pathParameters: { ensemble },
      body,
    });
    const res = await handleHttp(event, () => deps, metrics);
    const { records } = await captureEmf(() => publish(metrics, 'test'));
    return { status: res.statusCode, lines: records.map(summarise) };
  };
  return {
    metered,
    store,
    cache,
    executor,
    warnings,
    counts,
    call,
    predict,
    advance: (seconds: number) => {
      now = new Date(now.getTime() + seconds * 1000);
    },
    reload: (m: Manifest) => {
      manifest = m;
      deps.manifest = m;
    },
  };
}

describe('the result cache on the synchronous API', () => {
  it('answers the same request a second time from the cache: new id, cached, same predictions', async () => {
    const t = setup();
    const first = await t.predict({ instances: [rowA] });
    expect(first.status).toBe(200);
    expect(first.headers['cache-status']).toBe('miss');
    expect(first.body.cached).toBeUndefined();
    t.advance(5);
    const second = await t.predict({ instances: [rowA] });
    expect(second.status).toBe(200);
    expect(second.headers['cache-status']).toBe('hit');
    expect(t.executor.runs).toHaveLength(1);
    expect(second.body).toEqual({
      ...first.body,
      id: expect.not.stringMatching(first.body.id),
      cached: true,
      createdAt: '2026-03-01T10:00:05.000Z',
      // A hit replays the counted members only: shadow members ran with the first request, not this one.
      members: first.body.members
        .filter((m: { shadow?: boolean }) => !m.shadow)
        .map((m: { latencyMs: number }) => ({ ...m, latencyMs: 0 })),
    });
    const stored = await t.call('GET /v1/predictions/{id}', { pathParameters: { id: second.body.id } });
    expect(stored.body).toEqual(second.body);
    expect(t.counts.map((c) => [c.hits, c.misses, c.errors])).toEqual([
      [0, 1, 0],
      [1, 0, 0],
    ]);
  });

  it('stores a hit under the client id, so a repeat of the id replays it and GET finds it', async () => {
    const t = setup();
    await t.predict({ instances: [rowA] });
    const hit = await t.predict({ id: 'client-7', instances: [rowA] });
    expect(hit.body).toMatchObject({ id: 'client-7', cached: true });
    const repeat = await t.predict({ id: 'client-7', instances: [rowA] });
    expect(repeat.headers['idempotent-replay']).toBe('true');
    expect(repeat.headers['cache-status']).toBeUndefined();
    // The id is bound to its request, cached or not: other instances are a conflict.
    expect((await t.predict({ id: 'client-7', instances: [rowB] })).status).toBe(409);
    expect(repeat.body).toEqual(hit.body);
    expect((await t.call('GET /v1/predictions/{id}', { pathParameters: { id: 'client-7' } })).body).toEqual(
      hit.body,
    );
    expect(t.executor.runs).toHaveLength(1);
  });

  it('hits for the same row given by feature names, with 1.0 for 1, or as the float32 it rounds to', async () => {
    const t = setup();
    await t.predict({ instances: [rowA] });
    const named = Object.fromEntries(features.map((f, i) => [f, rowA[i]]));
    expect((await t.predict({ instances: [named] })).headers['cache-status']).toBe('hit');
    const asText = `{"instances": [[${rowA.map((v) => (Number.isInteger(v) ? `${v}.0` : String(v))).join(',')}]]}`;
    expect((await t.predict(asText)).headers['cache-status']).toBe('hit');
    const f32 = rowA.map((v) => Math.fround(v + 1e-9));
    expect((await t.predict({ instances: [f32] })).headers['cache-status']).toBe('hit');
    expect(t.executor.runs).toHaveLength(1);
  });

  it('hits a request only when every row is cached, in the request order', async () => {
    const t = setup();
    await t.predict({ instances: [rowA] });
    const partial = await t.predict({ instances: [rowA, rowB] });
    expect(partial.headers['cache-status']).toBe('miss');
    expect(t.executor.runs).toHaveLength(2);
    const swapped = await t.predict({ instances: [rowB, rowA, rowB] });
    expect(swapped.headers['cache-status']).toBe('hit');
    expect(swapped.body.predictions).toEqual([
      partial.body.predictions[1],
      partial.body.predictions[0],
      partial.body.predictions[1],
    ]);
    expect(swapped.body.members[0].predictions).toEqual([
      partial.body.members[0].predictions[1],
      partial.body.members[0].predictions[0],
      partial.body.members[0].predictions[1],
    ]);
  });

  it('sends no cache-status and never reads the cache for an ensemble without a cache', async () => {
    const t = setup();
    const first = await t.predict({ instances: [rowA] }, UNCACHED);
    const second = await t.predict({ instances: [rowA] }, UNCACHED);
    expect(first.headers['cache-status']).toBeUndefined();
    expect(second.headers['cache-status']).toBeUndefined();
    expect(second.body.cached).toBeUndefined();
    expect(t.executor.runs).toHaveLength(2);
    expect(t.cache.reads).toEqual([]);
    expect(t.cache.entries.size).toBe(0);
  });

  it('never caches a degraded answer', async () => {
    const t = setup();
    const member = bundled.ensembles.get(CACHED)?.members[0] as string;
    t.executor.failing.add(member);
    const degraded = await t.predict({ instances: [rowA] });
    expect(degraded.body.degraded).toBe(true);
    t.executor.failing.clear();
    const again = await t.predict({ instances: [rowA] });
    expect(again.headers['cache-status']).toBe('miss');
    expect(again.body.degraded).toBe(false);
    expect((await t.predict({ instances: [rowA] })).headers['cache-status']).toBe('hit');
  });

  it('misses once the TTL has passed, although the expired entry is still stored', async () => {
    const t = setup();
    await t.predict({ instances: [rowA] });
    t.advance(59);
    expect((await t.predict({ instances: [rowA] })).headers['cache-status']).toBe('hit');
    t.advance(2);
    expect(t.cache.entries.size).toBe(1);
    expect((await t.predict({ instances: [rowA] })).headers['cache-status']).toBe('miss');
    expect(t.executor.runs).toHaveLength(2);
  });

  it("misses after a member's version changes in the manifest, then hits the new entry", async () => {
    const t = setup();
    await t.predict({ instances: [rowA] });
    const member = bundled.ensembles.get(CACHED)?.members[1] as string;
    t.reload(
      manifestWith((doc) => {
        const m = doc.models.find((x: { id: string }) => x.id === member);
        m.version = `${m.version}-retrained`;
      }),
    );
    const after = await t.predict({ instances: [rowA] });
    expect(after.headers['cache-status']).toBe('miss');
    expect(after.body.members[1].version).toMatch(/-retrained$/);
    const again = await t.predict({ instances: [rowA] });
    expect(again.headers['cache-status']).toBe('hit');
    expect(again.body.members[1].version).toMatch(/-retrained$/);
  });

  it('routes to a canary before the cache: a request its canary serves never gets the primary’s cached answer', async () => {
    const t = setup();
    await t.predict({ instances: [rowA] });
    expect((await t.predict({ instances: [rowA] })).headers['cache-status']).toBe('hit');
    // Every request to CACHED now goes to its canary (an ensemble without a cache).
    t.reload(
      manifestWith((doc) => {
        doc.ensembles.find((e: { name: string }) => e.name === CACHED).canary = {
          ensemble: UNCACHED,
          percent: 100,
        };
      }),
    );
    const routed = await t.predict({ instances: [rowA] });
    expect(routed.status).toBe(200);
    expect(routed.body).toMatchObject({ ensemble: UNCACHED });
    expect(routed.body.cached).toBeUndefined();
    expect(routed.headers['cache-status']).toBeUndefined();
    expect(t.executor.runs.map((r) => r.ensemble)).toEqual([CACHED, UNCACHED]);
  });

  it('answers uncached and logs a warning with the reason when the cache cannot be read', async () => {
    const t = setup();
    await t.predict({ instances: [rowA] });
    t.cache.failReads = new Error('reading result-cache entries in table t failed: throttled');
    const res = await t.predict({ instances: [rowA] });
    expect(res.status).toBe(200);
    expect(res.headers['cache-status']).toBe('miss');
    expect(t.executor.runs).toHaveLength(2);
    expect(t.warnings).toEqual([
      'result cache read failed; answering uncached: reading result-cache entries in table t failed: throttled',
    ]);
    expect(t.counts.at(-1)).toMatchObject({ hits: 0, misses: 1, errors: 1 });
  });

  it('answers and stores the prediction when the cache cannot be written, logging a warning', async () => {
    const t = setup();
    t.cache.failWrites = new Error('throttled');
    const res = await t.predict({ instances: [rowA] });
    expect(res.status).toBe(200);
    expect(await t.store.getPrediction(res.body.id)).toEqual(res.body);
    expect(t.warnings).toEqual(['result cache write failed; the answer is stored, not cached']);
  });

  it('answers the Open Inference Protocol from the same cache, with the header', async () => {
    const t = setup();
    await t.predict({ instances: [rowA] });
    const res = await t.call('POST /v2/models/{name}/infer', {
      pathParameters: { name: CACHED },
      body: { inputs: [{ name: 'input', shape: [1, features.length], datatype: 'FP32', data: rowA }] },
    });
    expect(res.status).toBe(200);
    expect(res.headers['cache-status']).toBe('hit');
    expect(t.executor.runs).toHaveLength(1);
  });

  it('shows the cache setting in GET /v1/ensembles', async () => {
    const t = setup();
    const list = (await t.call('GET /v1/ensembles')).body.ensembles as { name: string; cache?: unknown }[];
    expect(list.find((e) => e.name === CACHED)?.cache).toEqual({ ttlSeconds: 60 });
    expect(list.find((e) => e.name === UNCACHED)?.cache).toBeUndefined();
  });
});

describe('the result cache metrics of the synchronous API', () => {
  const sync = { stage: 'test', ensemble: CACHED, path: 'sync' };
  const cacheLine = <L extends { dimensions: Record<string, string> }>(lines: L[]) =>
    lines.find((l) => l.dimensions.path !== undefined);

  it('counts a miss, then a hit, once per request (path sync), and marks the hit in the request line', async () => {
    const t = setup();
    const miss = await t.metered({ instances: [rowA, rowB] });
    expect(miss.status).toBe(200);
    expect(cacheLine(miss.lines)).toEqual({
      dimensions: sync,
      metrics: { CacheHits: { unit: 'Count', values: [0] }, CacheMisses: { unit: 'Count', values: [1] } },
      metadata: expect.any(Object),
    });
    expect(miss.lines.find((l) => l.metrics.Requests)?.metadata.cached).toBeUndefined();
    const hit = await t.metered({ instances: [rowB, rowA, rowB] });
    expect(cacheLine(hit.lines)).toMatchObject({
      dimensions: sync,
      metrics: { CacheHits: { values: [1] }, CacheMisses: { values: [0] } },
    });
    expect(hit.lines.find((l) => l.metrics.Requests)?.metadata).toMatchObject({ cached: true });
    // The deployment's own observer still hears every lookup.
    expect(t.counts).toHaveLength(2);
  });

  it('counts a failed read as an error and a miss; the request is answered', async () => {
    const t = setup();
    await t.predict({ instances: [rowA] });
    t.cache.failReads = new Error('throttled');
    const res = await t.metered({ instances: [rowA] });
    expect(res.status).toBe(200);
    expect(cacheLine(res.lines)?.metrics).toEqual({
      CacheHits: { unit: 'Count', values: [0] },
      CacheMisses: { unit: 'Count', values: [1] },
      CacheErrors: { unit: 'Count', values: [1] },
    });
  });

  it('writes no cache metric for an ensemble without a cache, nor for a request refused before the lookup', async () => {
    const t = setup();
    expect(cacheLine((await t.metered({ instances: [rowA] }, UNCACHED)).lines)).toBeUndefined();
    const bad = await t.metered({ instances: [[1]] });
    expect(bad.status).toBe(400);
    expect(cacheLine(bad.lines)).toBeUndefined();
  });
});
