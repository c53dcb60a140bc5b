import { createHash } from 'node:crypto';
import type { EnsembleSpec, Manifest } from './manifest.js';

/** Buckets a request falls into; a canary takes the first `percent * 100` of them. */
export const CANARY_BUCKETS = 10_000;

/**
 * The bucket (0..9999) of a client id for an ensemble: the first four bytes of
 * sha256(`<ensemble>\n<id>`) modulo 10,000. Stable across processes and deployments, so the same
 * id always lands on the same side, and raising a canary's percent keeps every id that was already
 * on the canary there. The ensemble's name is part of the hash so that two ensembles' canaries do
 * not pick the same clients.
 */
export function canaryBucket(ensemble: string, clientId: string): number {
  const digest = createHash('sha256').update(`${ensemble}\n${clientId}`).digest();
  return digest.readUInt32BE(0) % CANARY_BUCKETS;
}

// 1/phi: the additive recurrence with this step spreads any run of consecutive points most evenly.
const GOLDEN_STEP = 0.6180339887498949;
const cursors = new Map<string, number>();

/**
 * The coin for requests without a client id: per ensemble, a golden-ratio sequence from a random
 * start (a low-discrepancy sequence). Each point is uniform in [0, 1) like Math.random, but any
 * run of consecutive requests splits close to the percent: 200 requests to a 10% canary land
 * 19-22 on it, where independent coin flips land below 10 about once in 200 runs.
 */
export function evenlySpread(ensemble: string): number {
  const next = ((cursors.get(ensemble) ?? Math.random()) + GOLDEN_STEP) % 1;
  cursors.set(ensemble, next);
  return next;
}

/**
 * Which ensemble serves a request made to `requested`: its canary for `canary.percent` percent of
 * requests, itself for the rest. With a routing key (the client id) the choice is deterministic
 * by canaryBucket; without one it comes from `random` (in [0, 1); {@link evenlySpread} by default).
 * Batch jobs do not come here: a whole file is scored by the ensemble it names.
 */
export function routeRequest(
  manifest: Manifest,
  requested: EnsembleSpec,
  routingKey: string | undefined,
  random: () => number = () => evenlySpread(requested.name),
): EnsembleSpec {
  const canary = requested.canary;
  if (!canary) return requested;
  const target = manifest.ensembles.get(canary.ensemble);
  if (!target) return requested;
  const bucket =
    routingKey === undefined
      ? Math.floor(random() * CANARY_BUCKETS)
      : canaryBucket(requested.name, routingKey);
  return bucket < canary.percent * (CANARY_BUCKETS / 100) ? target : requested;
}
