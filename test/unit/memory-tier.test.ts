import { MemoryTier } from '../../functions/core/memory-tier.js';
import type { ResultCache } from '../../functions/core/ports.js';
import type { CacheEntry } from '../../functions/core/result-cache.js';

const T0 = Date.parse('2026-11-29T10:00:00.000Z');

/** An entry of ensemble `e` (TTL 600 s unless told), cached at `cachedAtSec` after T0. */
function entry(key: string, cachedAtSec = 0, ttl = 600, ensemble = 'e'): CacheEntry {
  const cachedAt = T0 + cachedAtSec * 1000;
  return {
    key,
    ensemble,
    prediction: {
      label: 'yes',
      probabilities: { no: 0.2, yes: 0.8 },
      uncertainty: { agreement: 1, margin: 0.6, entropy: 0.5, spread: 0 },
    },
    members: [{ model: 'a', probabilities: [0.2, 0.8] }],
    cachedAt: new Date(cachedAt).toISOString(),
    expiresAt: Math.floor(cachedAt / 1000) + ttl,
  };
}

/** A table that counts the keys it is asked for and can be told to fail. */
class FakeTable implements ResultCache {
  readonly entries = new Map<string, CacheEntry>();
  readonly asked: string[][] = [];
  failPuts = false;
  async get(keys: readonly string[]) {
    this.asked.push([...keys]);
    return new Map(
      keys.flatMap((k) => (this.entries.has(k) ? [[k, this.entries.get(k) as CacheEntry]] : [])),
    );
  }
  async put(entries: readonly CacheEntry[]) {
    if (this.failPuts) throw new Error('throttled');
    for (const e of entries) this.entries.set(e.key, e);
  }
}

function setup(options: { maxEntries?: number; maxAgeSeconds?: number; ttl?: number } = {}) {
  const table = new FakeTable();
  let now = T0;
  const tier = new MemoryTier(table, {
    maxEntries: options.maxEntries ?? 100,
    maxAgeSeconds: options.maxAgeSeconds ?? 300,
    ttlSeconds: (e) => (e === 'e' ? (options.ttl ?? 600) : undefined),
    now: () => new Date(now),
  });
  const at = (sec: number) => {
    now = T0 + sec * 1000;
  };
  return { table, tier, at };
}

describe('the result cache memory tier', () => {
  it('reads a key from the table once, then answers it from memory', async () => {
    const { table, tier } = setup();
    table.entries.set('k1', entry('k1'));
    expect([...(await tier.get(['k1', 'k2'])).keys()]).toEqual(['k1']);
    expect([...(await tier.get(['k1'])).keys()]).toEqual(['k1']);
    // The second read asked the table for nothing; the absent key is asked again.
    expect(table.asked).toEqual([['k1', 'k2']]);
    await tier.get(['k1', 'k2']);
    expect(table.asked).toEqual([['k1', 'k2'], ['k2']]);
  });

  it('reads the table again once an entry expires there, where a newer answer may be', async () => {
    const { table, tier, at } = setup();
    table.entries.set('k1', entry('k1', 0, 60));
    await tier.get(['k1']);
    at(59);
    await tier.get(['k1']);
    expect(table.asked).toHaveLength(1);
    at(61);
    table.entries.set('k1', entry('k1', 61, 60));
    expect((await tier.get(['k1'])).get('k1')?.cachedAt).toBe(new Date(T0 + 61_000).toISOString());
    expect(table.asked).toHaveLength(2);
  });

  it("keeps no entry the ensemble's current TTL no longer allows, nor one of an ensemble without a cache", async () => {
    const { table, tier, at } = setup({ ttl: 30 });
    // Written under a longer TTL by an earlier deployment: stale for this one after 30 s.
    table.entries.set('old', entry('old', 0, 3600));
    table.entries.set('other', entry('other', 0, 3600, 'uncached'));
    at(40);
    await tier.get(['old', 'other']);
    await tier.get(['old', 'other']);
    expect(table.asked).toEqual([
      ['old', 'other'],
      ['old', 'other'],
    ]);
    expect(tier.size).toBe(0);
  });

  it('serves an entry from memory for maxAgeSeconds at most', async () => {
    const { table, tier, at } = setup({ maxAgeSeconds: 10 });
    table.entries.set('k1', entry('k1'));
    await tier.get(['k1']);
    at(9);
    await tier.get(['k1']);
    at(11);
    await tier.get(['k1']);
    expect(table.asked).toEqual([['k1'], ['k1']]);
  });

  it('holds maxEntries at most, dropping the least recently used', async () => {
    const { table, tier } = setup({ maxEntries: 2 });
    for (const k of ['a', 'b', 'c']) table.entries.set(k, entry(k));
    await tier.get(['a', 'b']);
    await tier.get(['a']); // a is now the most recently used
    await tier.get(['c']); // b goes
    expect(tier.size).toBe(2);
    table.asked.length = 0;
    await tier.get(['a', 'b', 'c']);
    expect(table.asked).toEqual([['b']]);
  });

  it('keeps what it writes only once the table has it', async () => {
    const { table, tier } = setup();
    await tier.put([entry('w1')]);
    await tier.get(['w1']);
    expect(table.asked).toEqual([]);
    table.failPuts = true;
    await expect(tier.put([entry('w2')])).rejects.toThrow('throttled');
    await tier.get(['w2']);
    expect(table.asked).toEqual([['w2']]);
  });

  it('keeps nothing when maxEntries is 0', async () => {
    const { table, tier } = setup({ maxEntries: 0 });
    table.entries.set('k1', entry('k1'));
    await tier.get(['k1']);
    await tier.get(['k1']);
    expect(table.asked).toHaveLength(2);
  });
});
