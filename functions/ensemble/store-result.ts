import { collectOutcomes, combine, memberInfoFrom, type PredictionRecord } from '../core/combine.js';
import { FanoutError, ValidationError } from '../core/errors.js';
import type { Manifest } from '../core/manifest.js';
import { type MemberObservation, memberObservations } from '../core/outcomes.js';
import type { PredictionStore } from '../core/ports.js';
import { resolveTarget } from '../core/targets.js';

/** What the state machine hands the ensemble step after the fan-out. */
export interface EnsembleEvent {
  id: string;
  ensemble: string;
  createdAt: string;
  rows: number;
  members: unknown[];
}

/**
 * The ensemble step's answer. A quorum failure is an answer, not a crash: the state machine's
 * Choice sends it to a Fail state whose Cause is `cause`, so the API can say which members failed.
 * `members` says how each member's call went, for the metrics (both outcomes have one).
 */
export type EnsembleResult =
  | { outcome: 'ok'; created: boolean; record: PredictionRecord; members: MemberObservation[] }
  | { outcome: 'failed'; error: string; cause: string; members: MemberObservation[] };

/** Combines the members' outcomes with the ensemble's strategy and quorum, and stores the record. */
export async function storeResult(
  event: EnsembleEvent,
  manifest: Manifest,
  store: PredictionStore,
): Promise<EnsembleResult> {
  checkEvent(event);
  const ensemble = resolveTarget(manifest, event.ensemble, true);
  let record: PredictionRecord;
  try {
    record = combine(ensemble, event.members, event.rows, memberInfoFrom(manifest), {
      id: event.id,
      createdAt: event.createdAt,
    });
  } catch (err) {
    if (err instanceof FanoutError && err.status === 503) {
      return {
        outcome: 'failed',
        error: err.name,
        cause: JSON.stringify({ code: err.code, message: err.message, details: err.details }),
        members: memberObservations(collectOutcomes(ensemble, event.members, event.rows), event.rows),
      };
    }
    throw err;
  }
  const stored = await store.putPrediction(record);
  // Observed from this call's record: a repeated id's stored record may hold another call's members.
  const members = memberObservations(record.members, event.rows);
  return { outcome: 'ok', created: stored.created, record: stored.record, members };
}

function checkEvent(event: EnsembleEvent): void {
  const problems: string[] = [];
  if (typeof event?.id !== 'string' || !event.id) problems.push('"id" must be a non-empty string');
  if (typeof event?.ensemble !== 'string') problems.push('"ensemble" must be a string');
  if (typeof event?.createdAt !== 'string') problems.push('"createdAt" must be an ISO timestamp string');
  if (!Number.isInteger(event?.rows) || event.rows < 1) problems.push('"rows" must be a positive integer');
  if (!Array.isArray(event?.members)) problems.push('"members" must be an array of member results');
  if (problems.length) throw new ValidationError(`ensemble event: ${problems.join('; ')}`);
}
