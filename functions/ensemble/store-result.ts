import { type AgreementReport, agreementReport } from '../core/agreement.js';
import { combine, fanOutOutcomes, memberInfoFrom, type PredictionRecord } from '../core/combine.js';
import { FanoutError, ValidationError } from '../core/errors.js';
import type { EnsembleSpec, Manifest } from '../core/manifest.js';
import { type MemberObservation, memberObservations } from '../core/outcomes.js';
import type { PredictionStore, ResultCache } from '../core/ports.js';
import { type CacheObserver, hasCache, storeFresh } from '../core/result-cache.js';
import { resolveTarget } from '../core/targets.js';

/** What the state machine hands the ensemble step after the fan-out. */
export interface EnsembleEvent {
  id: string;
  /** The ensemble that serves (the one requested, or its canary). */
  ensemble: string;
  /** The ensemble the request named; differs from `ensemble` when its canary serves. */
  requested?: string;
  createdAt: string;
  rows: number;
  members: unknown[];
  /** The request's validated rows (feature order): the result cache's keys are made from them. */
  instances?: unknown;
}

/** Where the ensemble step puts answers for the result cache; without it nothing is cached. */
export interface CacheFill {
  cache: ResultCache;
  warn: (message: string, data: Record<string, unknown>) => void;
  onCacheResult?: CacheObserver;
  now?: () => Date;
}

/** Where the ensemble step reports what it learnt beyond the answer (metrics, in the handler). */
export interface EnsembleHooks {
  /** How each member (shadows included) and the canary's other side agreed with the answer. */
  onAgreement?: (report: AgreementReport) => void;
}

/**
 * The ensemble step's answer. A quorum failure is an answer, not a crash: the state machine's
 * Choice sends it to a Fail state whose Cause is `cause`, so the API can say which members failed.
 * `members` says how each member's call went, for the metrics (both outcomes have one).
 */
export type EnsembleResult =
  | { outcome: 'ok'; created: boolean; record: PredictionRecord; members: MemberObservation[] }
  | { outcome: 'failed'; error: string; cause: string; members: MemberObservation[] };

/**
 * Combines the members' outcomes with the ensemble's strategy and quorum, and stores the record.
 * For an ensemble with a result cache, a non-degraded answer is also written to the cache, one
 * entry per row, at the same time as the record (so the fill adds no wait of its own); a failed
 * cache write is logged and never fails the step.
 * A newly stored record's agreement report goes to `hooks.onAgreement` (a repeated id's does not:
 * its answer was counted when it was first stored).
 */
export async function storeResult(
  event: EnsembleEvent,
  manifest: Manifest,
  store: PredictionStore,
  fill?: CacheFill,
  hooks: EnsembleHooks = {},
): Promise<EnsembleResult> {
  checkEvent(event);
  const ensemble = resolveTarget(manifest, event.ensemble, true);
  let record: PredictionRecord;
  try {
    record = combine(ensemble, event.members, event.rows, memberInfoFrom(manifest), {
      id: event.id,
      createdAt: event.createdAt,
      routedFrom: event.requested,
    });
  } catch (err) {
    if (err instanceof FanoutError && err.status === 503) {
      return {
        outcome: 'failed',
        error: err.name,
        cause: JSON.stringify({ code: err.code, message: err.message, details: err.details }),
        members: memberObservations(
          fanOutOutcomes(ensemble, event.members, event.rows, memberInfoFrom(manifest)),
          event.rows,
        ),
      };
    }
    throw err;
  }
  const [stored] = await Promise.all([
    store.putPrediction(record),
    fill && hasCache(ensemble) ? fillCache(ensemble, manifest, event, record, fill) : undefined,
  ]);
  if (stored.created && hooks.onAgreement) {
    hooks.onAgreement(agreementReport(manifest, ensemble, record, event.members));
  }
  // Observed from this call's record: a repeated id's stored record may hold another call's members.
  const members = memberObservations(record.members, event.rows);
  return { outcome: 'ok', created: stored.created, record: stored.record, members };
}

async function fillCache(
  ensemble: EnsembleSpec & { cache: { ttlSeconds: number } },
  manifest: Manifest,
  event: EnsembleEvent,
  record: PredictionRecord,
  fill: CacheFill,
): Promise<void> {
  if (record.degraded) return;
  const rows = event.instances;
  if (!isRows(rows, event.rows, ensemble.features.length)) {
    fill.warn('result cache not filled: the event carries no valid instances', {
      id: event.id,
      ensemble: ensemble.name,
    });
    return;
  }
  const { error } = await storeFresh(
    fill.cache,
    ensemble,
    manifest.models,
    record,
    rows,
    fill.now?.() ?? new Date(),
  );
  if (error) {
    fill.warn('result cache write failed; the answer is stored, not cached', {
      id: event.id,
      ensemble: ensemble.name,
      reason: error,
    });
    fill.onCacheResult?.({ ensemble: ensemble.name, path: 'sync', hits: 0, misses: 0, errors: 1 });
  }
}

function isRows(value: unknown, rows: number, width: number): value is number[][] {
  return (
    Array.isArray(value) &&
    value.length === rows &&
    value.every(
      (r) =>
        Array.isArray(r) && r.length === width && r.every((v) => typeof v === 'number' && Number.isFinite(v)),
    )
  );
}

function checkEvent(event: EnsembleEvent): void {
  const problems: string[] = [];
  if (typeof event?.id !== 'string' || !event.id) problems.push('"id" must be a non-empty string');
  if (typeof event?.ensemble !== 'string') problems.push('"ensemble" must be a string');
  if (event?.requested !== undefined && typeof event.requested !== 'string') {
    problems.push('"requested" must be a string when given');
  }
  if (typeof event?.createdAt !== 'string') problems.push('"createdAt" must be an ISO timestamp string');
  if (!Number.isInteger(event?.rows) || event.rows < 1) problems.push('"rows" must be a positive integer');
  if (!Array.isArray(event?.members)) problems.push('"members" must be an array of member results');
  if (problems.length) throw new ValidationError(`ensemble event: ${problems.join('; ')}`);
}
