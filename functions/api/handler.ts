import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { cacheObserver } from '../adapters/cache-metrics.js';
import { dynamoDocClient, sfnClient } from '../adapters/clients.js';
import { DynamoResultCache } from '../adapters/dynamodb-cache.js';
import { DynamoJobStore } from '../adapters/dynamodb-jobs.js';
import { DynamoPredictionStore } from '../adapters/dynamodb-store.js';
import { errorFields } from '../adapters/logger.js';
import { notReady } from '../adapters/model-checks.js';
import { servedModels } from '../adapters/served.js';
import { SfnInferenceExecutor } from '../adapters/sfn-executor.js';
import { loadConfig, required } from '../core/config.js';
import { FanoutError } from '../core/errors.js';
import { errorResponse, type HttpResponse } from './http.js';
import { apiLogger as logger } from './log.js';
import { type ApiDeps, findRoute } from './routes.js';

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
    // A cache read waits at most this long before the request runs uncached.
    cache: new DynamoResultCache(dynamoDocClient(config), table, { readTimeoutMs: CACHE_READ_TIMEOUT_MS }),
    onCacheResult: cacheObserver(logger),
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
 * `{"error": {code, message, details?}}`; a 5xx never carries a stack trace.
 */
export async function handleHttp(
  event: APIGatewayProxyEventV2,
  getDeps: () => ApiDeps,
): Promise<HttpResponse> {
  const started = performance.now();
  const requestId = event.requestContext?.requestId ?? 'unknown';
  let response: HttpResponse;
  try {
    const d = getDeps();
    response = await findRoute(event)(event, d);
  } catch (err) {
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
  logger.info('request', {
    route: event.routeKey,
    requestId,
    target: event.pathParameters?.ensemble ?? event.pathParameters?.name,
    status: response.statusCode,
    latencyMs: Math.round((performance.now() - started) * 100) / 100,
  });
  return response;
}

/** Lambda entry point. */
export const handler = middy((event: APIGatewayProxyEventV2, _context: Context) =>
  handleHttp(event, defaultDeps),
).use(injectLambdaContext(logger));
