import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { logger as baseLogger, errorFields } from '../adapters/logger.js';
import { notReady } from '../adapters/model-checks.js';
import { observability } from '../adapters/observability.js';
import { OnnxScorer } from '../adapters/onnx-scorer.js';
import { SageMakerScorer } from '../adapters/sagemaker-scorer.js';
import { servedModels } from '../adapters/served.js';
import { annotate } from '../adapters/tracing.js';
import { type Config, loadConfig } from '../core/config.js';
import { ModelRunError } from '../core/errors.js';
import type { Manifest } from '../core/manifest.js';
import { type RunnerEvent, type Scorers, scoreMember } from './score-member.js';

// This function's own logger: in the local stack several handlers share a process.
const logger = baseLogger.createChild();

let scorers: Scorers | undefined;

/** Scorers are created on first use and kept for the life of the process (warm invocations). */
function defaultScorers(config: Config, endpointNames: ReadonlyMap<string, string>): Scorers {
  scorers ??= {
    onnx: new OnnxScorer({ manifestPath: config.manifestPath }),
    sagemaker: new SageMakerScorer({
      region: config.region,
      endpoint: config.endpoints.sagemakerRuntime,
      endpointNames,
    }),
  };
  return scorers;
}

// The start check at init (Lambda's init phase), for the members this function serves; logged
// once. Configuration problems surface on the first invocation, with its error.
try {
  notReady(servedModels(loadConfig()).manifest);
} catch {
  // Reported by the handler.
}

const answered = new Set<string>();

/**
 * A SageMaker member has no file to check at start: its first answer's shape is its check, logged
 * once per instance (every answer is still checked, and a wrong one fails the member).
 */
function firstAnswer(manifest: Manifest, id: string, mismatch?: Error): void {
  const model = manifest.models.get(id);
  if (model?.kind !== 'sagemaker' || answered.has(id)) return;
  answered.add(id);
  if (mismatch) {
    logger.error('model not ready', { model: id, endpoint: model.endpoint.name, reason: mismatch.message });
  } else {
    logger.info('models checked', {
      ready: { [id]: `first answer of endpoint ${model.endpoint.name} fits [N, ${model.labels.length}]` },
    });
  }
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
    // The start check, once per instance (logged then): a member that fails it is not run.
    const outcome = await scoreMember(
      event,
      manifest,
      defaultScorers(config, endpointNames),
      notReady(manifest),
    );
    firstAnswer(manifest, outcome.model);
    logger.info('member scored', {
      correlationId: event.correlationId,
      model: outcome.model,
      rows: outcome.probabilities?.length,
      latencyMs: outcome.latencyMs,
    });
    return outcome;
  } catch (err) {
    if (err instanceof ModelRunError && (err.details as { answer?: unknown })?.answer === 'shape') {
      firstAnswer(servedModels(loadConfig()).manifest, event.model, err);
    }
    // Re-thrown so Step Functions' Catch sees the error's name; logged here with the member's id.
    logger.warn('member failed', {
      correlationId: event?.correlationId,
      model: event?.model,
      error: errorFields(err),
    });
    throw err;
  }
}).use(observability('runner', logger));
