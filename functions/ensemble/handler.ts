import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { addAgreement } from '../adapters/agreement-metrics.js';
import { cacheObserver } from '../adapters/cache-metrics.js';
import { dynamoDocClient } from '../adapters/clients.js';
import { DynamoResultCache } from '../adapters/dynamodb-cache.js';
import { DynamoPredictionStore } from '../adapters/dynamodb-store.js';
import { logger as baseLogger } from '../adapters/logger.js';
import { addMemberCalls } from '../adapters/member-metrics.js';
import { metricsOf } from '../adapters/metrics.js';
import { observability } from '../adapters/observability.js';
import { servedModels } from '../adapters/served.js';
import { annotate } from '../adapters/tracing.js';
import { loadConfig, required } from '../core/config.js';
import type { PredictionStore } from '../core/ports.js';
import { type CacheFill, type EnsembleEvent, storeResult } from './store-result.js';

// This function's own logger: in the local stack several handlers share a process.
const logger = baseLogger.createChild();

let deps: { store: PredictionStore; fill: CacheFill } | undefined;

function defaultDeps(): { store: PredictionStore; fill: CacheFill } {
  if (!deps) {
    const config = loadConfig();
    const table = required(config.tableName, 'FANOUT_TABLE');
    deps = {
      store: new DynamoPredictionStore(dynamoDocClient(config), table),
      fill: {
        cache: new DynamoResultCache(dynamoDocClient(config), table),
        warn: (message, data) => logger.warn(message, data),
      },
    };
  }
  return deps;
}

/**
 * Lambda entry point: combines member outcomes, applies the quorum, stores the prediction and fills
 * the result cache. It sees every member's final status, so it records the per-member metrics of
 * synchronous predictions, and the result cache's failed writes.
 */
export const handler = middy(async (event: EnsembleEvent, context: Context) => {
  annotate({ ensemble: event?.ensemble, predictionId: event?.id, correlationId: event?.id });
  const metrics = metricsOf(context).setMetadata({ predictionId: event.id });
  const { store, fill } = defaultDeps();
  const result = await storeResult(
    event,
    servedModels(loadConfig()).manifest,
    store,
    { ...fill, onCacheResult: cacheObserver(metrics) },
    { onAgreement: (report) => addAgreement(metrics, report) },
  );
  addMemberCalls(metrics, event.ensemble, result.members, 'sync');
  if (result.outcome === 'ok') {
    logger.info('prediction stored', {
      id: result.record.id,
      ensemble: result.record.ensemble,
      ...(result.record.routedFrom ? { routedFrom: result.record.routedFrom } : {}),
      degraded: result.record.degraded,
      repeat: !result.created,
      members: result.record.members.map((m) => ({
        model: m.model,
        status: m.status,
        latencyMs: m.latencyMs,
        ...(m.shadow ? { shadow: true } : {}),
      })),
    });
  } else {
    logger.warn('quorum not met', { id: event.id, ensemble: event.ensemble, cause: result.cause });
  }
  return result;
}).use(observability('ensemble', logger));
