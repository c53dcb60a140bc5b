import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { batchDeps } from '../adapters/batch-deps.js';
import { logger as baseLogger } from '../adapters/logger.js';
import { type PrepareEvent, prepare } from './prepare.js';

// This function's own logger: in the local stack several handlers share a process.
const logger = baseLogger.createChild();

/** Lambda entry point: validates and normalises an uploaded batch file. */
export const handler = middy(async (event: PrepareEvent) => {
  const prepared = await prepare(event, batchDeps());
  logger.info('batch prepared', {
    jobId: event.jobId,
    rowsTotal: prepared.rowsTotal,
    rowsMalformed: prepared.rowsMalformed,
  });
  return prepared;
}).use(injectLambdaContext(logger));
