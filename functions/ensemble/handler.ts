import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { agreementSink } from '../adapters/agreement-sink.js';
import { cacheObserver } from '../adapters/cache-metrics.js';
import { dynamoDocClient } from '../adapters/clients.js';
import { DynamoResultCache } from '../adapters/dynamodb-cache.js';
import { DynamoPredictionStore } from '../adapters/dynamodb-store.js';
import { logger as baseLogger } from '../adapters/logger.js';
import { servedModels } from '../adapters/served.js';
import { loadConfig, required } from '../core/config.js';
import type { PredictionStore } from '../core/ports.js';
import { type CacheFill, type EnsembleEvent, storeResult } from './store-result.js';

// This function's own logger: in the local stack several handlers share a process.
const logger = baseLogger.createChild();
const onAgreement = agreementSink(logger);

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
        onCacheResult: cacheObserver(logger),
      },
    };
  }
  return deps;
}

/** Lambda entry point: combines member outcomes, applies the quorum, stores the prediction. */
export const handler = middy(async (event: EnsembleEvent) => {
  const { store, fill } = defaultDeps();
  const result = await storeResult(event, servedModels(loadConfig()).manifest, store, fill, {
    onAgreement,
  });
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
}).use(injectLambdaContext(logger));
