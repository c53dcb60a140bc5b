import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { logger as baseLogger } from '../adapters/logger.js';
import { observability } from '../adapters/observability.js';
import { OnnxScorer } from '../adapters/onnx-scorer.js';
import { SageMakerScorer } from '../adapters/sagemaker-scorer.js';
import { servedModels } from '../adapters/served.js';
import { annotate } from '../adapters/tracing.js';
import { type Config, loadConfig } from '../core/config.js';
import { type RunnerEvent, type Scorers, scoreMember } from './score-member.js';

// This function's own logger: in the local stack several handlers share a process.
const logger = baseLogger.createChild();

let scorers: Scorers | undefined;

/** Scorers are created on first use and kept for the life of the process (warm invocations). */
function defaultScorers(config: Config, endpointNames: ReadonlyMap<string, string>): Scorers {
  scorers ??= {
    onnx: new OnnxScorer(),
    sagemaker: new SageMakerScorer({
      region: config.region,
      endpoint: config.endpoints.sagemakerRuntime,
      endpointNames,
    }),
  };
  return scorers;
}

/**
 * Lambda entry point: runs one ensemble member on the request's rows. Its metrics are recorded by
 * the step that sees every member's final status (timeouts included): the ensemble or batch store.
 */
export const handler = middy(async (event: RunnerEvent, _context: Context) => {
  // The correlation id is the prediction id or the batch job id: one search finds the whole trace.
  annotate({ model: event?.model, correlationId: event?.correlationId });
  try {
    const config = loadConfig();
    const { manifest, endpointNames } = servedModels(config);
    const outcome = await scoreMember(event, manifest, defaultScorers(config, endpointNames));
    logger.info('member scored', {
      correlationId: event.correlationId,
      model: outcome.model,
      rows: outcome.probabilities?.length,
      latencyMs: outcome.latencyMs,
    });
    return outcome;
  } catch (err) {
    // Re-thrown so Step Functions' Catch sees the error's name; logged here with the member's id.
    logger.warn('member failed', {
      correlationId: event?.correlationId,
      model: event?.model,
      error: (err as Error).name,
      message: (err as Error).message,
    });
    throw err;
  }
}).use(observability('runner', logger));
