import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { batchDeps } from '../adapters/batch-deps.js';
import { logger as baseLogger } from '../adapters/logger.js';
import { type FinalizeEvent, finalize } from './finalize.js';

// This function's own logger: in the local stack several handlers share a process.
const logger = baseLogger.createChild();

/** Lambda entry point: joins the results and error files and closes the job. */
export const handler = middy(async (event: FinalizeEvent) => {
  const job = await finalize(event, batchDeps());
  logger.info('batch finished', {
    jobId: job.jobId,
    status: job.status,
    rowsTotal: job.rowsTotal,
    rowsOk: job.rowsOk,
    rowsFailed: job.rowsFailed,
  });
  return job;
}).use(injectLambdaContext(logger));
