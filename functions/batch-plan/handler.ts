import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { batchDeps } from '../adapters/batch-deps.js';
import { cacheObserver } from '../adapters/cache-metrics.js';
import { logger as baseLogger } from '../adapters/logger.js';
import { metricsOf } from '../adapters/metrics.js';
import { observability } from '../adapters/observability.js';
import { annotate } from '../adapters/tracing.js';
import { type PlanEvent, planBatch } from './plan.js';

// This function's own logger: in the local stack several handlers share a process.
const logger = baseLogger.createChild();

/**
 * Lambda entry point: dedupes one batch's rows and answers what the cache holds. For an ensemble
 * with a result cache it records the batch's hits and misses (distinct rows) and a failed read.
 */
export const handler = middy(async (event: PlanEvent, context: Context) => {
  annotate({ ensemble: event?.ensemble, jobId: event?.jobId, correlationId: event?.jobId });
  const metrics = metricsOf(context);
  const { manifest, cache } = batchDeps();
  const plan = await planBatch(event, {
    manifest,
    cache,
    onCacheResult: cacheObserver(metrics),
    warn: (message, data) => logger.warn(message, data),
  });
  const fromCache = plan.source.filter((s) => s < 0).length;
  logger.info('batch planned', {
    jobId: event.jobId,
    firstLine: plan.lines[0],
    rows: plan.lines.length,
    toScore: plan.scored,
    fromCache,
  });
  metrics.setMetadata({
    jobId: event.jobId,
    firstLine: plan.lines[0] ?? 0,
    rowsToScore: plan.scored,
    rowsFromCache: fromCache,
  });
  return plan;
}).use(observability('batchPlan', logger));
