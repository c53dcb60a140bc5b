import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { batchDeps } from '../adapters/batch-deps.js';
import { cacheObserver } from '../adapters/cache-metrics.js';
import { logger as baseLogger } from '../adapters/logger.js';
import { type PlanEvent, planBatch } from './plan.js';

// This function's own logger: in the local stack several handlers share a process.
const logger = baseLogger.createChild();
const onCacheResult = cacheObserver(logger);

/** Lambda entry point: dedupes one batch's rows and answers what the cache holds. */
export const handler = middy(async (event: PlanEvent) => {
  const { manifest, cache } = batchDeps();
  const plan = await planBatch(event, {
    manifest,
    cache,
    onCacheResult,
    warn: (message, data) => logger.warn(message, data),
  });
  logger.info('batch planned', {
    jobId: event.jobId,
    firstLine: plan.lines[0],
    rows: plan.lines.length,
    toScore: plan.scored,
    fromCache: plan.source.filter((s) => s < 0).length,
  });
  return plan;
}).use(injectLambdaContext(logger));
