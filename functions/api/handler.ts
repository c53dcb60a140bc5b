import middy from '@middy/core';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { cacheObserver } from '../adapters/cache-metrics.js';
import { dynamoDocClient, sfnClient } from '../adapters/clients.js';
import { DynamoResultCache, withMemoryTier } from '../adapters/dynamodb-cache.js';
import { DynamoJobStore } from '../adapters/dynamodb-jobs.js';
import { DynamoPredictionStore } from '../adapters/dynamodb-store.js';
import { errorFields } from '../adapters/logger.js';
import { type MetricsRecorder, metricsOf } from '../adapters/metrics.js';
import { notReady } from '../adapters/model-checks.js';
import { observability } from '../adapters/observability.js';
import { servedModels } from '../adapters/served.js';
import { SfnInferenceExecutor } from '../adapters/sfn-executor.js';
import { annotate } from '../adapters/tracing.js';
import { loadConfig, required } from '../core/config.js';
import { FanoutError } from '../core/errors.js';
import { memberBudgetSeconds, TIMEOUT_CUT_WHY } from '../core/targets.js';
import { errorResponse, type HttpResponse } from './http.js';
import { apiLogger as logger } from './log.js';
import { recordRequest } from './metrics.js';
import { type ApiDeps, findRoute, type RouteSeen } from './routes.js';

let deps: ApiDeps | undefined;

// DynamoDB answers a read in single-digit milliseconds; past this the table is in trouble and the
// members are the quicker way to an answer.
const CACHE_READ_TIMEOUT_MS = 500;

/** Built on first use and reused while the process is warm. */
function defaultDeps(): ApiDeps {
  if (deps) return deps;
  const config = loadConfig();
  const { manifest } = servedModels(config);
  const table = required(config.tableName, 'FANOUT_TABLE');
  // The same start check as the runner's, from the files (the API carries no onnxruntime).
  const down = notReady(manifest);
  deps = {
    manifest,
    store: new DynamoPredictionStore(dynamoDocClient(config), table),
    jobs: new DynamoJobStore(dynamoDocClient(config), table),
    // A cache read waits at most this long before the request runs uncached; a row read once is
    // answered from this instance's memory after that.
    cache: withMemoryTier(
      new DynamoResultCache(dynamoDocClient(config), table, { readTimeoutMs: CACHE_READ_TIMEOUT_MS }),
      manifest,
      config.cacheMemory,
    ),
    executor: new SfnInferenceExecutor(
      sfnClient(config),
      required(config.inferenceStateMachineArn, 'FANOUT_INFERENCE_STATE_MACHINE_ARN'),
    ),
    maxInstances: config.maxInstances,
    maxBodyBytes: config.maxBodyBytes,
    notReady: () => down,
  };
  return deps;
}

/**
 * Answers one API Gateway (HTTP API, payload 2.0) request. Every error becomes the contract's
 * `{"error": {code, message, details?}}`; a 5xx never carries a stack trace. A prediction request
 * is counted in `metrics` (its result-cache lookup too) and its ids annotate the trace.
 */
export async function handleHttp(
  event: APIGatewayProxyEventV2,
  getDeps: () => ApiDeps,
  metrics?: MetricsRecorder,
): Promise<HttpResponse> {
  const started = performance.now();
  const requestId = event.requestContext?.requestId ?? 'unknown';
  const seen: RouteSeen = {};
  let response: HttpResponse;
  let failure: unknown;
  let d: ApiDeps | undefined;
  try {
    d = getDeps();
    response = await findRoute(event)(event, metrics ? withCacheMetrics(d, metrics) : d, seen);
  } catch (err) {
    failure = err;
    response = errorResponse(err, requestId);
    const known = err instanceof FanoutError && err.status !== 500;
    const log = known ? logger.warn.bind(logger) : logger.error.bind(logger);
    log('request failed', {
      route: event.routeKey,
      status: response.statusCode,
      // A known error's reason; anything else keeps its stack, here in the logs only.
      error: known ? errorFields(err) : err,
    });
  }
  response.headers = { ...response.headers, 'x-request-id': requestId };
  const latencyMs = Math.round((performance.now() - started) * 100) / 100;
  logger.info('request', {
    route: event.routeKey,
    requestId,
    target: event.pathParameters?.ensemble ?? event.pathParameters?.name,
    status: response.statusCode,
    latencyMs,
  });
  const record = seen.prediction?.record;
  annotate({ ensemble: record?.ensemble, predictionId: record?.id, correlationId: record?.id });
  if (metrics) {
    const answered = { event, status: response.statusCode, error: failure, seen, latencyMs };
    recordRequest(metrics, answered, d?.manifest);
  }
  return response;
}

/** `deps` whose result-cache counts also go to this request's metrics. */
function withCacheMetrics(deps: ApiDeps, metrics: MetricsRecorder): ApiDeps {
  const record = cacheObserver(metrics);
  const observe = deps.onCacheResult;
  return {
    ...deps,
    onCacheResult: (counts) => {
      observe?.(counts);
      record(counts);
    },
  };
}

/** Models whose timeout this instance has already said it cuts (once each, not per request). */
const cutSaid = new Set<string>();

/**
 * The deps of one invocation: a member may run only as long as this function can still wait for
 * it (a longer manifest timeout would have the function stopped with no member named).
 */
function invocationDeps(context: Context): ApiDeps {
  const runner = loadConfig().runnerTimeoutSeconds;
  return {
    ...defaultDeps(),
    memberBudgetSeconds: () => memberBudgetSeconds(context.getRemainingTimeInMillis(), runner),
    onBudgetCut: (cut) => {
      for (const c of cut) {
        if (cutSaid.has(c.model)) continue;
        cutSaid.add(c.model);
        logger.warn('member timeout cut to what the API can wait', { ...c, why: TIMEOUT_CUT_WHY });
      }
    },
  };
}

/** Lambda entry point. */
export const handler = middy((event: APIGatewayProxyEventV2, context: Context) =>
  handleHttp(event, () => invocationDeps(context), metricsOf(context)),
).use(observability('api', logger));
