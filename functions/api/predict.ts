import { randomUUID } from 'node:crypto';
import type { PredictionRecord } from '../core/combine.js';
import { PayloadTooLargeError, ValidationError } from '../core/errors.js';
import { validateInstances } from '../core/instances.js';
import type { EnsembleSpec, Manifest } from '../core/manifest.js';
import type { IdempotencyStore, InferenceExecutor, PredictionStore } from '../core/ports.js';
import { answerFromCache, type CachedAnswerDeps, type CacheStatus } from './cached-answer.js';
import { runOnce } from './idempotency.js';

/** What the prediction use case needs from the outside world. */
export interface PredictDeps extends CachedAnswerDeps {
  manifest: Manifest;
  store: PredictionStore & IdempotencyStore;
  executor: InferenceExecutor;
  maxInstances: number;
  now?: () => Date;
  /** How long a repeat waits for a running request with its id (tests shorten it). */
  idempotencyWaitMs?: number;
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
 * Scores `rawInstances` with `target`. A client id is idempotent (idempotency.ts): the request runs
 * once; a repeat gets the stored record, or a 409 when its ensemble or instances differ.
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
  let cache: CacheStatus | undefined;
  // Under a client id this runs at most once (runOnce); a result-cache hit is stored like any answer.
  const run = async (id: string): Promise<PredictionRecord> => {
    const createdAt = (deps.now?.() ?? new Date()).toISOString();
    const cached = await answerFromCache(target, instances, { id, createdAt }, deps);
    cache = cached.status;
    if (cached.record) return cached.record;
    return deps.executor.run({
      id,
      ensemble: target.name,
      createdAt,
      instances,
      members: target.members.map((model) => ({
        model,
        timeoutSeconds: deps.manifest.models.get(model)?.timeoutSeconds ?? 10,
      })),
    });
  };
  if (typeof clientId !== 'string') {
    const record = await run(randomUUID());
    return { record, replayed: false, cache };
  }
  const answer = await runOnce(
    clientId,
    target.name,
    instances,
    { store: deps.store, now: deps.now, waitMs: deps.idempotencyWaitMs },
    () => run(clientId),
  );
  return answer.replayed ? answer : { ...answer, cache };
}
