import { loadConfig, required } from '../core/config.js';
import type { Manifest } from '../core/manifest.js';
import type { JobStore, ObjectStore, ResultCache } from '../core/ports.js';
import { runnerMemberLimit } from '../core/targets.js';
import { dynamoDocClient, s3Client } from './clients.js';
import { DynamoResultCache, withMemoryTier } from './dynamodb-cache.js';
import { DynamoJobStore } from './dynamodb-jobs.js';
import { S3ObjectStore } from './s3-objects.js';
import { servedModels } from './served.js';

/** What the batch steps share: the manifest, the job table, the data bucket and the result cache. */
export interface BatchDeps {
  manifest: Manifest;
  jobs: JobStore;
  objects: ObjectStore;
  cache: ResultCache;
  /** The longest a member may wait in the runner function (its timeout less a second), when known. */
  memberLimitSeconds?: number;
}

let deps: BatchDeps | undefined;

/** Built on first use from the typed configuration and kept while the process is warm. */
export function batchDeps(): BatchDeps {
  if (!deps) {
    const config = loadConfig();
    const table = required(config.tableName, 'FANOUT_TABLE');
    const { manifest } = servedModels(config);
    deps = {
      manifest,
      jobs: new DynamoJobStore(dynamoDocClient(config), table),
      cache: withMemoryTier(
        new DynamoResultCache(dynamoDocClient(config), table),
        manifest,
        config.cacheMemory,
      ),
      objects: new S3ObjectStore(s3Client(config), required(config.bucket, 'FANOUT_BUCKET')),
      memberLimitSeconds:
        config.runnerTimeoutSeconds === undefined
          ? undefined
          : runnerMemberLimit(config.runnerTimeoutSeconds),
    };
  }
  return deps;
}
