import { randomUUID } from 'node:crypto';
import type { PredictionRecord } from '../core/combine.js';
import { ConflictError, RequestInProgressError } from '../core/errors.js';
import type { IdEntry, IdempotencyStore } from '../core/ports.js';
import { requestHash } from '../core/request-hash.js';

/**
 * How long a claim holds an id: longer than the longest inference execution (the inference state
 * machine's TimeoutSeconds is 60), so a claim never expires under a request still running; a
 * claim left by a request that died unanswered frees the id after this.
 */
export const CLAIM_SECONDS = 70;

/** How long a concurrent repeat waits for the first request's answer before a retryable 409. */
export const WAIT_MS = 10_000;

/** What idempotency needs; the clock and the sleep are injectable for tests. */
export interface IdempotencyDeps {
  store: IdempotencyStore;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
  waitMs?: number;
}

/** A prediction and whether it was scored now or replayed from the store for a repeated id. */
export interface Answer {
  record: PredictionRecord;
  replayed: boolean;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs a request under a client id at most once, as Powertools Idempotency does: the id is claimed
 * with a conditional write (with the request's hash and an expiry) before `run` starts; a repeat
 * with the same request gets the stored record (`replayed`), with another request a 409 naming the
 * id; a repeat while the first still runs waits for its answer, up to `waitMs`, then gets a
 * retryable 409. A run that fails releases its claim, so the id can be retried at once.
 */
export async function runOnce(
  id: string,
  ensemble: string,
  instances: readonly (readonly number[])[],
  deps: IdempotencyDeps,
  run: () => Promise<PredictionRecord>,
): Promise<Answer> {
  const hash = requestHash(ensemble, instances);
  const now = () => (deps.now?.() ?? new Date()).getTime();
  const deadline = now() + (deps.waitMs ?? WAIT_MS);
  let pause = 10;
  for (;;) {
    const token = randomUUID();
    const claim = await deps.store.claim(
      { id, token, requestHash: hash, ensemble, expiresAt: now() + CLAIM_SECONDS * 1000 },
      now(),
    );
    if (claim.claimed) {
      let record: PredictionRecord;
      try {
        record = await run();
      } catch (err) {
        await deps.store.release(id, token).catch(() => undefined);
        throw err;
      }
      // Ours, unless another run completed the id first (possible only after a claim expired).
      if (askedFor(record) === ensemble) return { record, replayed: false };
      const entry = await deps.store.getEntry(id);
      return replay(
        id,
        ensemble,
        hash,
        entry?.state === 'completed' ? entry : { state: 'completed', record },
      );
    }
    const existing = claim.existing;
    if (existing?.state === 'completed') return replay(id, ensemble, hash, existing);
    if (existing) {
      conflictUnlessSame(id, ensemble, hash, existing.ensemble, existing.requestHash);
      if (now() >= deadline) {
        throw new RequestInProgressError(
          `a request with id "${id}" is still running; retry in a second for its answer`,
          { details: { field: 'id', id, retryAfterSeconds: 1 }, headers: { 'retry-after': '1' } },
        );
      }
      await (deps.sleep ?? sleep)(pause);
      pause = Math.min(pause * 2, 200);
    }
  }
}

function replay(
  id: string,
  ensemble: string,
  hash: string,
  entry: Extract<IdEntry, { state: 'completed' }>,
): Answer {
  conflictUnlessSame(id, ensemble, hash, askedFor(entry.record), entry.requestHash);
  return { record: entry.record, replayed: true };
}

/** The ensemble a record's request named: its canary may have served it (`routedFrom`). */
const askedFor = (record: PredictionRecord): string => record.routedFrom ?? record.ensemble;

/** A 409 naming the id unless the stored request is this one (records from before hashes: by ensemble). */
function conflictUnlessSame(
  id: string,
  ensemble: string,
  hash: string,
  storedEnsemble: string,
  storedHash: string | undefined,
): void {
  if (storedEnsemble !== ensemble) {
    throw new ConflictError(`id "${id}" was already used for "${storedEnsemble}", not "${ensemble}"`, {
      details: { field: 'id', id },
    });
  }
  if (storedHash !== undefined && storedHash !== hash) {
    throw new ConflictError(
      `id "${id}" was already used for another request to "${ensemble}" (other instances); a new request needs a new id`,
      { details: { field: 'id', id } },
    );
  }
}
