import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { batchDeps } from '../adapters/batch-deps.js';
import { logger } from '../adapters/logger.js';
import { type FinalizeEvent, finalize } from './finalize.js';

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
