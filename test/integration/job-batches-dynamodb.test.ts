import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoJobStore } from '../../functions/adapters/dynamodb-jobs.js';
import { startDynamo } from '../../local/dynamodb.js';
import type { RunningServer } from '../../local/http-util.js';
import { loadServerlessConfig } from '../../local/serverless-config.js';

// The real table (from serverless.yml) in dynalite, through the real SDK: each stored batch's
// counts, from which a finished job's rowsCached and rowsScored are summed once per batch.
const config = loadServerlessConfig({ file: resolve(import.meta.dirname, '../../serverless.yml') });
const TABLE = config.tables[0]?.tableName as string;

let dir: string;
let dynamo: RunningServer;
let doc: DynamoDBDocumentClient;
let jobs: DynamoJobStore;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-batches-'));
  dynamo = await startDynamo({ dataDir: dir, region: config.region, tables: config.tables });
  doc = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      endpoint: dynamo.url,
      region: config.region,
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    }),
  );
  jobs = new DynamoJobStore(doc, TABLE);
});

afterAll(async () => {
  doc.destroy();
  await dynamo.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('batch counts in the table', () => {
  it('keeps one item per batch: a batch stored again (a retry) replaces its counts', async () => {
    await jobs.putBatchCounts('job-a', { firstLine: 252, cached: 9, scored: 200 });
    await jobs.putBatchCounts('job-a', { firstLine: 2, cached: 5, scored: 245 });
    await jobs.putBatchCounts('job-a', { firstLine: 252, cached: 9, scored: 200 });
    expect(await jobs.batchCounts('job-a')).toEqual([
      { firstLine: 2, cached: 5, scored: 245 },
      { firstLine: 252, cached: 9, scored: 200 },
    ]);
  });

  it("reads only this job's batches, not its rows or another job's", async () => {
    await jobs.putRows('job-b', [
      {
        rowId: 'r1',
        line: 2,
        label: 'benign',
        probabilities: { malignant: 0.1, benign: 0.9 },
        degraded: false,
      },
    ]);
    await jobs.putBatchCounts('job-b', { firstLine: 2, cached: 0, scored: 1 });
    await jobs.putBatchCounts('job-bb', { firstLine: 2, cached: 7, scored: 7 });
    expect(await jobs.batchCounts('job-b')).toEqual([{ firstLine: 2, cached: 0, scored: 1 }]);
    expect(await jobs.batchCounts('job-none')).toEqual([]);
  });

  it('reads every batch of a 275,000-row job back in line order (first lines zero-padded)', async () => {
    const lines = Array.from({ length: 1100 }, (_, i) => 2 + i * 250);
    for (let i = 0; i < lines.length; i += 50) {
      await Promise.all(
        lines
          .slice(i, i + 50)
          .map((firstLine) => jobs.putBatchCounts('job-c', { firstLine, cached: 1, scored: 249 })),
      );
    }
    const counts = await jobs.batchCounts('job-c');
    expect(counts.map((c) => c.firstLine)).toEqual(lines);
    expect(counts.reduce((s, c) => s + c.scored, 0)).toBe(1100 * 249);
  }, 60_000);
});
