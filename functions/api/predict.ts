import { randomUUID } from 'node:crypto';
import { routeRequest } from '../core/canary.js';
import type { PredictionRecord } from '../core/combine.js';
import { PayloadTooLargeError, ValidationError } from '../core/errors.js';
import { validateInstances } from '../core/instances.js';
import type { EnsembleSpec, Manifest } from '../core/manifest.js';
import type { IdempotencyStore, InferenceExecutor, PredictionStore } from '../core/ports.js';
import { type FanOutMember, fanOutMembers, type TimeoutCut, withinBudget } from '../core/targets.js';
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
  /** The canary split's coin for requests without a client id (canary.evenlySpread by default). */
  random?: () => number;
  /**
   * Seconds a member may run on this request and still leave time to combine and answer (see
   * memberBudgetSeconds: the API function's remaining time less a margin, and the runner's limit):
   * longer member timeouts are cut to it.
   */
  memberBudgetSeconds?: () => number;
  /** Told once per request whose members' timeouts were cut to the budget. */
  onBudgetCut?: (cut: TimeoutCut[]) => void;
}

const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** A prediction and whether it was scored now or replayed from the store for a repeated id. */
export interface PredictOutcome {
  record: PredictionRecord;
  replayed: boolean;
  /** Set for an ensemble with a result cache: whether this answer came from it. */
  cache?: CacheStatus;
}

/** The fan-out's members, their timeouts cut to the request's budget when it has one. */
function membersWithinBudget(members: FanOutMember[], deps: PredictDeps): FanOutMember[] {
  const budget = deps.memberBudgetSeconds?.();
  return budget === undefined ? members : withinBudget(members, budget, deps.onBudgetCut);
}

/**
 * Scores `rawInstances` with `target`, or with its canary for the canary's share of requests
 * (canary.ts: deterministic by `routingKey`, the client id unless given). A client id is
 * idempotent (idempotency.ts): the request runs once; a repeat gets the stored record, or a 409
 * when its ensemble or instances differ. The ensemble a client id stands for is the one the
 * request named, whichever side served it.
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
  const served = routeRequest(
    deps.manifest,
    target,
    routingKey ?? (clientId as string | undefined),
    deps.random,
  );
  let cache: CacheStatus | undefined;
  // Under a client id this runs at most once (runOnce); a result-cache hit is stored like any answer.
  // The ensemble that serves answers, from its own cache or its own fan-out (shadows included).
  const run = async (id: string): Promise<PredictionRecord> => {
    const createdAt = (deps.now?.() ?? new Date()).toISOString();
    const cached = await answerFromCache(served, instances, { id, createdAt, routedFrom: target.name }, deps);
    cache = cached.status;
    if (cached.record) return cached.record;
    return deps.executor.run({
      id,
      ensemble: served.name,
      requested: target.name,
      createdAt,
      instances,
      members: membersWithinBudget(fanOutMembers(deps.manifest, served), deps),
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
