import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { lazyScorer } from '../adapters/lazy-scorer.js';
import { logger as baseLogger, errorFields } from '../adapters/logger.js';
import { notReady } from '../adapters/model-checks.js';
import { observability } from '../adapters/observability.js';
import { OnnxScorer } from '../adapters/onnx-scorer.js';
import { servedModels } from '../adapters/served.js';
import { annotate } from '../adapters/tracing.js';
import { type Config, loadConfig } from '../core/config.js';
import { ModelRunError } from '../core/errors.js';
import type { Manifest, OnnxModelSpec } from '../core/manifest.js';
import { answersNotProbabilities } from './probe.js';
import { type RunnerEvent, type Scorers, scoreMember } from './score-member.js';

// This function's own logger: in the local stack several handlers share a process.
const logger = baseLogger.createChild();

type RunnerScorers = Scorers & { onnx: OnnxScorer; sagemaker: ReturnType<typeof lazyScorer> };

let scorers: RunnerScorers | undefined;

/** Scorers are created on first use and kept for the life of the process (warm invocations). */
function defaultScorers(config: Config, endpointNames: ReadonlyMap<string, string>): RunnerScorers {
  scorers ??= {
    onnx: new OnnxScorer({ manifestPath: config.manifestPath }),
    // Loaded on the first SageMaker member only: ONNX-only instances start without the AWS SDK.
    sagemaker: lazyScorer(async () => {
      const { SageMakerScorer } = await import('../adapters/sagemaker-scorer.js');
      return new SageMakerScorer({
        region: config.region,
        endpoint: config.endpoints.sagemakerRuntime,
        endpointNames,
        transport: config.sdkTransport,
      });
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

// An instance started ahead of its traffic (FANOUT_PRELOAD_MODELS: provisioned concurrency, the
// local stack's instances) loads every ONNX member that passed the start check now, so no call
// pays for a session; onnxruntime's first one costs about 170 ms here. Off by default: an
// on-demand cold start would load members it may never run.
await preloadMembers();

async function preloadMembers(): Promise<void> {
  try {
    const config = loadConfig();
    if (!config.preloadModels) return;
    const { manifest, endpointNames } = servedModels(config);
    const skip = notReady(manifest);
    const members = [...manifest.models.values()].filter(
      (m): m is OnnxModelSpec => m.kind === 'onnx' && !skip.has(m.id),
    );
    const started = performance.now();
    const chosen = defaultScorers(config, endpointNames);
    const [{ loaded, failed }] = await Promise.all([
      chosen.onnx.preload(members),
      // The SageMaker client too, where this deployment serves a SageMaker member (a failed load is
      // tried again per call).
      endpointNames.size > 0 ? chosen.sagemaker.load().catch(() => undefined) : undefined,
    ]);
    const ms = Math.round(performance.now() - started);
    if (Object.keys(failed).length) logger.warn('models preloaded, some failed', { loaded, failed, ms });
    else logger.info('models preloaded', { loaded, ms });
    // Their calls fail by name until the model is fixed; said here, before any request meets it.
    const bad = await answersNotProbabilities(
      members.filter((m) => loaded.includes(m.id)),
      chosen.onnx,
    );
    for (const [model, reason] of Object.entries(bad)) {
      logger.error('model answers are not probabilities', { model, reason });
    }
  } catch {
    // Configuration problems are reported by the handler, with the invocation that meets them.
  }
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
