import { ModelNotReadyError, NotFoundError, ValidationError } from '../core/errors.js';
import { validateInstances } from '../core/instances.js';
import { getModel, type Manifest } from '../core/manifest.js';
import type { MemberOutcome } from '../core/outcomes.js';
import type { Scorer } from '../core/ports.js';

/** What the state machine hands a runner: one member, the request's rows. */
export interface RunnerEvent {
  model: string;
  instances: unknown;
  /** The prediction id or batch job id, carried into the logs to join them up. */
  correlationId?: string;
}

/** Scorers by model kind. */
export type Scorers = Partial<Record<'onnx' | 'sagemaker', Scorer>>;

/**
 * Scores one member on a batch of instances. Errors name the model: Step Functions' Catch turns
 * them into a failed member result that the ensemble step reports. `notReady` holds the reasons of
 * members that failed the start check, by id.
 */
export async function scoreMember(
  event: RunnerEvent,
  manifest: Manifest,
  scorers: Scorers,
  notReady: ReadonlyMap<string, string> = new Map(),
): Promise<MemberOutcome> {
  if (!event || typeof event.model !== 'string') {
    throw new ValidationError('runner event needs a "model" string naming the member to run');
  }
  const model = getModelNamed(manifest, event.model);
  // A member that failed the start check is not run: its reason says what to fix.
  const reason = notReady.get(model.id);
  if (reason) throw new ModelNotReadyError(reason);
  const rows = validateInstances(event.instances, model.features);
  const scorer = scorers[model.kind];
  if (!scorer)
    throw new ValidationError(`${model.id}: no scorer is configured for ${model.kind} models here`);
  const started = performance.now();
  const probabilities = await scorer.score(model, rows);
  return {
    model: model.id,
    version: model.version,
    kind: model.kind,
    status: 'ok',
    latencyMs: round(performance.now() - started),
    probabilities,
  };
}

function getModelNamed(manifest: Manifest, id: string) {
  try {
    return getModel(manifest, id);
  } catch (err) {
    if (err instanceof NotFoundError) throw new NotFoundError(`${id}: not in the manifest ${manifest.path}`);
    throw err;
  }
}

/** Milliseconds to 0.01 ms: enough for sub-millisecond models, short in JSON. */
export const round = (ms: number) => Math.round(ms * 100) / 100;
