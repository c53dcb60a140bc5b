import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { batchDeps } from '../adapters/batch-deps.js';
import { logger as baseLogger } from '../adapters/logger.js';
import { metricsOf } from '../adapters/metrics.js';
import { observability } from '../adapters/observability.js';
import { annotate } from '../adapters/tracing.js';
import { TIMEOUT_CUT_WHY } from '../core/targets.js';
import { type PrepareEvent, prepare } from './prepare.js';

// This function's own logger: in the local stack several handlers share a process.
const logger = baseLogger.createChild();

/** Lambda entry point: validates and normalises an uploaded batch file. */
export const handler = middy(async (event: PrepareEvent, context: Context) => {
  annotate({ ensemble: event?.ensemble, jobId: event?.jobId, correlationId: event?.jobId });
  const prepared = await prepare(event, {
    ...batchDeps(),
    onBudgetCut: (cut) => {
      for (const c of cut)
        logger.warn('member timeout cut to what the runner can wait', {
          jobId: event.jobId,
          ...c,
          why: TIMEOUT_CUT_WHY,
        });
    },
  });
  logger.info('batch prepared', {
    jobId: event.jobId,
    rowsTotal: prepared.rowsTotal,
    rowsMalformed: prepared.rowsMalformed,
  });
  metricsOf(context)
    .setMetadata({ jobId: event.jobId, rowsTotal: prepared.rowsTotal, rowsMalformed: prepared.rowsMalformed })
    .add('BatchRowsReceived', prepared.rowsTotal, { ensemble: event.ensemble });
  return prepared;
}).use(observability('batchPrepare', logger));
