import { rowCacheKeys } from '../core/cache-key.js';
import { memberInfoFrom, type PredictionRecord } from '../core/combine.js';
import type { EnsembleSpec, Manifest } from '../core/manifest.js';
import type { PredictionStore, ResultCache } from '../core/ports.js';
import {
  type CacheEntry,
  type CacheObserver,
  hasCache,
  lookupFresh,
  recordFromEntries,
} from '../core/result-cache.js';
import { apiLogger } from './log.js';

/** `hit`: answered from the cache; `miss`: the ensemble has a cache and the request ran. */
export type CacheStatus = 'hit' | 'miss';

/** What the cache check needs; without `cache` no ensemble is cached (tests, older wiring). */
export interface CachedAnswerDeps {
  manifest: Manifest;
  store: PredictionStore;
  cache?: ResultCache;
  onCacheResult?: CacheObserver;
  now?: () => Date;
  warn?: (message: string, data: Record<string, unknown>) => void;
}

/** The cache's say on one request: no status for an ensemble without a cache. */
export interface CachedAnswer {
  status?: CacheStatus;
  /** The stored answer on a hit (already saved under the request's id). */
  record?: PredictionRecord;
}

/**
 * Answers a synchronous request from the result cache when the ensemble has one and every row
 * (validated, in feature order) has a fresh entry. A hit is stored as a prediction under `meta.id`
 * like any answer (so `GET /v1/predictions/{id}` and a repeated client id work); a concurrent
 * request with the same id that stored first wins, as on the scoring path. A read failure is a
 * miss with a warning: the cache never fails a request. The ensemble step fills the cache on a miss.
 */
export async function answerFromCache(
  target: EnsembleSpec,
  rows: readonly (readonly number[])[],
  meta: { id: string; createdAt: string; routedFrom?: string },
  deps: CachedAnswerDeps,
): Promise<CachedAnswer> {
  if (!deps.cache || !hasCache(target)) return {};
  const keys = rowCacheKeys(target, deps.manifest.models, rows);
  const now = deps.now?.() ?? new Date();
  const found = await lookupFresh(deps.cache, target, keys, now);
  if (found.error) {
    (deps.warn ?? defaultWarn)('result cache read failed; answering uncached', {
      ensemble: target.name,
      id: meta.id,
      reason: found.error,
    });
  }
  const entries = keys.map((k) => found.entries.get(k));
  const hit = entries.every((e): e is CacheEntry => e !== undefined);
  deps.onCacheResult?.({
    ensemble: target.name,
    path: 'sync',
    hits: hit ? 1 : 0,
    misses: hit ? 0 : 1,
    errors: found.error ? 1 : 0,
  });
  if (!hit) return { status: 'miss' };
  const stored = await deps.store.putPrediction(
    recordFromEntries(target, entries, memberInfoFrom(deps.manifest), meta),
  );
  return { status: 'hit', record: stored.record };
}

const defaultWarn = (message: string, data: Record<string, unknown>) => apiLogger.warn(message, data);
