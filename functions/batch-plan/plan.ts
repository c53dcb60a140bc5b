import type { GoodRow } from '../core/batch-rows.js';
import { rowCacheKeys } from '../core/cache-key.js';
import type { EnsemblePrediction } from '../core/combine.js';
import { ValidationError } from '../core/errors.js';
import type { Manifest } from '../core/manifest.js';
import type { ResultCache } from '../core/ports.js';
import { type CacheObserver, hasCache, lookupFresh } from '../core/result-cache.js';
import { type FanOutMember, resolveTarget } from '../core/targets.js';

/** One Distributed Map batch as the child execution hands it over: the job and its rows. */
export interface PlanEvent {
  jobId: string;
  ensemble: string;
  members: FanOutMember[];
  items: GoodRow[];
}

/**
 * What the members must score for a batch, and where each row's answer comes from. It replaces
 * the batch's rows in the child execution's state, so it stays no larger than they were: the
 * distinct rows to score (not every row), the cached predictions (small), lines and ids.
 */
export interface BatchPlan {
  jobId: string;
  ensemble: string;
  members: FanOutMember[];
  lines: number[];
  ids: string[];
  /** The distinct rows the members score, in first-seen order. */
  instances: number[][];
  /** `instances.length`, for the state machine's Choice (nothing to score: skip the members). */
  scored: number;
  /** Per row: `i >= 0` is `instances[i]`'s answer, `i < 0` is `cached[-i - 1]`. */
  source: number[];
  /** Predictions read from the result cache, one per distinct cached row. */
  cached: EnsemblePrediction[];
}

/** What planning needs: the manifest, and the result cache when this deployment has one. */
export interface PlanDeps {
  manifest: Manifest;
  cache?: ResultCache;
  onCacheResult?: CacheObserver;
  warn?: (message: string, data: Record<string, unknown>) => void;
  now?: () => Date;
}

/**
 * Plans one batch: a row repeated within the batch is scored once, and for an ensemble with a
 * result cache a row with a fresh entry is not scored at all (its stored prediction is used). A
 * cache read failure plans the batch as if nothing were cached, with a warning.
 */
export async function planBatch(event: PlanEvent, deps: PlanDeps): Promise<BatchPlan> {
  check(event);
  const target = resolveTarget(deps.manifest, event.ensemble, true);
  const keys = rowCacheKeys(
    target,
    deps.manifest.models,
    event.items.map((r) => r.features),
  );
  let fresh = new Map<string, { prediction: EnsemblePrediction }>();
  if (deps.cache && hasCache(target)) {
    const found = await lookupFresh(deps.cache, target, keys, deps.now?.() ?? new Date());
    if (found.error) {
      deps.warn?.('result cache read failed; scoring the batch uncached', {
        jobId: event.jobId,
        ensemble: target.name,
        reason: found.error,
      });
    }
    fresh = found.entries;
    const distinct = new Set(keys).size;
    deps.onCacheResult?.({
      ensemble: target.name,
      path: 'batch',
      hits: fresh.size,
      misses: distinct - fresh.size,
      errors: found.error ? 1 : 0,
    });
  }
  const instances: number[][] = [];
  const cached: EnsemblePrediction[] = [];
  const slot = new Map<string, number>();
  const source = event.items.map((item, i) => {
    const key = keys[i] as string;
    let s = slot.get(key);
    if (s === undefined) {
      const entry = fresh.get(key);
      if (entry) {
        cached.push(entry.prediction);
        s = -cached.length;
      } else {
        instances.push(item.features);
        s = instances.length - 1;
      }
      slot.set(key, s);
    }
    return s;
  });
  return {
    jobId: event.jobId,
    ensemble: event.ensemble,
    members: event.members,
    lines: event.items.map((r) => r.line),
    ids: event.items.map((r) => r.id),
    instances,
    scored: instances.length,
    source,
    cached,
  };
}

function check(event: PlanEvent): void {
  const problems: string[] = [];
  if (typeof event?.jobId !== 'string') problems.push('"jobId" must be a string');
  if (typeof event?.ensemble !== 'string') problems.push('"ensemble" must be a string');
  if (!Array.isArray(event?.members)) problems.push('"members" must be the members to run');
  if (!Array.isArray(event?.items) || event.items.length === 0) {
    problems.push('"items" must be a non-empty array of rows');
  } else {
    const bad = event.items.findIndex(
      (r) =>
        r === null ||
        typeof r !== 'object' ||
        typeof r.line !== 'number' ||
        !Array.isArray(r.features) ||
        !r.features.every((v) => typeof v === 'number'),
    );
    if (bad >= 0) problems.push(`items[${bad}] must be {line, id, features: number[]}`);
  }
  if (problems.length) throw new ValidationError(`batch plan event: ${problems.join('; ')}`);
}
