import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { PredictionRecord } from '../core/combine.js';
import { NotFoundError, ValidationError } from '../core/errors.js';
import type { JobStore } from '../core/ports.js';
import { resolveTarget } from '../core/targets.js';
import { listEnsembles, modelMetadata, targetReadiness, targetVersion } from './catalog.js';
import { type HttpResponse, json, readJsonBody } from './http.js';
import { apiLogger as logger } from './log.js';
import { compileRouteKeys, unroutedError } from './method-check.js';
import { decodeInferRequest, encodeInferResponse } from './oip.js';
import { type PredictDeps, predict } from './predict.js';

/** Everything the routes use; built once per process by the handler, faked in tests. */
export interface ApiDeps extends PredictDeps {
  jobs: JobStore;
  maxBodyBytes: number;
  /** Members that failed the start check, with the reason, by model id (empty when all are ready). */
  notReady: () => ReadonlyMap<string, string>;
}

/** What a prediction route answered, for the handler's metrics and trace (one per request). */
export interface RouteSeen {
  prediction?: { record: PredictionRecord; replayed: boolean };
}

type Route = (
  event: APIGatewayProxyEventV2,
  deps: ApiDeps,
  seen?: RouteSeen,
) => Promise<HttpResponse> | HttpResponse;

const param = (event: APIGatewayProxyEventV2, name: string): string => {
  const value = event.pathParameters?.[name];
  if (!value) throw new ValidationError(`path parameter {${name}} is missing`);
  return decodeURIComponent(value);
};

/** Routes by API Gateway route key; serverless.yml declares the same keys. */
export const routes: Record<string, Route> = {
  'POST /v1/ensembles/{ensemble}/predictions': async (event, deps, seen) => {
    const target = resolveTarget(deps.manifest, param(event, 'ensemble'), false);
    const body = readJsonBody(event, deps.maxBodyBytes);
    const { record, replayed, cache } = await predict(target, body.instances, body.id, deps);
    logPrediction(event, record, replayed, seen);
    return json(200, record, {
      ...(replayed ? { 'idempotent-replay': 'true' } : {}),
      ...(cache ? { 'cache-status': cache } : {}),
    });
  },

  'GET /v1/predictions/{id}': async (event, deps) => {
    const id = param(event, 'id');
    const entry = await deps.store.getEntry(id);
    if (entry?.state === 'completed') return json(200, entry.record);
    throw new NotFoundError(
      entry ? `prediction "${id}" is still being computed; retry shortly` : `no prediction with id "${id}"`,
    );
  },

  'GET /v1/ensembles': (_event, deps) => json(200, listEnsembles(deps.manifest, deps.notReady())),

  'GET /v1/jobs/{jobId}': async (event, deps) => {
    const jobId = param(event, 'jobId');
    const job = await deps.jobs.getJob(jobId);
    if (!job) throw new NotFoundError(`no batch job with id "${jobId}"`);
    return json(200, job);
  },

  'GET /v2': (_event, deps) =>
    json(200, {
      name: 'fanout',
      version: '1',
      extensions: [],
      models: [...deps.manifest.ensembles.keys(), ...deps.manifest.models.keys()],
    }),

  'GET /v2/health/live': () => json(200, { live: true }),

  // Ready when every served model is (the Open Inference Protocol's rule); each ensemble still
  // answers while its quorum of members is ready, so this names what is not.
  'GET /v2/health/ready': (_event, deps) => {
    const notReady = [...deps.notReady()].map(([name, reason]) => ({ name, reason }));
    if (notReady.length === 0) return json(200, { ready: true });
    const reason = `${notReady.length} model${notReady.length > 1 ? 's' : ''} not ready: ${notReady.map((m) => m.reason).join('; ')}`;
    return json(503, { ready: false, reason, models: notReady });
  },

  'GET /v2/models/{name}': (event, deps) => json(200, modelMetadata(deps.manifest, param(event, 'name'))),

  'GET /v2/models/{name}/ready': (event, deps) => {
    const readiness = targetReadiness(
      resolveTarget(deps.manifest, param(event, 'name'), true),
      deps.notReady(),
    );
    return json(readiness.ready ? 200 : 503, readiness);
  },

  'POST /v2/models/{name}/infer': async (event, deps, seen) => {
    const target = resolveTarget(deps.manifest, param(event, 'name'), true);
    const request = decodeInferRequest(readJsonBody(event, deps.maxBodyBytes), target);
    // No client id (OIP has no idempotency key), but the request id keeps its canary side.
    const { record, cache } = await predict(target, request.rows, undefined, deps, request.id);
    logPrediction(event, record, false, seen);
    const version = targetVersion(deps.manifest, record.ensemble);
    return json(
      200,
      encodeInferResponse(record, target, request, version),
      cache ? { 'cache-status': cache } : {},
    );
  },
};

const routeKeys = compileRouteKeys(Object.keys(routes));

/**
 * Finds the route for an event's route key. API Gateway sends a request that no declared route
 * takes to `$default`: that is a 405 with `allow` for a known path, else a 404.
 */
export function findRoute(event: APIGatewayProxyEventV2): Route {
  const route = routes[event.routeKey];
  if (!route) {
    throw unroutedError(
      routeKeys,
      (event.requestContext?.http?.method ?? '?').toUpperCase(),
      event.rawPath ?? event.requestContext?.http?.path ?? event.routeKey,
    );
  }
  return route;
}

/**
 * One line per answered prediction: ids, ensemble, member statuses and latencies, no features.
 * The handler's metrics and trace read the same facts from `seen`.
 */
function logPrediction(
  event: APIGatewayProxyEventV2,
  record: PredictionRecord,
  replayed: boolean,
  seen: RouteSeen | undefined,
): void {
  if (seen) seen.prediction = { record, replayed };
  logger.info('prediction', {
    requestId: event.requestContext?.requestId,
    id: record.id,
    ensemble: record.ensemble,
    ...(record.routedFrom ? { routedFrom: record.routedFrom } : {}),
    rows: record.predictions.length,
    degraded: record.degraded,
    replayed,
    ...(record.cached ? { cached: true } : {}),
    members: record.members.map((m) => ({
      model: m.model,
      status: m.status,
      latencyMs: m.latencyMs,
      ...(m.shadow ? { shadow: true } : {}),
    })),
  });
}
