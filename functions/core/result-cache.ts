import { rowCacheKeys } from './cache-key.js';
import {
  type EnsemblePrediction,
  type MemberInfo,
  type MemberRecord,
  type Prediction,
  type PredictionRecord,
  toPrediction,
} from './combine.js';
import type { EnsembleSpec, ModelSpec } from './manifest.js';
import type { ResultCache } from './ports.js';
import { argmax } from './strategies.js';

/**
 * One member's answer for one row, as a cache entry keeps it: its probabilities in the ensemble's
 * label order. Its label is their argmax, as in every member record; its version and kind are the
 * manifest's, which the key covers.
 */
export interface CachedMember {
  model: string;
  probabilities: number[];
}

/**
 * One row's answer in the result cache: the ensemble's prediction and every member's, which is
 * what a synchronous answer shows, in under 1 KB (one DynamoDB write unit) for the bundled
 * ensembles. Written only for rows every member answered.
 */
export interface CacheEntry {
  key: string;
  ensemble: string;
  /** The ensemble's prediction for the row, its uncertainty included. */
  prediction: EnsemblePrediction;
  members: CachedMember[];
  /** When the answer was computed (ISO 8601). */
  cachedAt: string;
  /** Epoch seconds after which the entry is dead; DynamoDB's TTL attribute. */
  expiresAt: number;
}

/** What one cache lookup or fill saw, for the hit and miss metrics. */
export interface CacheCounts {
  ensemble: string;
  /** `sync`: counted in requests (a hit answers all its rows). `batch`: counted in distinct rows. */
  path: 'sync' | 'batch';
  hits: number;
  misses: number;
  /** Failed reads or writes (the work went on uncached). */
  errors: number;
}

/** Receives cache counts; the metrics adapter turns them into metrics. */
export type CacheObserver = (counts: CacheCounts) => void;

/**
 * Whether an entry may still answer: before its own expiry (DynamoDB deletes expired items only
 * lazily, days later on AWS and never in dynalite, so every read checks) and within the
 * ensemble's current TTL (a TTL lowered in the manifest applies to entries already stored).
 */
export function isFresh(entry: CacheEntry, now: Date, ttlSeconds: number): boolean {
  const nowSeconds = now.getTime() / 1000;
  const cachedAt = Date.parse(entry.cachedAt) / 1000;
  return entry.expiresAt > nowSeconds && Number.isFinite(cachedAt) && cachedAt + ttlSeconds > nowSeconds;
}

/** A lookup's fresh entries, or why the cache could not be read. */
export interface Lookup {
  entries: Map<string, CacheEntry>;
  /** Set when the read failed: the caller goes on uncached and logs this as a warning. */
  error?: string;
}

/**
 * Reads `keys` (duplicates read once) and keeps the fresh entries of `ensemble`. Never throws: a
 * read failure is reported in `error` with no entries, so the caller scores as if nothing was cached.
 */
export async function lookupFresh(
  cache: ResultCache,
  ensemble: EnsembleSpec & { cache: { ttlSeconds: number } },
  keys: readonly string[],
  now: Date,
): Promise<Lookup> {
  let found: Map<string, CacheEntry>;
  try {
    found = await cache.get([...new Set(keys)]);
  } catch (err) {
    return { entries: new Map(), error: (err as Error).message };
  }
  const entries = new Map<string, CacheEntry>();
  for (const [key, entry] of found) {
    if (
      entry.ensemble === ensemble.name &&
      isFresh(entry, now, ensemble.cache.ttlSeconds) &&
      sameMembers(entry, ensemble)
    ) {
      entries.set(key, entry);
    }
  }
  return { entries };
}

// The key already covers the members; this guards against an entry written by other code.
function sameMembers(entry: CacheEntry, ensemble: EnsembleSpec): boolean {
  return (
    Array.isArray(entry.members) &&
    entry.members.length === ensemble.members.length &&
    entry.members.every(
      (m, i) =>
        m.model === ensemble.members[i] &&
        Array.isArray(m.probabilities) &&
        m.probabilities.length === ensemble.labels.length,
    )
  );
}

/**
 * Caches a record's answers for the rows it scored (nothing for a degraded record). Never throws,
 * like {@link lookupFresh}: a failed write comes back as `error` for the caller to report, since
 * the answer itself is already stored.
 */
export async function storeFresh(
  cache: ResultCache,
  ensemble: EnsembleSpec & { cache: { ttlSeconds: number } },
  models: ReadonlyMap<string, ModelSpec>,
  record: PredictionRecord,
  rows: readonly (readonly number[])[],
  now: Date,
): Promise<{ error?: string }> {
  if (record.degraded) return {};
  const keys = rowCacheKeys(ensemble, models, rows);
  try {
    await cache.put(entriesFor(record, ensemble, keys, ensemble.cache.ttlSeconds, now));
    return {};
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/**
 * The cache entries for `ensemble`'s combined answer whose row `i` has key `keys[i]`, or none when
 * the answer must not be cached: degraded, or any of the ensemble's members without a prediction
 * for every row. Only the ensemble's own members are kept, in its order: other results a record
 * may carry (members run alongside that never count) are not part of the answer a hit replays.
 * Repeated keys give one entry.
 */
export function entriesFor(
  record: PredictionRecord,
  ensemble: EnsembleSpec,
  keys: readonly string[],
  ttlSeconds: number,
  now: Date,
): CacheEntry[] {
  if (record.degraded || keys.length !== record.predictions.length) return [];
  const members = ensemble.members.map((id) => record.members.find((m) => m.model === id));
  const answered = (m: MemberRecord | undefined): m is MemberRecord & { predictions: Prediction[] } =>
    m?.status === 'ok' && m.predictions?.length === keys.length;
  if (!members.every(answered)) return [];
  const cachedAt = now.toISOString();
  const expiresAt = Math.floor(now.getTime() / 1000) + ttlSeconds;
  const byKey = new Map<string, CacheEntry>();
  keys.forEach((key, i) => {
    byKey.set(key, {
      key,
      ensemble: record.ensemble,
      prediction: record.predictions[i] as EnsemblePrediction,
      members: members.map((m) => {
        const p = (m.predictions[i] as Prediction).probabilities;
        return { model: m.model, probabilities: ensemble.labels.map((l) => p[l] as number) };
      }),
      cachedAt,
      expiresAt,
    });
  });
  return [...byKey.values()];
}

/**
 * The answer to a request whose every row (in order) has a fresh entry: the stored predictions
 * and member predictions, `cached: true`, members' latency 0 (none ran), this request's id and time.
 * `info` gives each member's version and kind (the manifest's: the key covers them).
 */
export function recordFromEntries(
  ensemble: EnsembleSpec,
  rows: readonly CacheEntry[],
  info: (model: string) => MemberInfo,
  meta: { id: string; createdAt: string; routedFrom?: string },
): PredictionRecord {
  const members: MemberRecord[] = ensemble.members.map((model, j) => ({
    model,
    version: info(model).version,
    kind: info(model).kind,
    status: 'ok',
    latencyMs: 0,
    predictions: rows.map((r) => {
      const p = (r.members[j] as CachedMember).probabilities;
      return toPrediction(ensemble.labels, p, argmax(p));
    }),
  }));
  return {
    id: meta.id,
    ensemble: ensemble.name,
    ...(meta.routedFrom && meta.routedFrom !== ensemble.name ? { routedFrom: meta.routedFrom } : {}),
    strategy: ensemble.strategy,
    degraded: false,
    cached: true,
    predictions: rows.map((r) => r.prediction),
    members,
    createdAt: meta.createdAt,
  };
}

/** Narrows an ensemble to one with the cache on. */
export function hasCache(
  ensemble: EnsembleSpec,
): ensemble is EnsembleSpec & { cache: { ttlSeconds: number } } {
  return ensemble.cache !== undefined;
}
