import type { PredictionRecord } from '../../functions/core/combine.js';
import type { EnsembleSpec } from '../../functions/core/manifest.js';
import type { ResultCache } from '../../functions/core/ports.js';
import {
  type CacheEntry,
  entriesFor,
  isFresh,
  lookupFresh,
  recordFromEntries,
} from '../../functions/core/result-cache.js';

const ENSEMBLE: EnsembleSpec & { cache: { ttlSeconds: number } } = {
  name: 'pair',
  members: ['a', 'b'],
  weights: [1, 1],
  strategy: 'soft-vote',
  quorum: 2,
  features: ['x'],
  labels: ['no', 'yes'],
  cache: { ttlSeconds: 60 },
};

const p = (yes: number) => ({
  label: yes >= 0.5 ? 'yes' : 'no',
  probabilities: { no: 1 - yes, yes },
});
/** The ensemble's prediction of a row, with its uncertainty, as combine makes it. */
const ep = (yes: number) => ({
  ...p(yes),
  uncertainty: { agreement: 1, margin: Math.abs(2 * yes - 1), entropy: 0.7, spread: 0.05 },
});

/** A combined two-row answer where both members answered. */
function record(overrides: Partial<PredictionRecord> = {}): PredictionRecord {
  return {
    id: 'req-1',
    ensemble: 'pair',
    strategy: 'soft-vote',
    degraded: false,
    predictions: [ep(0.8), ep(0.3)],
    members: [
      { model: 'a', version: '1', kind: 'onnx', status: 'ok', latencyMs: 1.2, predictions: [p(0.9), p(0.2)] },
      {
        model: 'b',
        version: '2',
        kind: 'sagemaker',
        status: 'ok',
        latencyMs: 3,
        predictions: [p(0.7), p(0.4)],
      },
    ],
    createdAt: '2026-01-01T00:00:00.000Z',
    ...overrides,
  };
}

const NOW = new Date('2026-01-01T00:00:00.000Z');
const later = (seconds: number) => new Date(NOW.getTime() + seconds * 1000);

/** An in-memory ResultCache that can be told to fail. */
class FakeCache implements ResultCache {
  readonly items = new Map<string, CacheEntry>();
  failWith?: Error;
  readonly reads: string[][] = [];
  async get(keys: readonly string[]) {
    this.reads.push([...keys]);
    if (this.failWith) throw this.failWith;
    return new Map(keys.flatMap((k) => (this.items.has(k) ? [[k, this.items.get(k) as CacheEntry]] : [])));
  }
  async put(entries: readonly CacheEntry[]) {
    for (const e of entries) this.items.set(e.key, structuredClone(e));
  }
}

describe('result cache entries', () => {
  it('keep per row the ensemble prediction and every member prediction, with the expiry', () => {
    const entries = entriesFor(record(), ENSEMBLE, ['k1', 'k2'], 60, NOW);
    expect(entries).toEqual([
      {
        key: 'k1',
        ensemble: 'pair',
        // The ensemble's prediction as the answer had it, its uncertainty included.
        prediction: ep(0.8),
        members: [
          // Probabilities in the ensemble's label order (no, yes); label and version are derived.
          { model: 'a', probabilities: [1 - 0.9, 0.9] },
          { model: 'b', probabilities: [1 - 0.7, 0.7] },
        ],
        cachedAt: NOW.toISOString(),
        expiresAt: NOW.getTime() / 1000 + 60,
      },
      expect.objectContaining({ key: 'k2', prediction: ep(0.3) }),
    ]);
  });

  it('are never made from a degraded answer or one where a member failed', () => {
    expect(entriesFor(record({ degraded: true }), ENSEMBLE, ['k1', 'k2'], 60, NOW)).toEqual([]);
    const failed = record();
    failed.members[1] = { model: 'b', version: '2', kind: 'onnx', status: 'timeout', latencyMs: 5000 };
    expect(entriesFor(failed, ENSEMBLE, ['k1', 'k2'], 60, NOW)).toEqual([]);
  });

  it('keep only the ensemble’s own members, in its order (results run alongside are not replayed)', () => {
    const withExtra = record();
    withExtra.members = [
      { model: 'candidate', version: '0.1', kind: 'onnx', status: 'failed', latencyMs: 9 },
      ...[...withExtra.members].reverse(),
    ];
    const [entry] = entriesFor(withExtra, ENSEMBLE, ['k1', 'k2'], 60, NOW);
    expect(entry?.members.map((m) => m.model)).toEqual(['a', 'b']);
  });

  it('give a row repeated within a request one entry', () => {
    const twice = record({ predictions: [ep(0.8), ep(0.8)] });
    expect(entriesFor(twice, ENSEMBLE, ['k1', 'k1'], 60, NOW).map((e) => e.key)).toEqual(['k1']);
  });

  it('rebuild the same answer, marked cached, with this request’s id and time and no member latency', () => {
    const entries = entriesFor(record(), ENSEMBLE, ['k1', 'k2'], 60, NOW);
    // The manifest's timeout is for messages only: it must not reach the replayed record.
    const info = (m: string) =>
      m === 'a'
        ? { version: '1', kind: 'onnx' as const, timeoutSeconds: 5 }
        : { version: '2', kind: 'sagemaker' as const, timeoutSeconds: 5 };
    const hit = recordFromEntries(ENSEMBLE, entries, info, {
      id: 'req-2',
      createdAt: '2026-01-01T00:00:05.000Z',
    });
    const original = record();
    expect(hit).toEqual({
      ...original,
      id: 'req-2',
      createdAt: '2026-01-01T00:00:05.000Z',
      cached: true,
      members: original.members.map((m) => ({ ...m, latencyMs: 0 })),
    });
  });
});

describe('freshness (the TTL is checked on every read)', () => {
  const [entry] = entriesFor(record(), ENSEMBLE, ['k1', 'k2'], 60, NOW) as [CacheEntry];

  it('holds until the expiry, not at or after it', () => {
    expect(isFresh(entry, later(59.9), 60)).toBe(true);
    expect(isFresh(entry, later(60), 60)).toBe(false);
    expect(isFresh(entry, later(86_400), 60)).toBe(false);
  });

  it('applies a TTL lowered in the manifest to entries already stored', () => {
    expect(isFresh(entry, later(10), 5)).toBe(false);
    expect(isFresh(entry, later(4), 5)).toBe(true);
  });

  it('rejects an entry without a readable time', () => {
    expect(isFresh({ ...entry, cachedAt: 'yesterday' }, later(1), 60)).toBe(false);
  });
});

describe('lookupFresh', () => {
  it('reads each distinct key once and keeps the fresh entries of this ensemble with its members', async () => {
    const cache = new FakeCache();
    await cache.put(entriesFor(record(), ENSEMBLE, ['k1', 'k2'], 60, NOW));
    await cache.put([{ ...(cache.items.get('k1') as CacheEntry), key: 'old', expiresAt: 0 }]);
    await cache.put([{ ...(cache.items.get('k1') as CacheEntry), key: 'other', ensemble: 'wine' }]);
    await cache.put([
      { ...(cache.items.get('k1') as CacheEntry), key: 'fewer', members: [] as CacheEntry['members'] },
    ]);
    const found = await lookupFresh(
      cache,
      ENSEMBLE,
      ['k1', 'k2', 'k1', 'old', 'other', 'fewer', 'none'],
      later(1),
    );
    expect(cache.reads).toEqual([['k1', 'k2', 'old', 'other', 'fewer', 'none']]);
    expect([...found.entries.keys()]).toEqual(['k1', 'k2']);
    expect(found.error).toBeUndefined();
  });

  it('never throws: a failed read comes back as no entries and the reason', async () => {
    const cache = new FakeCache();
    cache.failWith = new Error('ProvisionedThroughputExceededException: slow down');
    const found = await lookupFresh(cache, ENSEMBLE, ['k1'], NOW);
    expect(found.entries.size).toBe(0);
    expect(found.error).toBe('ProvisionedThroughputExceededException: slow down');
  });
});
