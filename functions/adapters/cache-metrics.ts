import type { CacheCounts, CacheObserver } from '../core/result-cache.js';
import type { MetricsRecorder } from './metrics.js';

/**
 * Records what one result-cache lookup or fill saw as `CacheHits`, `CacheMisses` and `CacheErrors`
 * (dimensions ensemble and path), in the units the core counted them: a synchronous request is one
 * hit or one miss, a batch counts its distinct rows. A lookup writes its hits and misses, zeros
 * included (so a synchronous hit rate is the average of `CacheHits`); a failed fill has no lookup
 * and writes only its error. Errors are written only when there is one. The warning that says why
 * a read or write failed is logged where it failed, not here.
 */
export function addCacheCounts(metrics: MetricsRecorder, counts: CacheCounts): void {
  const dims = { ensemble: counts.ensemble, path: counts.path };
  if (counts.hits + counts.misses > 0) {
    metrics.add('CacheHits', counts.hits, dims).add('CacheMisses', counts.misses, dims);
  }
  if (counts.errors > 0) metrics.add('CacheErrors', counts.errors, dims);
}

/**
 * The result cache's observer for one invocation: its counts go to that invocation's metrics
 * (`metricsOf(context)`), so they are published with its other lines when it ends.
 */
export function cacheObserver(metrics: MetricsRecorder): CacheObserver {
  return (counts) => addCacheCounts(metrics, counts);
}
