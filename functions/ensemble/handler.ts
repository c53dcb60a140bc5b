import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { agreementSink } from '../adapters/agreement-sink.js';
import { dynamoDocClient } from '../adapters/clients.js';
import { DynamoPredictionStore } from '../adapters/dynamodb-store.js';
import { logger as baseLogger } from '../adapters/logger.js';
import { servedModels } from '../adapters/served.js';
import { loadConfig, required } from '../core/config.js';
import type { PredictionStore } from '../core/ports.js';
import { type EnsembleEvent, storeResult } from './store-result.js';

// This function's own logger: in the local stack several handlers share a process.
const logger = baseLogger.createChild();
const onAgreement = agreementSink(logger);

let store: PredictionStore | undefined;

function defaultStore(): PredictionStore {
  if (!store) {
    const config = loadConfig();
    store = new DynamoPredictionStore(dynamoDocClient(config), required(config.tableName, 'FANOUT_TABLE'));
  }
  return store;
}

/** Lambda entry point: combines member outcomes, applies the quorum, stores the prediction. */
export const handler = middy(async (event: EnsembleEvent) => {
  const result = await storeResult(event, servedModels(loadConfig()).manifest, defaultStore(), {
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
