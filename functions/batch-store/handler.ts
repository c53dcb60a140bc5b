import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { agreementSink } from '../adapters/agreement-sink.js';
import { batchDeps } from '../adapters/batch-deps.js';
import { cacheObserver } from '../adapters/cache-metrics.js';
import { logger as baseLogger } from '../adapters/logger.js';
import { type StoreBatchEvent, storeBatch } from './store-batch.js';

// This function's own logger: in the local stack several handlers share a process.
const logger = baseLogger.createChild();
const onAgreement = agreementSink(logger);
const onCacheResult = cacheObserver(logger);

/** Lambda entry point: combines and stores one batch of rows. */
export const handler = middy(async (event: StoreBatchEvent) => {
  const summary = await storeBatch(event, {
    ...batchDeps(),
    onCacheResult,
    onAgreement,
    warn: (message, data) => logger.warn(message, data),
  });
  logger.info('batch stored', { jobId: event.jobId, ...summary });
  return summary;
}).use(injectLambdaContext(logger));
