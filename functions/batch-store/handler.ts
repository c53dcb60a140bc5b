import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { addAgreement } from '../adapters/agreement-metrics.js';
import { batchDeps } from '../adapters/batch-deps.js';
import { cacheObserver } from '../adapters/cache-metrics.js';
import { logger as baseLogger } from '../adapters/logger.js';
import { addMemberCalls } from '../adapters/member-metrics.js';
import { metricsOf } from '../adapters/metrics.js';
import { observability } from '../adapters/observability.js';
import { annotate } from '../adapters/tracing.js';
import { type BatchSummary, type StoreBatchEvent, storeBatch } from './store-batch.js';

// This function's own logger: in the local stack several handlers share a process.
const logger = baseLogger.createChild();

/**
 * Lambda entry point: combines and stores one batch of rows. It sees every member's final status
 * for the batch, so it records the per-member metrics of batch jobs, and the result cache's failed
 * writes.
 */
export const handler = middy(async (event: StoreBatchEvent, context: Context): Promise<BatchSummary> => {
  annotate({ ensemble: event?.ensemble, jobId: event?.jobId, correlationId: event?.jobId });
  const metrics = metricsOf(context);
  const { summary, members } = await storeBatch(event, {
    ...batchDeps(),
    onCacheResult: cacheObserver(metrics),
    onAgreement: (report) => addAgreement(metrics, report),
    warn: (message, data) => logger.warn(message, data),
  });
  logger.info('batch stored', { jobId: event.jobId, ...summary });
  metrics.setMetadata({
    jobId: event.jobId,
    firstLine: summary.firstLine,
    rowsOk: summary.ok,
    rowsFailed: summary.failed,
    rowsDegraded: summary.degraded,
    rowsCached: summary.cached,
    rowsScored: summary.scored,
  });
  metrics.add('BatchRowsStored', summary.rows, { ensemble: event.ensemble });
  addMemberCalls(metrics, event.ensemble, members, 'batch');
  // Only the summary goes back: the Distributed Map's results writer keeps every batch's answer.
  return summary;
}).use(observability('batchStore', logger));
