import { randomUUID } from 'node:crypto';
import type { PredictionRecord } from '../core/combine.js';
import { ConflictError, PayloadTooLargeError, ValidationError } from '../core/errors.js';
import { validateInstances } from '../core/instances.js';
import type { EnsembleSpec, Manifest } from '../core/manifest.js';
import type { InferenceExecutor, PredictionStore } from '../core/ports.js';
import { answerFromCache, type CachedAnswerDeps, type CacheStatus } from './cached-answer.js';

/** What the prediction use case needs from the outside world. */
export interface PredictDeps extends CachedAnswerDeps {
  manifest: Manifest;
  store: PredictionStore;
  executor: InferenceExecutor;
  maxInstances: number;
  now?: () => Date;
}

const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** A prediction and whether it was scored now or replayed from the store for a repeated id. */
export interface PredictOutcome {
  record: PredictionRecord;
  replayed: boolean;
  /** Set for an ensemble with a result cache: whether this answer came from it. */
  cache?: CacheStatus;
}

/**
 * Scores `rawInstances` with `target`. A client id is idempotent: a stored record with that id is
 * returned without scoring again (409 if it was for another target); concurrent repeats are
 * settled by the ensemble step's conditional write.
 */
export async function predict(
  target: EnsembleSpec,
  rawInstances: unknown,
  clientId: unknown,
  deps: PredictDeps,
): Promise<PredictOutcome> {
  if (clientId !== undefined && (typeof clientId !== 'string' || !CLIENT_ID.test(clientId))) {
    throw new ValidationError(
      'id must be a string of 1-128 letters, digits, ".", "_", ":" or "-", starting with a letter or digit',
      { details: { field: 'id' } },
    );
  }
  if (Array.isArray(rawInstances) && rawInstances.length > deps.maxInstances) {
    throw new PayloadTooLargeError(
      `${rawInstances.length} instances; a synchronous request takes at most ${deps.maxInstances} (upload a file for batch scoring)`,
      { details: { field: 'instances', limit: deps.maxInstances, received: rawInstances.length } },
    );
  }
  const instances = validateInstances(rawInstances, target.features);
  if (typeof clientId === 'string') {
    const existing = await deps.store.getPrediction(clientId);
    if (existing) return { record: checkSameTarget(existing, target), replayed: true };
  }
  const id = typeof clientId === 'string' ? clientId : randomUUID();
  const createdAt = (deps.now?.() ?? new Date()).toISOString();
  const cached = await answerFromCache(target, instances, { id, createdAt }, deps);
  if (cached.record) return { record: checkSameTarget(cached.record, target), replayed: false, cache: 'hit' };
  const record = await deps.executor.run({
    id,
    ensemble: target.name,
    createdAt,
    instances,
    members: target.members.map((model) => ({
      model,
      timeoutSeconds: deps.manifest.models.get(model)?.timeoutSeconds ?? 10,
    })),
  });
  // A concurrent request with the same id may have won the conditional write.
  return { record: checkSameTarget(record, target), replayed: false, cache: cached.status };
}

function checkSameTarget(record: PredictionRecord, target: EnsembleSpec): PredictionRecord {
  if (record.ensemble !== target.name) {
    throw new ConflictError(
      `id "${record.id}" was already used for "${record.ensemble}", not "${target.name}"`,
      {
        details: { field: 'id' },
      },
    );
  }
  return record;
}
