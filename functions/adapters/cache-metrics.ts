import type { Logger } from '@aws-lambda-powertools/logger';
import type { CacheObserver } from '../core/result-cache.js';

/**
 * Where result-cache hits, misses and errors go: one structured `result cache` line per lookup
 * (ensemble, path, hits, misses, errors), which CloudWatch Logs Insights can count. The service's
 * metrics module (CloudWatch EMF) takes this port's place once it exists; callers do not change.
 */
export function cacheObserver(logger: Logger): CacheObserver {
  return (counts) => logger.info('result cache', { ...counts });
}
