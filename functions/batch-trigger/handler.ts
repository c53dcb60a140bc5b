import middy from '@middy/core';
import type { Context, S3Event } from 'aws-lambda';
import { dynamoDocClient, s3Client, sfnClient } from '../adapters/clients.js';
import { DynamoJobStore } from '../adapters/dynamodb-jobs.js';
import { logger as baseLogger } from '../adapters/logger.js';
import { metricsOf } from '../adapters/metrics.js';
import { observability } from '../adapters/observability.js';
import { S3ObjectStore } from '../adapters/s3-objects.js';
import { servedModels } from '../adapters/served.js';
import { SfnBatchStarter } from '../adapters/sfn-batch-starter.js';
import { annotate } from '../adapters/tracing.js';
import { loadConfig, required } from '../core/config.js';
import { decodeS3Key, ensembleOfKey } from '../core/jobs.js';
import type { Manifest } from '../core/manifest.js';
import { servedOrUnknown } from '../core/targets.js';
import { startJob, type TriggerOutcome } from './start-job.js';

// This function's own logger: in the local stack several handlers share a process.
const logger = baseLogger.createChild();

/** The ensemble an upload is counted under: a served one the key names, else "unknown". */
function servedEnsembleOf(key: string, manifest: Manifest): string {
  return servedOrUnknown(manifest, ensembleOfKey(key));
}

/** Lambda entry point for `ObjectCreated` under `incoming/`: one job per uploaded object. */
export const handler = middy(async (event: S3Event, context: Context): Promise<TriggerOutcome[]> => {
  const config = loadConfig();
  const { manifest } = servedModels(config);
  const jobs = new DynamoJobStore(dynamoDocClient(config), required(config.tableName, 'FANOUT_TABLE'));
  const starter = new SfnBatchStarter(
    sfnClient(config),
    required(config.batchStateMachineArn, 'FANOUT_BATCH_STATE_MACHINE_ARN'),
  );
  const metrics = metricsOf(context);
  const outcomes: TriggerOutcome[] = [];
  for (const record of event.Records ?? []) {
    const bucket = record.s3.bucket.name;
    const upload = {
      bucket,
      key: decodeS3Key(record.s3.object.key),
      etag: record.s3.object.eTag ?? '',
      size: record.s3.object.size ?? 0,
      sequencer: record.s3.object.sequencer,
      versionId: record.s3.object.versionId,
    };
    const outcome = await startJob(upload, {
      manifest,
      jobs,
      starter,
      objects: new S3ObjectStore(s3Client(config), bucket),
    });
    logger.info('batch upload', { key: upload.key, ...outcome });
    const ensemble = servedEnsembleOf(upload.key, manifest);
    annotate({ ensemble, jobId: outcome.jobId, correlationId: outcome.jobId });
    const entry = metrics.entry({ jobId: outcome.jobId, key: upload.key, result: outcome.result });
    if (outcome.result === 'started') entry.add('BatchJobsStarted', 1, { ensemble });
    if (outcome.result === 'rejected') entry.add('BatchUploadsRejected', 1, { ensemble });
    outcomes.push(outcome);
  }
  return outcomes;
}).use(observability('batchTrigger', logger));
