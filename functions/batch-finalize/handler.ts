import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { batchDeps } from '../adapters/batch-deps.js';
import { logger as baseLogger } from '../adapters/logger.js';
import { type MetricsRecorder, metricsOf } from '../adapters/metrics.js';
import { observability } from '../adapters/observability.js';
import { annotate } from '../adapters/tracing.js';
import type { JobRecord } from '../core/jobs.js';
import { type FinalizeEvent, finalize } from './finalize.js';

// This function's own logger: in the local stack several handlers share a process.
const logger = baseLogger.createChild();

/**
 * A finished job's metrics: how it ended (a file rejected while preparing counts as a rejected
 * upload, like one the trigger refused), its exact row counts and its speed.
 */
export function recordJob(metrics: MetricsRecorder, job: JobRecord): void {
  const dims = { ensemble: job.ensemble };
  metrics.setMetadata({ jobId: job.jobId, status: job.status, rowsTotal: job.rowsTotal });
  // The result cache's share of the job (records written before it have neither).
  if (job.rowsCached !== undefined) metrics.setMetadata({ rowsCached: job.rowsCached });
  if (job.rowsScored !== undefined) metrics.setMetadata({ rowsScored: job.rowsScored });
  if (job.status === 'SUCCEEDED') metrics.add('BatchJobsSucceeded', 1, dims);
  else if (job.error?.code === 'invalid_batch_file') metrics.add('BatchUploadsRejected', 1, dims);
  else metrics.add('BatchJobsFailed', 1, dims);
  metrics
    .add('BatchRowsOk', job.rowsOk, dims)
    .add('BatchRowsFailed', job.rowsFailed, dims)
    .add('BatchRowsDegraded', job.rowsDegraded, dims);
  const seconds =
    job.startedAt && job.finishedAt ? (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000 : NaN;
  if (seconds >= 0) {
    metrics.add('BatchJobDuration', seconds, dims);
    if (seconds > 0 && job.rowsTotal > 0) metrics.add('BatchRowsPerSecond', job.rowsTotal / seconds, dims);
  }
}

/** Lambda entry point: joins the results and error files and closes the job. */
export const handler = middy(async (event: FinalizeEvent, context: Context) => {
  annotate({ ensemble: event?.ensemble, jobId: event?.jobId, correlationId: event?.jobId });
  const job = await finalize(event, batchDeps());
  logger.info('batch finished', {
    jobId: job.jobId,
    status: job.status,
    rowsTotal: job.rowsTotal,
    rowsOk: job.rowsOk,
    rowsFailed: job.rowsFailed,
  });
  recordJob(metricsOf(context), { ...job, ensemble: job.ensemble || event.ensemble });
  return job;
}).use(observability('batchFinalize', logger));
