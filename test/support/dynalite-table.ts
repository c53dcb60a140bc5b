import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, type TranslateConfig } from '@aws-sdk/lib-dynamodb';
import { startDynamo } from '../../local/dynamodb.js';
import { loadServerlessConfig } from '../../local/serverless-config.js';

/** The table exactly as serverless.yml declares it (the local stack creates it the same way). */
const config = loadServerlessConfig({ file: resolve(import.meta.dirname, '../../serverless.yml') });
export const TABLE = config.tables[0]?.tableName as string;

/** dynalite in a temp folder with the serverless.yml table, and the real SDK's document client on it. */
export interface DynaliteTable {
  doc: DynamoDBDocumentClient;
  close(): Promise<void>;
}

export async function startDynaliteTable(
  prefix: string,
  options: { ttlSweepMs?: number; marshallOptions?: TranslateConfig['marshallOptions'] } = {},
): Promise<DynaliteTable> {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const dynamo = await startDynamo({
    dataDir,
    region: config.region,
    tables: config.tables,
    ...(options.ttlSweepMs ? { ttlSweepMs: options.ttlSweepMs } : {}),
  });
  const doc = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      endpoint: dynamo.url,
      region: config.region,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    }),
    options.marshallOptions ? { marshallOptions: options.marshallOptions } : undefined,
  );
  return {
    doc,
    async close() {
      doc.destroy();
      await dynamo.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
