import { loadConfig, required } from '../core/config.js';
import type { Manifest } from '../core/manifest.js';
import type { JobStore, ObjectStore } from '../core/ports.js';
import { dynamoDocClient, s3Client } from './clients.js';
import { DynamoJobStore } from './dynamodb-jobs.js';
import { S3ObjectStore } from './s3-objects.js';
import { servedModels } from './served.js';

/** What the batch steps share: the manifest, the job table and the data bucket. */
export interface BatchDeps {
  manifest: Manifest;
  jobs: JobStore;
  objects: ObjectStore;
}

let deps: BatchDeps | undefined;

/** Built on first use from the typed configuration and kept while the process is warm. */
export function batchDeps(): BatchDeps {
  if (!deps) {
    const config = loadConfig();
    deps = {
      manifest: servedModels(config).manifest,
      jobs: new DynamoJobStore(dynamoDocClient(config), required(config.tableName, 'FANOUT_TABLE')),
      objects: new S3ObjectStore(s3Client(config), required(config.bucket, 'FANOUT_BUCKET')),
    };
  }
  return deps;
}
