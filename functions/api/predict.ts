import { randomUUID } from 'node:crypto';
import { routeRequest } from '../core/canary.js';
import type { PredictionRecord } from '../core/combine.js';
import { ConflictError, PayloadTooLargeError, ValidationError } from '../core/errors.js';
import { validateInstances } from '../core/instances.js';
import type { EnsembleSpec, Manifest } from '../core/manifest.js';
import type { InferenceExecutor, PredictionStore } from '../core/ports.js';
import { fanOutMembers } from '../core/targets.js';

/** What the prediction use case needs from the outside world. */
export interface PredictDeps {
  manifest: Manifest;
  store: PredictionStore;
  executor: InferenceExecutor;
  maxInstances: number;
  now?: () => Date;
  /** The canary split's coin for requests without a client id (Math.random by default). */
  random?: () => number;
}

const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** A prediction and whether it was scored now or replayed from the store for a repeated id. */
export interface PredictOutcome {
  record: PredictionRecord;
  replayed: boolean;
}

/**
 * Scores `rawInstances` with `target`, or with its canary for the canary's share of requests
 * (deterministic by `routingKey`, the client id unless given). A client id is idempotent: a stored
 * record with that id is returned without scoring again (409 if it was for another target);
 * concurrent repeats are settled by the ensemble step's conditional write.
 */
export async function predict(
  target: EnsembleSpec,
  rawInstances: unknown,
  clientId: unknown,
  deps: PredictDeps,
  routingKey?: string,
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
  const served = routeRequest(
    deps.manifest,
    target,
    routingKey ?? (clientId as string | undefined),
    deps.random,
  );
  const record = await deps.executor.run({
    id,
    ensemble: served.name,
    requested: target.name,
    createdAt: (deps.now?.() ?? new Date()).toISOString(),
    instances,
    members: fanOutMembers(deps.manifest, served),
  });
  // A concurrent request with the same id may have won the conditional write.
  return { record: checkSameTarget(record, target), replayed: false };
}

/** A record answers a request to `target` when `target` served it or routed it to its canary. */
function checkSameTarget(record: PredictionRecord, target: EnsembleSpec): PredictionRecord {
  if (record.ensemble !== target.name && record.routedFrom !== target.name) {
    throw new ConflictError(
      `id "${record.id}" was already used for "${record.routedFrom ?? record.ensemble}", not "${target.name}"`,
      {
        details: { field: 'id' },
      },
    );
  }
  return record;
}
