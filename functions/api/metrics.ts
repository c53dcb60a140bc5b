import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { MetricsRecorder } from '../adapters/metrics.js';
import { FanoutError } from '../core/errors.js';
import type { Manifest } from '../core/manifest.js';
import { servedOrUnknown } from '../core/targets.js';
import type { RouteSeen } from './routes.js';

/** The routes that score: only these are counted per ensemble. */
const PREDICTION_ROUTES = new Set([
  'POST /v1/ensembles/{ensemble}/predictions',
  'POST /v2/models/{name}/infer',
]);

/** One answered request, as the API handler saw it. */
export interface AnsweredRequest {
  event: APIGatewayProxyEventV2;
  status: number;
  /** What the route threw, if it did. */
  error?: unknown;
  seen: RouteSeen;
  latencyMs: number;
}

/**
 * The ensemble a prediction request is counted under: the one that served it, else the one its
 * path names if the manifest serves it, else "unknown" (a path segment is the client's text: as a
 * dimension it would let any client create metrics).
 */
export function ensembleOf(request: AnsweredRequest, manifest: Manifest | undefined): string {
  const served = request.seen.prediction?.record.ensemble;
  if (served) return served;
  const named = request.event.pathParameters?.ensemble ?? request.event.pathParameters?.name;
  return manifest ? servedOrUnknown(manifest, named) : 'unknown';
}

/**
 * Records a prediction request's metrics (other routes record none): one request, its latency and
 * degraded flag when scored, a replay, a quorum miss, or the error code of a 4xx or 5xx. The line
 * carries the prediction id, the status, the members that did not answer and whether the answer came
 * from the result cache as metadata, which the local dashboard lists as recent predictions. The
 * cache's own counts are recorded by the handler's cache observer (functions/adapters/cache-metrics.ts).
 */
export function recordRequest(
  metrics: MetricsRecorder,
  request: AnsweredRequest,
  manifest: Manifest | undefined,
): void {
  if (!PREDICTION_ROUTES.has(request.event.routeKey)) return;
  const ensemble = ensembleOf(request, manifest);
  const code = request.error === undefined ? undefined : errorCode(request.error);
  const prediction = request.seen.prediction;
  metrics
    .add('Requests', 1, { ensemble })
    .add('QuorumMisses', code === 'quorum_not_met' ? 1 : 0, { ensemble });
  const metadata: Record<string, string | number | boolean> = { httpStatus: request.status };
  if (prediction) {
    const { record, replayed } = prediction;
    metadata.predictionId = record.id;
    metadata.degraded = record.degraded;
    metadata.replayed = replayed;
    // A result-cache hit: the dashboard marks it (its members did not run).
    if (record.cached) metadata.cached = true;
    const failed = record.members.filter((m) => m.status !== 'ok');
    if (failed.length) metadata.failedMembers = failed.map((m) => `${m.model}:${m.status}`).join(',');
    if (replayed) metrics.add('IdempotentReplays', 1, { ensemble });
    else {
      metrics.add('RequestLatency', request.latencyMs, { ensemble });
      metrics.add('DegradedAnswers', record.degraded ? 1 : 0, { ensemble });
    }
  } else if (code) {
    metadata.errorCode = code;
    const failed = code === 'quorum_not_met' ? failedMembersOf(request.error) : undefined;
    if (failed) metadata.failedMembers = failed;
    if (request.status >= 500 && code !== 'quorum_not_met')
      metrics.add('ServerErrors', 1, { ensemble, code });
    if (request.status >= 400 && request.status < 500) metrics.add('ClientErrors', 1, { ensemble, code });
  }
  metrics.setMetadata(metadata);
}

function errorCode(err: unknown): string {
  return err instanceof FanoutError && err.status !== 500 ? err.code : 'internal_error';
}

/** `model:status,...` from a quorum miss's details (which members failed and how). */
function failedMembersOf(err: unknown): string | undefined {
  const failed = (err as FanoutError).details as
    | { failed?: { model?: unknown; status?: unknown }[] }
    | undefined;
  const list = (failed?.failed ?? []).filter((f) => typeof f.model === 'string');
  return list.length ? list.map((f) => `${f.model}:${String(f.status)}`).join(',') : undefined;
}
